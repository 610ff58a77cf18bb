import Glibc
import Testing
@testable import UVLoop

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

/// Every entry point that needs the `uv_loop_t`, for the tests that call them after `close()`.
enum LoopEntryPoint: String, CaseIterable, Codable, Sendable {
    case run, runOnce, stop, now, updateTime, busyPollLimit
    case timer, listener, connect, fileOpen, fileRead, fileStat, fileClose, spawn

    /// Uses `loop` through this entry point.
    func use(_ loop: Loop) throws {
        switch self {
        case .run: loop.run()
        case .runOnce: loop.runOnce(blocking: false)
        case .stop: loop.stop()
        case .now: _ = loop.now
        case .updateTime: loop.updateTime()
        case .busyPollLimit: loop.busyPollLimit = 1000
        case .timer: _ = LoopTimer(loop: loop)
        case .listener: _ = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
        case .connect: TCPConnection.connect(loop: loop, host: "127.0.0.1", port: 9) { _ in }
        case .fileOpen: File.open("/dev/null", loop: loop) { _ in }
        case .fileRead: File(adopting: dup(0), loop: loop).read(count: 1, at: 0) { _ in }
        case .fileStat: File(adopting: dup(0), loop: loop).stat { _ in }
        case .fileClose: File(adopting: dup(0), loop: loop).close()
        case .spawn: _ = try ChildProcess.spawn(loop: loop, .init(executable: "/bin/true")) { _, _ in }
        }
    }
}

extension LoopLifecycleTests {
    /// Each use of a closed loop stops the process with a message that says so, instead of
    /// touching the freed `uv_loop_t`. Each case runs in a child process (an exit test).
    @Test(arguments: LoopEntryPoint.allCases)
    func usingAClosedLoopStopsTheProcessWithAClearMessage(_ entryPoint: LoopEntryPoint) async throws {
        let result = try await #require(processExitsWith: .failure, observing: [\.standardErrorContent]) { [entryPoint] in
            let loop = try Loop()
            try loop.close()
            try entryPoint.use(loop)
        }
        let message = String(decoding: result.standardErrorContent, as: UTF8.self)
        #expect(message.contains("Loop used after close()"), "\(entryPoint): \(message)")
    }

    @Test func closingTwiceAndExecutingAfterCloseAreHarmless() throws {
        let loop = try Loop()
        try loop.close()
        try loop.close()
        loop.execute { Issue.record("ran after close") }
    }
}
