import Foundation
import Glibc
import Testing
@testable import UVLoop

/// State only the loop thread touches: the completions may hold it, the work may not.
private final class Tally {
    var results: [Int] = []
    var completionThreads: Set<UInt> = []
}

@Suite("Loop.runInThreadPool")
struct ThreadPoolTests {
    @Test func workRunsOnAPoolThreadAndItsResultComesBackOnTheLoopThread() throws {
        let loop = try Loop()
        let tally = Tally()
        var poolThread: UInt?
        loop.runInThreadPool({ UInt(pthread_self()) }, then: { thread in
            poolThread = thread
            tally.completionThreads.insert(UInt(pthread_self()))
        })
        #expect(poolThread == nil, "the completion ran inside the call")
        run(loop) { poolThread != nil }
        #expect(poolThread != UInt(pthread_self()))
        #expect(tally.completionThreads == [UInt(pthread_self())])
        closeCleanly(loop)
    }

    @Test func manyWorksEachCompleteOnceWithTheirOwnResult() throws {
        let loop = try Loop()
        let tally = Tally()
        for value in 0..<500 {
            loop.runInThreadPool({ value * value }, then: { tally.results.append($0) })
        }
        run(loop) { tally.results.count >= 500 }
        loop.runOnce(blocking: false)
        #expect(tally.results.sorted() == (0..<500).map { $0 * $0 })
        closeCleanly(loop)
    }

    /// Work that blocks holds up the pool thread, not the loop: a timer still fires, and it is
    /// what lets the work finish.
    @Test func blockingWorkDoesNotHoldUpTheLoop() throws {
        let loop = try Loop()
        let release = DispatchSemaphore(value: 0)
        var result: String?
        loop.runInThreadPool({
            release.wait()
            return "done"
        }, then: { result = $0 })
        var timerFired = false
        let timer = LoopTimer(loop: loop)
        timer.start(after: 1) {
            timerFired = true
            release.signal()
        }
        run(loop) { result != nil }
        #expect(timerFired)
        #expect(result == "done")
        timer.close()
        closeCleanly(loop)
    }

    /// `close()` waits for work still in flight and runs its completion before it returns.
    @Test func closeRunsTheCompletionOfWorkInFlight() throws {
        let loop = try Loop()
        let release = DispatchSemaphore(value: 0)
        var completions = 0
        loop.runInThreadPool({ release.wait() }, then: { completions += 1 })
        Thread { release.signal() }.start()
        closeCleanly(loop)
        #expect(completions == 1)
    }

    /// An optional result comes back as it was, nil included.
    @Test func anOptionalResultComesBackAsItWas() throws {
        let loop = try Loop()
        var results: [Int?] = []
        loop.runInThreadPool({ Int?.none }, then: { results.append($0) })
        loop.runInThreadPool({ Int?.some(7) }, then: { results.append($0) })
        run(loop) { results.count == 2 }
        #expect(results.contains(nil) && results.contains(7))
        closeCleanly(loop)
    }
}
