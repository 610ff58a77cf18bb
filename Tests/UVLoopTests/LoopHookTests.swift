import Testing
import CLibUV
@testable import UVLoop

@Suite("LoopHook")
struct LoopHookTests {
    /// Work a timer leaves is handed on before the loop waits: here the loop would otherwise
    /// sleep until the one-minute timer, and the test would time out.
    @Test func aStartedBlockRunsBeforeTheLoopWaitsForIO() throws {
        let loop = try Loop()
        let keepAlive = LoopTimer(loop: loop)
        keepAlive.start(after: 60_000) {}
        var runs = 0
        var prepare: LoopHook?
        prepare = LoopHook(loop: loop, .beforeWait) {
            runs += 1
            prepare?.stop()
            loop.stop()
        }
        LoopTimer(loop: loop).start(after: 0) { prepare?.start() }
        let started = loop.now
        loop.run()
        loop.updateTime()
        #expect(runs == 1)
        #expect(loop.now - started < 10_000)
        #expect(prepare?.isActive == false)
        keepAlive.close()
        closeCleanly(loop)  // the loop's close() closes the prepare handle
        #expect(prepare?.isClosed == true)
    }

    @Test func aStartedBlockRunsOncePerIterationUntilStopped() throws {
        let loop = try Loop()
        let keepAlive = LoopTimer(loop: loop)
        keepAlive.start(after: 60_000) {}
        var runs = 0
        let prepare = LoopHook(loop: loop, .beforeWait) { runs += 1 }
        loop.runOnce(blocking: false)
        #expect(runs == 0)
        prepare.start()
        prepare.start()  // starting twice changes nothing
        for _ in 0..<3 { loop.runOnce(blocking: false) }
        #expect(runs == 3)
        prepare.stop()
        loop.runOnce(blocking: false)
        #expect(runs == 3)
        prepare.close()
        prepare.close()  // harmless
        prepare.start()  // ignored once closed
        loop.runOnce(blocking: false)
        #expect(runs == 3 && !prepare.isActive && prepare.isClosed)
        keepAlive.close()
        closeCleanly(loop)
    }

    /// While a `.nextTurn` block is started the loop polls without sleeping: three turns
    /// pass at once although the only timer is a minute away.
    @Test func aNextTurnBlockKeepsTheLoopFromSleeping() throws {
        let loop = try Loop()
        let keepAlive = LoopTimer(loop: loop)
        keepAlive.start(after: 60_000) {}
        var runs = 0
        let hook = LoopHook(loop: loop, .nextTurn) {
            runs += 1
            if runs == 3 { loop.stop() }
        }
        hook.start()
        let started = uv_hrtime()
        loop.run()
        #expect(runs == 3)
        #expect(uv_hrtime() - started < 1_000_000_000)
        hook.stop()
        loop.runOnce(blocking: false)
        #expect(runs == 3)
        keepAlive.close()
        closeCleanly(loop)
        #expect(hook.isClosed)
    }

    /// Work that goes on at once, turn after turn, still lets the events at hand be handled
    /// between two of its turns. (A timer due in 0 ms that restarts itself would not: libuv
    /// runs it again in the same iteration, and the wake-up below would never be seen.)
    @Test func aNextTurnBlockLetsReadyEventsRunBetweenItsTurns() throws {
        let loop = try Loop()
        let keepAlive = LoopTimer(loop: loop)
        keepAlive.start(after: 60_000) {}
        let woken = Locked(false)
        var runs = 0
        var runsWhenWoken = 0
        let hook = LoopHook(loop: loop, .nextTurn) {
            runs += 1
            if runs == 1 {
                loop.execute { woken.withLock { $0 = true } }  // an eventfd write: ready I/O
            } else if woken.withLock({ $0 }) {
                runsWhenWoken = runs
                loop.stop()
            } else if runs == 100_000 {
                loop.stop()
            }
        }
        hook.start()
        loop.run()
        #expect(runsWhenWoken == 2)
        keepAlive.close()
        closeCleanly(loop)
    }

    /// The loop as a task executor gives way once a turn too: a task that yields again and
    /// again on it does not keep a ready wake-up (an eventfd write) from being handled.
    @Test func aTaskThatKeepsYieldingOnTheLoopLetsReadyEventsRun() throws {
        let loop = try Loop()
        let keepAlive = LoopTimer(loop: loop)
        keepAlive.start(after: 60_000) {}
        let woken = Locked(false)
        let yieldsBeforeWoken = Locked(0)
        LoopTimer(loop: loop).start(after: 0) {
            Task(executorPreference: loop) {
                var yields = 0
                while !woken.withLock({ $0 }) && yields < 1_000_000 {
                    yields += 1
                    await Task.yield()
                }
                yieldsBeforeWoken.withLock { $0 = yields }
                loop.stop()
            }
            loop.execute { woken.withLock { $0 = true } }
        }
        loop.run()
        #expect(woken.withLock { $0 })
        #expect(yieldsBeforeWoken.withLock { $0 } <= 2)
        keepAlive.close()
        closeCleanly(loop)
    }

    @Test func isRunningOnCurrentThreadHoldsOnlyInsideARun() throws {
        let loop = try Loop()
        #expect(!loop.isRunningOnCurrentThread)
        var inside: Bool?
        LoopTimer(loop: loop).start(after: 0) {
            inside = loop.isRunningOnCurrentThread
            loop.stop()
        }
        loop.run()
        #expect(inside == true)
        #expect(!loop.isRunningOnCurrentThread)
        closeCleanly(loop)
    }
}
