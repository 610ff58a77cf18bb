import Glibc
import Testing
@testable import UVLoop

/// The descriptors this process has open (`/proc/self/fd`), each with what it links to, such
/// as `"anon_inode:[eventpoll]"` or a path.
func openDescriptors() -> [(descriptor: Int32, target: String)] {
    guard let directory = opendir("/proc/self/fd") else { return [] }
    defer { closedir(directory) }
    var found: [(descriptor: Int32, target: String)] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) {
            String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard let descriptor = Int32(name), descriptor != dirfd(directory) else { continue }
        var target = [UInt8](repeating: 0, count: 4096)
        let length = readlink("/proc/self/fd/\(name)", &target, target.count)
        guard length >= 0 else { continue }
        found.append((descriptor, String(decoding: target.prefix(length), as: UTF8.self)))
    }
    return found
}

/// Makes a loop whose `uv_async_init` fails as it does when no descriptor is left.
private func loopWithFailingWakeUp() throws(UVError) -> Loop {
    try Loop(readBufferSize: 1024, wakeUpInitResult: UVError.tooManyOpenFiles.code)
}

@Suite("Loop setup and use after close")
struct LoopLifecycleTests {
    @Test func aWakeUpHandleThatCannotBeSetUpFailsInitWithItsError() {
        #expect(throws: UVError.tooManyOpenFiles) {
            _ = try loopWithFailingWakeUp()
        }
    }

    /// The `uv_loop_t` made before the wake-up failed is closed again: its epoll descriptor
    /// does not leak. Counted in a child process (an exit test), and only epoll descriptors:
    /// the test runtime there may open or close a pipe of its own meanwhile.
    @Test func aFailedInitLeavesNoDescriptorOpen() async {
        await #expect(processExitsWith: .success) {
            func epollCount() -> Int {
                openDescriptors().count { $0.target == "anon_inode:[eventpoll]" }
            }
            let before = epollCount()
            for _ in 0..<20 {
                _ = try? loopWithFailingWakeUp()
            }
            exit(epollCount() == before ? EXIT_SUCCESS : EXIT_FAILURE)
        }
    }
}
