import Glibc

/// One entry of a directory, as `readDirectory(atPath:)` reports it.
public struct DirectoryEntry: Sendable, Equatable {
    /// The name's bytes as the file system holds them (`d_name`): often UTF-8, not always
    /// (a name from an old archive may be Latin-1).
    public var name: [UInt8]
    /// Whether the entry is a directory, or a symbolic link to one (`stat`, which follows links).
    public var isDirectory: Bool
    /// Whether the entry itself is a symbolic link (`lstat`).
    public var isSymbolicLink: Bool

    /// An entry with these facts (for tests, and for listings made otherwise).
    public init(name: [UInt8], isDirectory: Bool, isSymbolicLink: Bool) {
        self.name = name
        self.isDirectory = isDirectory
        self.isSymbolicLink = isSymbolicLink
    }
}

/// Reads the entries of the directory at `path`, every one but `.` and `..`, in the file
/// system's order. Synchronous, and one system call per entry at worst: call it on the thread
/// pool (`Loop.runInThreadPool`) for a directory that may be large, not on the loop thread.
///
/// Most entries cost no system call of their own: `readdir` says what each is (`d_type`), and
/// only a symbolic link needs a `stat` to learn whether it leads to a directory. On a file
/// system that does not say (`DT_UNKNOWN`), an `lstat` comes first. An entry removed while
/// being read is reported as a plain file.
/// - Returns: the entries, or the error that stopped the reading (`UV_EACCES`, `UV_ENOENT`,
///   `UV_ENOTDIR`, …).
public func readDirectory(atPath path: String) -> Result<[DirectoryEntry], UVError> {
    readDirectory(atPath: Array(path.utf8))
}

/// `readDirectory(atPath:)` for a path given as bytes (a directory's name need not be UTF-8).
public func readDirectory(atPath path: [UInt8]) -> Result<[DirectoryEntry], UVError> {
    guard let stream = opendir(path.map { CChar(bitPattern: $0) } + [0]) else {
        return .failure(UVError(code: -errno))
    }
    defer { closedir(stream) }
    let descriptor = dirfd(stream)
    var entries: [DirectoryEntry] = []
    while true {
        errno = 0
        guard let entry = readdir(stream) else {
            if errno != 0 { return .failure(UVError(code: -errno)) }
            return .success(entries)
        }
        let type = entry.pointee.d_type
        let read = withUnsafePointer(to: &entry.pointee.d_name) { tuple in
            tuple.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: tuple.pointee)) {
                name -> DirectoryEntry? in
                let length = strlen(name)
                let bytes = UnsafeRawBufferPointer(start: name, count: length)
                if length <= 2 && bytes.allSatisfy({ $0 == UInt8(ascii: ".") }) { return nil }
                let (isDirectory, isLink) = entryKind(type, name, in: descriptor)
                return DirectoryEntry(name: Array(bytes), isDirectory: isDirectory, isSymbolicLink: isLink)
            }
        }
        if let read { entries.append(read) }
    }
}

/// Whether the entry `name` of the directory open as `descriptor` is a directory (following
/// links) and whether it is a link, from its `d_type` and as few `stat`s as that allows.
/// Internal: the tests pass `DT_UNKNOWN`, which the file systems they run on never report.
func entryKind(_ type: UInt8, _ name: UnsafePointer<CChar>, in descriptor: Int32)
    -> (isDirectory: Bool, isLink: Bool) {
    var info = stat()
    switch Int(type) {
    case DT_DIR: return (true, false)
    case DT_LNK: return (fstatat(descriptor, name, &info, 0) == 0 && isDirectory(info), true)
    case DT_UNKNOWN: break
    default: return (false, false)
    }
    guard fstatat(descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return (false, false) }
    guard info.st_mode & S_IFMT == S_IFLNK else { return (isDirectory(info), false) }
    return (fstatat(descriptor, name, &info, 0) == 0 && isDirectory(info), true)
}

private func isDirectory(_ info: stat) -> Bool {
    info.st_mode & S_IFMT == S_IFDIR
}
