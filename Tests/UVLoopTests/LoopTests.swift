import Foundation
import Testing
@testable import UVLoop

/// A record shared with other threads; only the loop thread touches `entries`.
private final class Record: @unchecked Sendable {
    var entries: [(thread: Int, index: Int, onLoop: Bool)] = []
}

/// Poll windows seen by blocks on the loop thread.
private final class WindowLog: @unchecked Sendable {
    var close: [UInt64] = []
    var far: [UInt64] = []
}

/// What blocks on the loop thread saw of the polling pause.
private final class PauseLog: @unchecked Sendable {
    var pausedWhileBusy = 0
    var blocksRun = 0
    var pausedAfterRest: Bool?
}

/// Spins for `microseconds` (work that keeps the loop busy, or a sender that sends often).
private func spin(microseconds: UInt64) {
    let end = DispatchTime.now().uptimeNanoseconds + microseconds * 1_000
    while DispatchTime.now().uptimeNanoseconds < end {}
}

@Suite("Loop, timers and cross-thread execute")
struct LoopTests {
    @Test func timersFireInDeadlineOrder() throws {
        let loop = try Loop()
        var fired: [Int] = []
        for delay in [50, 10, 40, 20, 30, 0] {
            LoopTimer(loop: loop).start(after: UInt64(delay)) { fired.append(delay) }
        }
        run(loop) { fired.count == 6 }
        #expect(fired == [0, 10, 20, 30, 40, 50])
        closeCleanly(loop)
    }

    @Test func repeatingTimerRepeatsAndStoppedTimerNeverFires() throws {
        let loop = try Loop()
        var repeats = 0
        let repeating = LoopTimer(loop: loop)
        repeating.start(after: 1, repeatEvery: 5) {
            repeats += 1
            if repeats == 4 { repeating.stop() }
        }
        var cancelledFired = false
        let cancelled = LoopTimer(loop: loop)
        cancelled.start(after: 5) { cancelledFired = true }
        cancelled.stop()
        #expect(!cancelled.isActive)
        var done = false
        LoopTimer(loop: loop).start(after: 60) { done = true }
        run(loop) { done }
        #expect(repeats == 4)
        #expect(!cancelledFired)
        closeCleanly(loop)
    }

    @Test func executeFromEightThreadsRunsEveryBlockOnTheLoopInOrderPerThread() throws {
        let loop = try Loop()
        let record = Record()
        let threads = 8, perThread = 1000
        for thread in 0..<threads {
            Thread {
                for index in 0..<perThread {
                    loop.execute {
                        record.entries.append((thread, index, loop.isOnLoopThread))
                        if record.entries.count == threads * perThread { loop.stop() }
                    }
                }
            }.start()
        }
        loop.run()
        #expect(record.entries.count == threads * perThread)
        #expect(record.entries.allSatisfy { $0.onLoop })
        for thread in 0..<threads {
            let order = record.entries.filter { $0.thread == thread }.map(\.index)
            #expect(order == Array(0..<perThread))
        }
        closeCleanly(loop)
    }

    @Test(arguments: [0, 100_000] as [UInt64])
    func stopFromAnotherThreadEndsRun(busyPollLimit: UInt64) throws {
        let loop = try Loop()
        loop.busyPollLimit = busyPollLimit
        LoopTimer(loop: loop).start(after: 60_000) {}  // Something to keep the loop busy.
        Thread {
            usleep(20_000)
            loop.execute { loop.stop() }
        }.start()
        let started = loop.now
        loop.run()
        loop.updateTime()
        #expect(loop.now - started < 10_000)
        closeCleanly(loop)
    }

    @Test(arguments: [0, 100_000] as [UInt64])
    func stopBeforeRunMakesRunReturnAtOnce(busyPollLimit: UInt64) throws {
        let loop = try Loop()
        loop.busyPollLimit = busyPollLimit
        LoopTimer(loop: loop).start(after: 60_000) {}
        loop.stop()
        let started = loop.now
        loop.run()
        loop.updateTime()
        #expect(loop.now - started < 10_000)
        closeCleanly(loop)
    }

    /// Events close together make the loop poll (within the limit); events far apart make it
    /// stop polling again. The events here are `execute` wake-ups from another thread.
    @Test func busyPollingFollowsTheGapsBetweenEvents() throws {
        let loop = try Loop()
        let limit: UInt64 = 20_000_000  // 20 ms: far above a loaded machine's scheduling noise
        loop.busyPollLimit = limit
        let windows = WindowLog()
        Thread {
            for _ in 0..<300 {  // 0.1 ms apart
                loop.execute { windows.close.append(loop.pollWindow) }
                usleep(100)
            }
            for _ in 0..<14 {  // 60 ms apart: each halves the window, down to nothing
                usleep(60_000)
                loop.execute { windows.far.append(loop.pollWindow) }
            }
            loop.execute { loop.stop() }
        }.start()
        #expect(loop.pollWindow == 0)
        loop.run()
        // It grows until polling bridges the gaps (a few hundred microseconds), not further.
        #expect(windows.close.last.map { $0 > 0 } == true)
        #expect(windows.close.allSatisfy { $0 <= limit })
        #expect(windows.far.count == 14)
        #expect(windows.far.last == 0)
        closeCleanly(loop)
    }

    /// A loop that finds events in most polling iterations is saturated: it pauses polling
    /// (it would not sleep anyway) and takes it up again once the pause has passed.
    @Test func saturatedLoopPausesPolling() throws {
        let loop = try Loop()
        loop.busyPollLimit = 20_000_000
        let log = PauseLog()
        // A chain of 400 blocks, each queuing the next before it works for 20 µs: whenever
        // the loop looks, a wake-up is waiting, however the threads are scheduled.
        @Sendable func link(_ remaining: Int) {
            if remaining > 0 {
                loop.execute { link(remaining - 1) }
            } else {
                let rest = LoopTimer(loop: loop)  // longer than the pause; timers are no events
                rest.start(after: 30) {
                    log.pausedAfterRest = loop.isPollingPaused
                    rest.close()
                    loop.stop()
                }
            }
            spin(microseconds: 20)
            log.blocksRun += 1
            if loop.isPollingPaused { log.pausedWhileBusy += 1 }
        }
        loop.execute { link(399) }
        loop.run()
        #expect(log.blocksRun == 400)
        #expect(log.pausedWhileBusy > 0)
        #expect(log.pausedAfterRest == false)
        closeCleanly(loop)
    }

    /// Wake-ups that bring no event (a timer every millisecond here) start no polling: an
    /// idle loop with timers sleeps between them.
    @Test func timersAloneDoNotMakeTheLoopPoll() throws {
        let loop = try Loop()
        loop.busyPollLimit = 50_000_000
        var windows: [UInt64] = []
        let ticker = LoopTimer(loop: loop)
        ticker.start(after: 1, repeatEvery: 1) {
            windows.append(loop.pollWindow)
            if windows.count == 40 {
                ticker.close()
                loop.stop()
            }
        }
        loop.run()
        #expect(windows.count == 40)
        #expect(windows.allSatisfy { $0 == 0 })
        closeCleanly(loop)
    }

    /// A `stop()` consumed by `runOnce()` does not end the next `run()` early.
    @Test func stopSeenByRunOnceDoesNotCarryOver() throws {
        let loop = try Loop()
        loop.busyPollLimit = 100_000
        loop.stop()
        loop.runOnce(blocking: false)
        var fired = false
        LoopTimer(loop: loop).start(after: 20) {
            fired = true
            loop.stop()
        }
        loop.run()
        #expect(fired)
        closeCleanly(loop)
    }

    @Test func runOnAnotherThreadThenCloseFromIt() throws {
        let loop = try Loop()
        let finished = DispatchSemaphore(value: 0)
        let result = Record()
        Thread {
            loop.execute { loop.stop() }
            loop.run()
            result.entries.append((0, (try? loop.close()) == nil ? 1 : 0, true))
            finished.signal()
        }.start()
        finished.wait()
        #expect(result.entries.first?.index == 0)
    }

    @Test func executeAfterCloseIsDropped() throws {
        let loop = try Loop()
        closeCleanly(loop)
        loop.execute { Issue.record("ran after close") }
    }
}
