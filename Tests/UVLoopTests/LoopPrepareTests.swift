import Testing
@testable import UVLoop

@Suite("LoopPrepare")
struct LoopPrepareTests {
    /// Work a timer leaves is handed on before the loop waits: here the loop would otherwise
    /// sleep until the one-minute timer, and the test would time out.
    @Test func aStartedBlockRunsBeforeTheLoopWaitsForIO() throws {
        let loop = try Loop()
        let keepAlive = LoopTimer(loop: loop)
        keepAlive.start(after: 60_000) {}
        var runs = 0
        var prepare: LoopPrepare?
        prepare = LoopPrepare(loop: loop) {
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
        let prepare = LoopPrepare(loop: loop) { runs += 1 }
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
