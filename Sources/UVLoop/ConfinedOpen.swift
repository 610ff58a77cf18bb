import CLibUV
import Glibc
import Synchronization

/// What `openConfined(_:under:flags:)` found.
public enum ConfinedOpen: Sendable, Equatable {
    /// The file is open; the caller owns the descriptor.
    case opened(Int32)
    /// Resolving the path would leave the root: a `..` or a symbolic link pointing out, or an
    /// absolute symbolic link (even one pointing back inside). Or the kernel cannot say
    /// (no openat2(2): Linux before 5.6, or a sandbox that refuses the call): either way the
    /// caller decides another way, by resolving the path itself.
    case needsCheck
    /// The open failed with this `errno` (`ENOENT`, `EACCES`, `ELOOP`, …).
    case failed(Int32)
}

/// Whether openat2(2) answered here; false once it said ENOSYS or EPERM (seccomp), after
/// which every call reports `.needsCheck` without asking again.
private let kernelConfines = Atomic<Bool>(true)

/// Opens `path` relative to the directory `root` (a descriptor), refusing to leave it:
/// openat2(2) with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, so one system call does what
/// resolving every component with `realpath(3)` and comparing prefixes did (four `readlink`s
/// and a `stat` for a file two levels down). Links inside the root are followed.
/// - Parameters:
///   - path: the relative path's bytes, without NUL (any bytes: a name need not be UTF-8).
///   - root: an open directory.
///   - flags: `open(2)` flags; `O_CLOEXEC` is always added.
public func openConfined(_ path: [UInt8], under root: Int32, flags: Int32) -> ConfinedOpen {
    guard kernelConfines.load(ordering: .relaxed) else { return .needsCheck }
    var cPath = path
    cPath.append(0)
    for _ in 0..<3 {
        let descriptor = cPath.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) {
                cuv_open_beneath(root, $0.baseAddress, flags | O_CLOEXEC)
            }
        }
        if descriptor >= 0 { return .opened(descriptor) }
        switch errno {
        case EINTR, EAGAIN:
            continue  // EAGAIN: a rename or mount raced the lookup; the kernel asks to retry.
        case EXDEV:
            return .needsCheck
        case ENOSYS, EPERM:
            kernelConfines.store(false, ordering: .relaxed)
            return .needsCheck
        case let error:
            return .failed(error)
        }
    }
    return .needsCheck
}

/// `path` with every symbolic link, `.` and `..` resolved (`realpath(3)`), as bytes (a name
/// need not be UTF-8); nil when it does not exist or cannot be reached.
public func resolvedPath(_ path: [UInt8]) -> [UInt8]? {
    var cPath = path.map { CChar(bitPattern: $0) }
    cPath.append(0)
    guard let resolved = realpath(cPath, nil) else { return nil }
    defer { free(resolved) }
    return Array(UnsafeRawBufferPointer(start: resolved, count: strlen(resolved)))
}
