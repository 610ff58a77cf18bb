import Testing
@testable import BaseHTTPServer

/// The connection's decisions alone: no sockets, no loop, and time is whatever number the
/// test says (a fake clock in milliseconds).
@Suite("Connection state machine")
struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine
    let deadlines = Machine.Deadlines(head: 30_000, body: 60_000, idle: 60_000, write: 60_000)

    /// A machine that has received a whole request and runs its handler.
    func handling(at now: UInt32 = 0) -> Machine {
        var machine = Machine(now: now)
        #expect(machine.didRead() == .parse)
        machine.headStarted(now: now)
        #expect(machine.headReceived(expects: false, now: now) == .parse)
        #expect(machine.requestReceived() == .dispatch)
        #expect(machine.state == .handling)
        return machine
    }

    func tick(_ machine: inout Machine, at now: UInt32, outputQueued: Bool = false,
              inputWaits: Bool = false) -> Machine.Action {
        machine.tick(now: now, deadlines: deadlines, outputQueued: outputQueued, inputWaits: inputWaits)
    }

    // MARK: Streamed bodies

    /// A machine whose handler runs while the body arrives.
    func streaming(at now: UInt32 = 0) -> Machine {
        var machine = Machine(now: now)
        machine.headStarted(now: now)
        #expect(machine.headReceived(expects: false, streams: true, now: now) == .dispatch)
        #expect(machine.state == .handling)
        #expect(machine.streamingBody)
        return machine
    }

    @Test func aStreamedBodyIsParsedWhileTheHandlerRunsAndNotPastItsEnd() {
        var machine = streaming()
        #expect(machine.canParse)
        #expect(machine.didRead() == .parse)
        #expect(machine.requestReceived() == .none)  // the body's end: no second dispatch
        #expect(!machine.streamingBody)
        #expect(!machine.canParse)  // what follows is the next request: it waits
        #expect(machine.didRead() == .buffer)
        #expect(machine.responseFinished(keepAlive: true, inputWaits: true, now: 5) == .parse)
    }

    @Test func bytesTheHandlerHasNotTakenPauseReadingUntilItDoes() {
        var machine = streaming()
        #expect(machine.bodyBuffered(100, highWaterMark: 1000) == .none)
        #expect(machine.bodyBuffered(1001, highWaterMark: 1000) == .stopReading)
        #expect(!machine.canParse)
        #expect(!machine.wantsReading)
        #expect(machine.didRead() == .buffer)
        #expect(machine.bodyTaken() == .resume)
        #expect(machine.canParse)
        #expect(machine.wantsReading)
        #expect(machine.bodyTaken() == .none)
    }

    @Test func theBodyDeadlineRunsOnlyWhileTheHandlerWaitsForBytes() {
        var machine = streaming(at: 0)
        // The handler is busy (not waiting): a silent client is not late.
        #expect(tick(&machine, at: 100_000) == .none)
        machine.bodyAwaited(true, now: 100_000)
        machine.bodyProgressed(now: 130_000)
        #expect(tick(&machine, at: 189_999) == .none)
        #expect(tick(&machine, at: 190_000) == .timeOut)
        #expect(!machine.streamingBody)
        #expect(machine.responseFinished(keepAlive: true, inputWaits: false, now: 190_001) == .close(linger: true))
    }

    @Test func aResponseFinishedBeforeTheBodysEndClosesAndLingers() {
        var machine = streaming()
        #expect(machine.responseFinished(keepAlive: true, inputWaits: false, now: 5) == .close(linger: true))
        #expect(machine.state == .closing)
        #expect(machine.wantsReading)  // the rest of the body is read and dropped
    }

    @Test func aMalformedStreamedBodyIsRejectedWhileHandling() {
        var machine = streaming()
        #expect(machine.parseFailed() == .reject)
        #expect(!machine.canParse)
        #expect(machine.parseFailed() == .none)  // once
    }

    @Test func aPeerThatHalfClosesMidBodyEndsTheConnectionOnceWhatWaitsIsParsed() {
        var waiting = streaming()
        _ = waiting.bodyBuffered(2000, highWaterMark: 1000)
        #expect(waiting.peerClosed(inputWaits: true, outputQueued: false, now: 5) == .none)
        #expect(waiting.inputExhausted(now: 5) == .none)  // held back, not exhausted
        #expect(waiting.bodyTaken() == .resume)
        #expect(waiting.inputExhausted(now: 6) == .abort)

        var machine = streaming()
        #expect(machine.peerClosed(inputWaits: false, outputQueued: false, now: 5) == .abort)
    }

    @Test func aStreamingHandlerAnswersAnExpectationOtherThanContinueBeforeItRuns() {
        var machine = Machine(now: 0)
        #expect(machine.headReceived(expects: true, streams: true, now: 0) == .answerExpectation)
        #expect(machine.state == .expecting)
        #expect(!machine.streamingBody)
    }

    // MARK: Requests and responses

    @Test func aRequestIsParsedDispatchedAndTheConnectionKeptAlive() {
        var machine = handling()
        #expect(machine.acceptsOutput)
        #expect(!machine.canParse)
        #expect(machine.responseFinished(keepAlive: true, inputWaits: false, now: 5) == .parse)
        #expect(machine.state == .idle)
        #expect(!machine.acceptsOutput)
        #expect(machine.canParse)
        #expect(machine.isBetweenRequests)
    }

    @Test func aResponseThatEndsTheConnectionClosesWithoutLingeringWhenNothingWaits() {
        var machine = handling()
        #expect(machine.responseFinished(keepAlive: false, inputWaits: false, now: 5) == .close(linger: false))
        #expect(machine.state == .closing)
        #expect(!machine.wantsReading)
        #expect(machine.didRead() == .discard)
    }

    @Test func closingWithUnansweredInputLingers() {
        var machine = handling()
        #expect(machine.responseFinished(keepAlive: false, inputWaits: true, now: 5) == .close(linger: true))
        #expect(machine.wantsReading)  // read and discard until the client closes
        #expect(machine.shutdownCompleted(failed: false, shuttingDown: false) == .none)
        #expect(machine.peerClosed(inputWaits: false, outputQueued: false, now: 6) == .abort)
    }

    @Test func aLingeringCloseEndsAfterTheLingerDeadline() {
        var machine = handling()
        _ = machine.responseFinished(keepAlive: false, inputWaits: true, now: 1_000)
        #expect(tick(&machine, at: 2_999) == .none)
        #expect(tick(&machine, at: 3_000) == .abort)
    }

    @Test func aCloseWithoutLingerClosesOnceTheHalfCloseIsDone() {
        var machine = handling()
        _ = machine.responseFinished(keepAlive: false, inputWaits: false, now: 5)
        #expect(machine.shutdownCompleted(failed: false, shuttingDown: false) == .abort)
        var failing = handling()
        _ = failing.responseFinished(keepAlive: false, inputWaits: true, now: 5)
        #expect(failing.shutdownCompleted(failed: true, shuttingDown: false) == .abort)
        var shuttingDown = handling()
        _ = shuttingDown.responseFinished(keepAlive: false, inputWaits: true, now: 5)
        #expect(shuttingDown.shutdownCompleted(failed: false, shuttingDown: true) == .abort)
    }

    @Test func pipelinedInputWaitsWhileTheHandlerRunsAndIsParsedAfter() {
        var machine = handling()
        #expect(machine.didRead() == .buffer)
        #expect(machine.inputBuffered(100, highWaterMark: 1_000) == .none)
        #expect(machine.responseFinished(keepAlive: true, inputWaits: true, now: 1) == .parse)
    }

    @Test func aDeferredResponseHoldsLaterRequestsUntilItFinishes() {
        var machine = handling()
        machine.responseDeferred()
        #expect(machine.state == .deferred)
        #expect(machine.acceptsOutput)
        #expect(machine.didRead() == .buffer)
        #expect(machine.inputBuffered(2_000, highWaterMark: 1_000) == .stopReading)
        #expect(!machine.wantsReading)
        #expect(machine.inputBuffered(3_000, highWaterMark: 1_000) == .none)  // once
        #expect(machine.responseFinished(keepAlive: true, inputWaits: true, now: 9) == .parse)
        #expect(machine.inputConsumed(600, highWaterMark: 1_000) == .none)  // above half
        #expect(machine.inputConsumed(500, highWaterMark: 1_000) == .resume)
        #expect(machine.wantsReading)
    }

    @Test func aDeferredResponseThatThrowsEndsLikeASynchronousOne() {
        var machine = handling()
        machine.responseDeferred()
        machine.handlerThrew()
        #expect(machine.state == .handling)
    }

    @Test func responseFinishedOutsideAResponseIsIgnored() {
        var machine = Machine(now: 0)
        #expect(machine.responseFinished(keepAlive: true, inputWaits: false, now: 1) == .none)
        #expect(machine.state == .idle)
    }

    // MARK: Expectations and errors

    @Test func anAcceptedExpectationLetsTheBodyCome() {
        var machine = Machine(now: 0)
        #expect(machine.headReceived(expects: true, now: 1) == .answerExpectation)
        #expect(machine.state == .expecting)
        #expect(machine.acceptsOutput)  // the 100 Continue
        #expect(machine.expectationAnswered(accepted: true, now: 2) == .parse)
        #expect(machine.state == .body)
        #expect(machine.requestReceived() == .dispatch)
    }

    @Test func aRefusedExpectationIsTheResponseAndTheCloseLingers() {
        var machine = Machine(now: 0)
        _ = machine.headReceived(expects: true, now: 1)
        #expect(machine.expectationAnswered(accepted: false, now: 2) == .none)
        #expect(machine.state == .handling)
        #expect(machine.responseFinished(keepAlive: false, inputWaits: false, now: 3) == .close(linger: true))
    }

    @Test func aParseErrorIsAnsweredAndTheCloseLingers() {
        for start in [Machine.State.idle, .head, .body] {
            var machine = Machine(now: 0)
            if start != .idle { machine.headStarted(now: 0) }
            if start == .body { _ = machine.headReceived(expects: false, now: 0) }
            #expect(machine.state == start)
            #expect(machine.parseFailed() == .reject)
            #expect(machine.acceptsOutput)
            #expect(machine.responseFinished(keepAlive: false, inputWaits: false, now: 1) == .close(linger: true))
        }
        var machine = handling()
        #expect(machine.parseFailed() == .none)  // nothing is parsed while a handler runs
    }

    // MARK: Deadlines

    @Test func aHeadThatTakesTooLongGets408EvenWhileBytesTrickle() {
        var machine = Machine(now: 1_000)
        machine.headStarted(now: 1_000)
        machine.headStarted(now: 20_000)  // more bytes: the deadline does not move
        #expect(tick(&machine, at: 30_999) == .none)
        #expect(tick(&machine, at: 31_000) == .timeOut)
        #expect(machine.state == .handling)
        #expect(machine.responseFinished(keepAlive: false, inputWaits: false, now: 31_000) == .close(linger: true))
    }

    @Test func aBodyThatStallsGets408ButProgressMovesTheDeadline() {
        var machine = Machine(now: 0)
        _ = machine.headReceived(expects: false, now: 0)
        machine.bodyProgressed(now: 50_000)
        #expect(tick(&machine, at: 109_999) == .none)
        #expect(tick(&machine, at: 110_000) == .timeOut)
    }

    @Test func anIdleConnectionClosesAfterTheIdleDeadlineButNotWithInputWaiting() {
        var machine = handling()
        _ = machine.responseFinished(keepAlive: true, inputWaits: false, now: 10)
        #expect(tick(&machine, at: 60_009) == .none)
        #expect(tick(&machine, at: 60_010, inputWaits: true) == .none)
        #expect(tick(&machine, at: 60_010) == .close(linger: false))
    }

    @Test func outputThatMakesNoProgressClosesTheConnectionInAnyState() {
        var machine = handling()
        #expect(machine.outputQueued(queuedBefore: 0, queuedAfter: 10, highWaterMark: 100, now: 100) == .none)
        #expect(tick(&machine, at: 60_099, outputQueued: true) == .none)
        #expect(tick(&machine, at: 60_100, outputQueued: true) == .abort)
        #expect(tick(&machine, at: 60_100, outputQueued: false) == .none)
        // Progress moves the deadline; a write onto a queue that is not empty does not.
        _ = machine.outputDrained(queued: 5, highWaterMark: 100, now: 50_000)
        _ = machine.outputQueued(queuedBefore: 5, queuedAfter: 15, highWaterMark: 100, now: 70_000)
        #expect(tick(&machine, at: 109_999, outputQueued: true) == .none)
        #expect(tick(&machine, at: 110_000, outputQueued: true) == .abort)
    }

    @Test func aDeadlineOfZeroIsOff() {
        var machine = Machine(now: 0)
        machine.headStarted(now: 0)
        let off = Machine.Deadlines(head: 0, body: 0, idle: 0, write: 0)
        #expect(machine.tick(now: 4_000_000_000, deadlines: off, outputQueued: true, inputWaits: false) == .none)
    }

    @Test func deadlinesHoldAcrossTheClockWrapping() {
        let start = UInt32.max - 1_000
        var machine = Machine(now: start)
        machine.headStarted(now: start)
        #expect(tick(&machine, at: start &+ 29_999) == .none)
        #expect(tick(&machine, at: start &+ 30_000) == .timeOut)
    }

    @Test func aHandlerOrADeferredResponseHasNoDeadlineOfItsOwn() {
        var machine = handling()
        #expect(tick(&machine, at: 4_000_000) == .none)
        machine.responseDeferred()
        #expect(tick(&machine, at: 4_000_000) == .none)
    }

    // MARK: Backpressure

    @Test func outputAboveTheHighWaterMarkPausesReadingUntilItDrainsToHalf() {
        var machine = Machine(now: 0)
        #expect(machine.outputQueued(queuedBefore: 0, queuedAfter: 101, highWaterMark: 100, now: 0) == .stopReading)
        #expect(!machine.canParse)
        #expect(machine.didRead() == .buffer)
        #expect(!machine.wantsReading)
        #expect(machine.outputDrained(queued: 51, highWaterMark: 100, now: 1) == .none)
        #expect(machine.outputDrained(queued: 50, highWaterMark: 100, now: 2) == .resume)
        #expect(machine.canParse)
        #expect(machine.wantsReading)
    }

    @Test func readingStaysPausedWhileEitherBacklogHolds() {
        var machine = handling()
        machine.responseDeferred()
        _ = machine.inputBuffered(2_000, highWaterMark: 1_000)
        _ = machine.outputQueued(queuedBefore: 0, queuedAfter: 101, highWaterMark: 100, now: 0)
        #expect(machine.outputDrained(queued: 0, highWaterMark: 100, now: 1) == .resume)
        #expect(!machine.wantsReading)  // the input backlog still holds
    }

    // MARK: The peer

    @Test func aHalfCloseBetweenRequestsCloses() {
        for start in [Machine.State.idle, .head, .body] {
            var machine = Machine(now: 0)
            if start != .idle { machine.headStarted(now: 0) }
            if start == .body { _ = machine.headReceived(expects: false, now: 0) }
            #expect(machine.peerClosed(inputWaits: false, outputQueued: false, now: 1) == .close(linger: false))
        }
    }

    @Test func aHalfCloseDuringAResponseIsAnsweredFirst() {
        var machine = handling()
        #expect(machine.peerClosed(inputWaits: false, outputQueued: false, now: 1) == .none)
        #expect(!machine.wantsReading)
        #expect(machine.responseFinished(keepAlive: true, inputWaits: true, now: 2) == .parse)
        // Everything it sent is answered; then, with nothing left, the connection closes.
        #expect(machine.inputExhausted(now: 3) == .close(linger: false))
    }

    @Test func aHalfCloseWithPipelinedRequestsBehindBackedUpOutputWaitsForThem() {
        var machine = Machine(now: 0)
        _ = machine.outputQueued(queuedBefore: 0, queuedAfter: 101, highWaterMark: 100, now: 0)
        #expect(machine.peerClosed(inputWaits: true, outputQueued: true, now: 1) == .none)
        #expect(machine.inputExhausted(now: 1) == .none)  // cannot parse yet
        #expect(machine.outputDrained(queued: 0, highWaterMark: 100, now: 2) == .resume)
        #expect(!machine.wantsReading)
        #expect(machine.inputExhausted(now: 3) == .close(linger: false))
    }

    @Test func aHalfCloseWhileClosingClosesOnceTheOutputHasLeft() {
        var machine = handling()
        _ = machine.responseFinished(keepAlive: false, inputWaits: true, now: 1)
        #expect(machine.peerClosed(inputWaits: false, outputQueued: true, now: 2) == .none)
        var sent = handling()
        _ = sent.responseFinished(keepAlive: false, inputWaits: true, now: 1)
        #expect(sent.peerClosed(inputWaits: false, outputQueued: false, now: 2) == .abort)
    }

    @Test func aTransportFailureAbortsAndAClosedTransportEndsEverything() {
        var machine = handling()
        #expect(machine.transportFailed() == .abort)
        machine.transportClosed()
        #expect(machine.state == .closed)
        #expect(machine.transportFailed() == .none)
        #expect(machine.didRead() == .discard)
        #expect(!machine.acceptsOutput)
        #expect(!machine.wantsReading)
        #expect(tick(&machine, at: 1_000_000, outputQueued: true) == .none)
        #expect(machine.outputQueued(queuedBefore: 0, queuedAfter: 1_000, highWaterMark: 1, now: 0) == .none)
    }

    // MARK: Shutdown

    @Test func shutdownClosesIdleConnectionsAndLetsBusyOnesFinish() {
        var idle = Machine(now: 0)
        #expect(idle.shutdownRequested(inputWaits: false, outputWaits: false, now: 1) == .close(linger: false))
        var waiting = Machine(now: 0)
        #expect(waiting.shutdownRequested(inputWaits: true, outputWaits: false, now: 1) == .none)
        var busy = handling()
        #expect(busy.shutdownRequested(inputWaits: false, outputWaits: false, now: 1) == .none)
        #expect(busy.responseFinished(keepAlive: false, inputWaits: false, now: 2) == .close(linger: false))
    }
}
