import Glibc
import Testing
@testable import UVLoop

/// A temporary directory whose entries are made from raw name bytes; removed by `remove()`.
private struct TemporaryDirectory {
    let path: String

    init() {
        path = makeTemporaryDirectory("uvloop-dir")
    }

    /// The NUL-terminated path of the entry `name`.
    func cPath(_ name: [UInt8]) -> [CChar] {
        (Array(path.utf8) + [UInt8(ascii: "/")] + name + [0]).map { CChar(bitPattern: $0) }
    }

    func file(_ name: [UInt8]) {
        let descriptor = open(cPath(name), O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
        precondition(descriptor >= 0, "open failed")
        close(descriptor)
    }

    /// Removes the directory and its entries (the tests make no deeper trees).
    func remove() {
        for entry in (try? readDirectory(atPath: path).get()) ?? [] {
            if entry.isDirectory && !entry.isSymbolicLink { rmdir(cPath(entry.name)) } else { unlink(cPath(entry.name)) }
        }
        rmdir(path)
    }
}

@Suite("readDirectory")
struct DirectoryReadingTests {
    @Test func entriesCarryTheirRawNamesAndWhetherTheyAreDirectoriesOrLinks() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let latin1: [UInt8] = Array("caf".utf8) + [0xE9] + Array(".txt".utf8)
        directory.file(Array("plain.txt".utf8))
        directory.file(latin1)
        #expect(mkdir(directory.cPath(Array("sub".utf8)), 0o755) == 0)
        #expect(mkdir(directory.cPath(Array("dir".utf8) + [0xFF]), 0o755) == 0)
        #expect(symlink("sub", directory.cPath(Array("to-sub".utf8))) == 0)
        #expect(symlink("plain.txt", directory.cPath(Array("to-file".utf8))) == 0)
        #expect(symlink("nowhere", directory.cPath(Array("dangling".utf8))) == 0)
        #expect(mkfifo(directory.cPath(Array("fifo".utf8)), 0o600) == 0)

        let entries = try readDirectory(atPath: directory.path).get()
        let byName = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
        #expect(entries.count == 8)
        func expectEntry(_ name: [UInt8], directory isDirectory: Bool, link: Bool,
                         sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(byName[name] == DirectoryEntry(name: name, isDirectory: isDirectory, isSymbolicLink: link),
                    "\(String(decoding: name, as: UTF8.self))", sourceLocation: sourceLocation)
        }
        expectEntry(Array("plain.txt".utf8), directory: false, link: false)
        expectEntry(latin1, directory: false, link: false)
        expectEntry(Array("sub".utf8), directory: true, link: false)
        expectEntry(Array("dir".utf8) + [0xFF], directory: true, link: false)
        expectEntry(Array("to-sub".utf8), directory: true, link: true)
        expectEntry(Array("to-file".utf8), directory: false, link: true)
        expectEntry(Array("dangling".utf8), directory: false, link: true)
        expectEntry(Array("fifo".utf8), directory: false, link: false)
    }

    /// Where the file system does not give the type (`DT_UNKNOWN`), `lstat` and `stat` tell the
    /// same as `d_type` does.
    @Test func withoutATypeFromTheFileSystemStatsTellTheSame() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        directory.file(Array("plain".utf8))
        #expect(mkdir(directory.cPath(Array("sub".utf8)), 0o755) == 0)
        #expect(symlink("sub", directory.cPath(Array("to-sub".utf8))) == 0)
        #expect(symlink("plain", directory.cPath(Array("to-file".utf8))) == 0)
        #expect(symlink("nowhere", directory.cPath(Array("dangling".utf8))) == 0)
        let descriptor = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(descriptor) }
        let entries = try readDirectory(atPath: directory.path).get()
        #expect(entries.count == 5)
        for entry in entries {
            let name = (entry.name + [0]).map { CChar(bitPattern: $0) }
            let kind = entryKind(UInt8(DT_UNKNOWN), name, in: descriptor)
            #expect(kind.isDirectory == entry.isDirectory && kind.isLink == entry.isSymbolicLink,
                    "\(String(decoding: entry.name, as: UTF8.self))")
        }
        let missing = entryKind(UInt8(DT_UNKNOWN), Array("missing".utf8CString), in: descriptor)
        #expect(!missing.isDirectory && !missing.isLink)
    }

    @Test func anEmptyDirectoryHasNoEntriesNotEvenDotAndDotDot() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        #expect(try readDirectory(atPath: directory.path).get().isEmpty)
    }

    @Test func whatIsNotAReadableDirectoryIsAnError() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        directory.file(Array("file".utf8))
        #expect(throws: UVError(code: -ENOENT)) { try readDirectory(atPath: directory.path + "/missing").get() }
        #expect(throws: UVError(code: -ENOTDIR)) { try readDirectory(atPath: directory.path + "/file").get() }
    }
}
