import CLibUV
import Glibc

extension ChildProcess {
    /// Refuses (`EFTYPE`) an executable regular file that starts with neither `#!` nor an ELF
    /// header, before anything is spawned.
    ///
    /// The kernel cannot run such a file (`ENOEXEC`), and glibc's `execvp`, which libuv calls,
    /// then hands it to `/bin/sh`, as a shell does with a script that has no `#!` line: a shell
    /// between the server and the program, which is what running it directly rules out. A
    /// file that cannot be opened, is not a regular file or is not executable is left to the
    /// exec, which fails as the kernel says (`ENOENT`, `EACCES`). Formats other than ELF
    /// registered with `binfmt_misc` are refused too.
    ///
    /// The path is `file` as the child will see it: a relative one is taken from
    /// `workingDirectory`. The four bytes are read on the loop thread, where the exec that
    /// follows reads the file anyway.
    static func refuseShellFallback(_ file: String, in workingDirectory: String?) throws(UVError) {
        let path = file.hasPrefix("/") ? file : (workingDirectory ?? ".") + "/" + file
        guard faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0 else { return }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        guard descriptor >= 0 else { return }
        defer { Glibc.close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return }
        var head = [UInt8](repeating: 0, count: 4)
        let count = pread(descriptor, &head, head.count, 0)
        guard count >= 0 else { return }
        let start = head.prefix(count)
        guard !start.starts(with: Array("#!".utf8)), !start.elementsEqual([0x7F] + Array("ELF".utf8))
        else { return }
        throw UVError(code: Int32(UV_EFTYPE.rawValue))
    }
}

/// The C strings `uv_spawn` takes, each array ending in NULL, freed together when this is
/// released. The child gets its own copies when it forks, so they live only through the call.
final class CStrings {
    /// A C array of C strings (`char **`), as `argv` and `environ` are.
    typealias CArray = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

    let file: UnsafeMutablePointer<CChar>
    let arguments: CArray
    let environment: CArray
    let workingDirectory: UnsafeMutablePointer<CChar>?

    /// Copies the strings.
    /// - Throws: `.invalidArgument` when one holds a NUL byte, which C would take for its end.
    init(file: String, arguments: [String], environment: [String],
         workingDirectory: String?) throws(UVError) {
        let all = [file] + arguments + environment + [workingDirectory ?? ""]
        guard !all.contains(where: { $0.utf8.contains(0) }) else { throw .invalidArgument }
        self.file = strdup(file)
        self.arguments = CStrings.array(arguments)
        self.environment = CStrings.array(environment)
        self.workingDirectory = workingDirectory.map { strdup($0) }
    }

    private static func array(_ strings: [String]) -> CArray {
        let array = CArray.allocate(capacity: strings.count + 1)
        for (index, string) in strings.enumerated() {
            (array + index).initialize(to: strdup(string))
        }
        (array + strings.count).initialize(to: nil)
        return array
    }

    deinit {
        free(file)
        free(workingDirectory)
        for array in [arguments, environment] {
            var next = array
            while let string = next.pointee {
                free(string)
                next += 1
            }
            array.deallocate()
        }
    }
}
