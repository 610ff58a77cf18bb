import Glibc

/// The C strings `posix_spawn` takes, each array ending in NULL, freed together when this is
/// released. They are needed only through the call: the child has exec'd when it returns.
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
