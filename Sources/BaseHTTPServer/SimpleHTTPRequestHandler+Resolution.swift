import Glibc
import UVLoop

/// A file-system path as `SimpleHTTPRequestHandler.fileSystemPath()` found it: the String
/// `translatePath(_:)` returned, or bytes (a name that is not UTF-8). The String's bytes are
/// copied out only when the open-file cache does not have the file: 195 instructions a
/// request fewer than copying them always (Scripts/callgrind --f1).
enum FileSystemPath {
    case text(String)
    case bytes([UInt8])

    /// The path's bytes, in an array of their own.
    var bytes: [UInt8] {
        switch self {
        case .text(let text): withUTF8(of: text) { Array($0) }
        case .bytes(let bytes): bytes
        }
    }

    /// Calls `body` with the path's bytes, without copying them.
    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        switch self {
        case .text(let text): withUTF8(of: text, body)
        case .bytes(let bytes): bytes.withUnsafeBufferPointer(body)
        }
    }
}

/// How `SimpleHTTPRequestHandler` finds the file a request names: the request path mapped
/// under the directory (byte for byte where a name is not UTF-8), opened only if it lies
/// under the directory once every symbolic link is followed.
extension SimpleHTTPRequestHandler {
    /// The file-system path for the request: `translatePath(_:)`'s, or, for a path whose
    /// escapes decode to bytes that are not UTF-8 (a name from an old archive,
    /// `caf%E9.txt`), the same mapping byte for byte. nil: answer 404.
    func fileSystemPath() -> FileSystemPath? {
        if let path = translatePath(self.path) { return .text(path) }
        guard self.path.hasPrefix("/"),
              let bytes = translatePathBytes(self.path, root: directory),
              String(validating: bytes, as: UTF8.self) == nil
        else { return nil }
        return .bytes(bytes)
    }

    enum Opened {
        case opened(OpenFile)
        /// Nothing by that name (or a name that is not a directory used as one).
        case missing
        /// It exists but may not be served: it lies outside the root, or cannot be opened.
        case refused
    }

    /// Opens `path` (a translated path) for reading, only if it lies under the root once
    /// every symbolic link is followed: with one `openat2(RESOLVE_BENEATH)` relative to the
    /// root where the kernel has it, else by resolving the path (`realpath`) and comparing.
    /// `O_NONBLOCK`, so that a FIFO does not block the loop until `fstat` refuses it.
    func openUnderRoot(_ path: [UInt8]) -> Opened {
        let flags = O_RDONLY | O_NOCTTY | O_NONBLOCK
        var prefix = Array(rootDirectoryPrefix(directory))
        prefix.append(UInt8(ascii: "/"))
        if path.starts(with: prefix), let root = rootDescriptor() {
            let relative = path[prefix.count...]
            switch openConfined(relative.isEmpty ? [UInt8(ascii: ".")] : Array(relative),
                                under: root.descriptor, flags: flags) {
            case .opened(let descriptor):
                return .opened(OpenFile(adopting: descriptor))
            case .failed(let error):
                return error == ENOENT || error == ENOTDIR ? .missing : .refused
            case .needsCheck:
                break  // Out of the root, or a kernel without openat2: decided below.
            }
        }
        guard let real = resolvedPath(path) else { return .missing }
        guard isInsideRoot(real) else { return .refused }
        // `real` has no links left; O_NOFOLLOW keeps its last component from becoming one meanwhile.
        let descriptor = Glibc.open(real.map { CChar(bitPattern: $0) } + [0], flags | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { return errno == ENOENT ? .missing : .refused }
        return .opened(OpenFile(adopting: descriptor))
    }

    /// The served directory, open, to resolve names under.
    private func rootDescriptor() -> OpenFile? {
        let validity = UInt64(max(server.configuration.openFileCacheValidity, 0) * 1000)
        return server.openFileCache.root(directory, now: server.clockNow, validity: validity)
    }

    enum IndexPage {
        case opened(OpenFile, name: [UInt8])
        case missing
        case refused
    }

    /// Opens the first of `indexPages` that is there in the directory `path` (which ends
    /// with `/`) and is not a directory (a directory named `index.html` does not hide the
    /// listing).
    func openIndexPage(in path: [UInt8]) -> IndexPage {
        for name in Self.indexPages {
            let name = Array(name.utf8)
            switch openUnderRoot(path + name) {
            case .opened(let file):
                var info = stat()
                if fstat(file.descriptor, &info) == 0 && isDirectory(info) {
                    file.close()
                    continue
                }
                return .opened(file, name: name)
            case .missing:
                continue
            case .refused:
                return .refused
            }
        }
        return .missing
    }

    /// Resolves every symbolic link in `path`; nil unless the result lies under the root.
    func resolveInsideRoot(_ path: String) -> String? {
        guard let real = resolvedPath(Array(path.utf8)), isInsideRoot(real) else { return nil }
        return String(validating: real, as: UTF8.self)
    }

    /// Whether `real`, a path with no links left, is the root or lies under it.
    private func isInsideRoot(_ real: [UInt8]) -> Bool {
        guard let root = resolvedRoot else { return false }
        return root == [UInt8(ascii: "/")] || real == root
            || real.starts(with: root) && real[root.count] == UInt8(ascii: "/")
    }
}
