import Glibc
import Testing
@testable import UVLoop

/// The number of open descriptors of this process (entries of `/proc/self/fd`).
///
/// Other tests open and close descriptors in parallel, so only a child process (an exit
/// test) can compare two counts and trust the difference.
func openDescriptorCount() -> Int {
    guard let directory = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(directory) }
    var count = 0
    while readdir(directory) != nil { count += 1 }
    return count
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
    /// does not leak. Counted in a child process, where no other test opens descriptors.
    @Test func aFailedInitLeavesNoDescriptorOpen() async {
        await #expect(processExitsWith: .success) {
            // The first loop makes libuv's process-wide signal pipe, which stays open.
            _ = try? loopWithFailingWakeUp()
            let before = openDescriptorCount()
            for _ in 0..<20 {
                _ = try? loopWithFailingWakeUp()
            }
            exit(openDescriptorCount() == before ? EXIT_SUCCESS : EXIT_FAILURE)
        }
    }
}
