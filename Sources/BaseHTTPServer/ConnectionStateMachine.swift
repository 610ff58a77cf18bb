/// What one HTTP connection does next, decided from what happened to it: a value with no I/O.
///
/// `HTTPConnection` feeds it events (input arrived, the parser found a head or the end of a
/// request, the handler deferred or finished its response, output queued or drained, the
/// peer half-closed, the transport failed or closed, the sweep timer ticked) and performs the
/// `Action` each returns on its transport and handler. Every decision about a connection
/// lives here: when to parse, dispatch, pause or resume reading, time out, linger or close.
/// Times are the loop's milliseconds, wrapping (`UInt32`); nothing here reads a clock, so
/// tests drive it with any times they like.
///
/// States × events. A cell is the transition and the action returned; `—` means the event is
/// ignored there (or cannot happen). "close" is `.close(linger:)`, "abort" is `.abort`.
///
/// | event                 | idle          | head          | body           | expecting      | handling          | deferred          | closing          | closed  |
/// |-----------------------|---------------|---------------|----------------|----------------|-------------------|-------------------|------------------|---------|
/// | `didRead`             | parse¹        | parse¹        | parse¹         | buffer         | buffer²           | buffer²           | discard          | discard |
/// | `headStarted`         | → head        | —             | —              | —              | —                 | —                 | —                | —       |
/// | `headReceived`        | → body, or → expecting: answerExpectation | same | — | —           | —                 | —                 | —                | —       |
/// | `expectationAnswered` | —             | —             | —              | → body: parse, or → handling³ | — | —                 | —                | —       |
/// | `bodyProgressed`      | —             | —             | deadline again | —              | —                 | —                 | —                | —       |
/// | `requestReceived`     | —             | —             | → handling: dispatch | —        | —                 | —                 | —                | —       |
/// | `parseFailed`         | → handling³: reject | → handling³: reject | → handling³: reject | — | —           | —                 | —                | —       |
/// | `responseDeferred`    | —             | —             | —              | —              | → deferred        | —                 | —                | —       |
/// | `handlerThrew`        | —             | —             | —              | —              | —                 | → handling        | —                | —       |
/// | `responseFinished`    | —             | —             | —              | —              | → idle: parse, or → closing: close | same | —             | —       |
/// | `inputExhausted`      | close if the peer closed⁴ | same | same       | —              | —                 | —                 | —                | —       |
/// | `peerClosed`          | → closing: close⁴ | → closing: close | → closing: close | → closing: close | — (answer first) | — (answer first) | abort once sent | — |
/// | `tick`: deadline      | → closing: close (idle) | → handling³: timeOut (408) | → handling³: timeOut (408) | — | — | —             | abort (linger over) | — |
/// | `shutdownRequested`   | → closing: close, unless input waits | — | —   | —              | —                 | —                 | —                | —       |
/// | `shutdownCompleted`   | —             | —             | —              | —              | —                 | —                 | abort unless lingering | — |
/// | `transportFailed`     | abort         | abort         | abort          | abort          | abort             | abort             | abort            | —       |
/// | `transportClosed`     | → closed      | → closed      | → closed       | → closed       | → closed          | → closed          | → closed         | —       |
///
/// In every open state, besides: `outputQueued` above the high-water mark and `inputBuffered`
/// above the input mark return stopReading; `outputDrained` to half the mark returns resume
/// (reading restarts if nothing else holds it, and what waits is parsed); `inputConsumed` to
/// half the input mark returns resume; `tick` with queued output that made no progress for
/// the write deadline returns abort.
///
/// Streamed bodies (the handler class takes bodies as they arrive): `headReceived` with
/// `streams` goes straight to handling (dispatch), and while the body arrives the machine is
/// `streamingBody`: in handling and deferred, input is parsed (up to the body's end, which
/// `requestReceived` marks; what follows waits as usual); `bodyBuffered` above the input mark
/// returns stopReading and `bodyTaken` resume; `tick` past the body deadline, counted only
/// while the handler waits for bytes (`bodyAwaited`), returns timeOut; `parseFailed` returns
/// reject; `responseFinished` closes and lingers (the rest of the body is never read); the
/// peer's half-close aborts once no waiting input could complete the body.
///
/// ¹ buffer instead while unsent output holds reading back. ² above `inputHighWaterMark` of
/// buffered input, reading pauses. ³ the request was answered before all of it was read, so
/// the close that follows lingers: it half-closes and reads until the client closes (or the
/// linger deadline), so that the client is not reset before it has read the answer. ⁴ an
/// idle connection whose pipelined requests still wait behind unsent output answers them
/// first.
struct ConnectionStateMachine {
    enum State: Equatable {
        /// Between requests, no byte of the next one seen yet.
        case idle
        /// Part of a request head has arrived (the head deadline runs).
        case head
        /// The head is complete and the body is arriving (the body deadline runs).
        case body
        /// The handler decides on `Expect: 100-continue` before the body is read.
        case expecting
        /// The handler runs.
        case handling
        /// The handler returned without finishing its response; later requests wait.
        case deferred
        /// The last response is written (or being written); the connection is closing.
        case closing
        /// The transport has closed.
        case closed
    }

    /// What the connection must do now.
    enum Action: Equatable {
        /// Nothing.
        case none
        /// Run the parser over the input (the new bytes, or what waits).
        case parse
        /// Keep the input for later: a response is in progress, or output is backed up.
        case buffer
        /// Drop the input: the connection is closing.
        case discard
        /// Ask the handler about the request's `Expect` before its body is read.
        case answerExpectation
        /// Run the handler for the request just received.
        case dispatch
        /// Answer the parse error, then close.
        case reject
        /// Answer 408 (the head or body took too long), then close.
        case timeOut
        /// Stop reading from the transport.
        case stopReading
        /// Start reading again, then parse what waits.
        case resume
        /// Send what is queued and close; half-close first and read until the client closes
        /// when `linger` (it may still be sending).
        case close(linger: Bool)
        /// Close at once.
        case abort
    }

    /// Deadlines in milliseconds; 0 turns one off.
    struct Deadlines: Equatable {
        var head: UInt32
        var body: UInt32
        var idle: UInt32
        var write: UInt32
        /// How long a closing connection reads and discards, waiting for the client to close.
        var linger: UInt32 = 2000
    }

    private(set) var state = State.idle
    /// When the current state began (for its deadline).
    private(set) var since: UInt32
    /// When queued output last made progress (for the write deadline).
    private(set) var writeProgressAt: UInt32
    /// Reading is held back because unsent output passed the high-water mark.
    private(set) var outputBacklogged = false
    /// Reading is held back because too much input waits behind a response.
    private(set) var inputBacklogged = false
    /// The peer half-closed: nothing more will arrive.
    private(set) var peerClosed = false
    /// The request in progress was answered before all of it was read (an error, a refused
    /// expectation, a timeout): its remaining bytes may still arrive, so closing lingers.
    private(set) var answeredEarly = false
    /// The current close lingers (see `Action.close(linger:)`).
    private(set) var lingering = false
    /// The handler runs while the request's body still arrives (its class streams bodies):
    /// input is parsed in `handling` and `deferred` up to the body's end.
    private(set) var streamingBody = false
    /// A streamed body's unread bytes passed their mark: reading pauses until the handler
    /// takes them.
    private(set) var bodyBacklogged = false
    /// The handler waits for more of a streamed body (the body deadline runs only then: a
    /// slow handler is not the client's fault).
    private(set) var bodyAwaited = false

    init(now: UInt32) {
        since = now
        writeProgressAt = now
    }

    /// Whether input can be parsed now: a request is being received (or could start) and
    /// no unsent output holds reading back.
    var canParse: Bool {
        switch state {
        case .idle, .head, .body: !outputBacklogged
        case .handling, .deferred: streamingBody && !bodyBacklogged && !outputBacklogged
        case .expecting, .closing, .closed: false
        }
    }

    /// Whether the handler's output belongs to a response in progress. Output at any other
    /// time (after `finish()`, say) is dropped, never sent between two framed responses.
    var acceptsOutput: Bool {
        switch state {
        case .expecting, .handling, .deferred: true
        case .idle, .head, .body, .closing, .closed: false
        }
    }

    /// Whether no request is under way (its parser state and buffers can be let go).
    var isBetweenRequests: Bool {
        switch state {
        case .idle, .closing, .closed: true
        case .head, .body, .expecting, .handling, .deferred: false
        }
    }

    /// Whether reading should be on: nothing holds it back and more input can matter.
    var wantsReading: Bool {
        switch state {
        case .closed: false
        case .closing: lingering && !peerClosed
        default: !outputBacklogged && !inputBacklogged && !bodyBacklogged && !peerClosed
        }
    }

    // MARK: Input

    /// Bytes arrived.
    func didRead() -> Action {
        switch state {
        case .closing, .closed: .discard
        default: canParse ? .parse : .buffer
        }
    }

    /// Input waits unparsed (`buffered` bytes): above `highWaterMark`, reading pauses.
    mutating func inputBuffered(_ buffered: Int, highWaterMark: Int) -> Action {
        guard !inputBacklogged, buffered > highWaterMark, state != .closed else { return .none }
        inputBacklogged = true
        return .stopReading
    }

    /// Waiting input was parsed down to `buffered` bytes: at half the mark, reading resumes.
    mutating func inputConsumed(_ buffered: Int, highWaterMark: Int) -> Action {
        guard inputBacklogged, buffered <= highWaterMark / 2 else { return .none }
        inputBacklogged = false
        return wantsReading ? .resume : .none
    }

    /// The first bytes of a head arrived, not the whole head.
    mutating func headStarted(now: UInt32) {
        guard state == .idle else { return }
        state = .head
        since = now
    }

    /// A whole head arrived; `expects` is true when it has an `Expect` field to answer now;
    /// `streams` when the handler takes the body as it arrives (it runs at once, and answers
    /// `100-continue` itself when it starts taking the body).
    mutating func headReceived(expects: Bool, streams: Bool = false, now: UInt32) -> Action {
        guard state == .idle || state == .head else { return .none }
        since = now
        if streams && !expects {
            state = .handling
            streamingBody = true
            bodyAwaited = false
            return .dispatch
        }
        if expects {
            state = .expecting
            return .answerExpectation
        }
        state = .body
        return .parse
    }

    /// The handler accepted the expectation (the body may come) or refused it (its answer is
    /// the response; the connection then closes).
    mutating func expectationAnswered(accepted: Bool, now: UInt32) -> Action {
        guard state == .expecting else { return .none }
        if accepted {
            state = .body
            since = now
            return .parse
        }
        state = .handling
        answeredEarly = true
        return .none
    }

    /// Body bytes arrived: the body deadline starts again.
    mutating func bodyProgressed(now: UInt32) {
        if state == .body || streamingBody { since = now }
    }

    /// The whole request (head and body) is in: the handler runs, or, for a streamed body,
    /// nothing more of this request is parsed (what follows is the next request, which waits).
    mutating func requestReceived() -> Action {
        if streamingBody {
            streamingBody = false
            bodyAwaited = false
            return bodyBacklogged ? bodyTaken() : .none
        }
        guard state == .body else { return .none }
        state = .handling
        return .dispatch
    }

    // MARK: Streamed bodies

    /// The handler waits for more of its streamed body (`awaited`), or has something to work
    /// on. The body deadline runs while it waits, from when it began to.
    mutating func bodyAwaited(_ awaited: Bool, now: UInt32) {
        guard streamingBody, awaited != bodyAwaited else { return }
        bodyAwaited = awaited
        if awaited { since = now }
    }

    /// A streamed body's bytes not yet taken by the handler number `buffered`: above
    /// `highWaterMark`, reading pauses.
    mutating func bodyBuffered(_ buffered: Int, highWaterMark: Int) -> Action {
        guard streamingBody, !bodyBacklogged, buffered > highWaterMark else { return .none }
        bodyBacklogged = true
        return .stopReading
    }

    /// The handler took what was buffered of its body: reading resumes if it paused.
    mutating func bodyTaken() -> Action {
        guard bodyBacklogged else { return .none }
        bodyBacklogged = false
        switch state {
        case .closing, .closed: return .none
        default: return .resume
        }
    }

    /// The parser refused the input.
    mutating func parseFailed() -> Action {
        switch state {
        case .idle, .head, .body:
            state = .handling
            answeredEarly = true
            return .reject
        case .handling where streamingBody, .deferred where streamingBody:
            endStreamedBody()
            return .reject
        default:
            return .none
        }
    }

    /// A streamed body ends before its last byte (refused, timed out, abandoned): the rest
    /// of it may still arrive, so the close that follows lingers.
    private mutating func endStreamedBody() {
        streamingBody = false
        bodyAwaited = false
        bodyBacklogged = false
        answeredEarly = true
    }

    /// Everything the parser could take was parsed: if the peer has half-closed, nothing it
    /// sent is left to answer (an unfinished request can never complete now).
    mutating func inputExhausted(now: UInt32) -> Action {
        guard peerClosed, canParse else { return .none }
        if streamingBody { return .abort }  // The body stops short for good.
        return beginClose(linger: false, now: now)
    }

    // MARK: Responses

    /// The handler returned without finishing; it will call `finish()` later.
    mutating func responseDeferred() {
        if state == .handling { state = .deferred }
    }

    /// The handler threw: its response (an error page, or what it sent) ends now, deferred
    /// or not.
    mutating func handlerThrew() {
        if state == .deferred { state = .handling }
    }

    /// The response is complete. `keepAlive`: the connection may carry another request.
    /// `inputWaits`: unparsed input is buffered (pipelined requests, or a refused body).
    mutating func responseFinished(keepAlive: Bool, inputWaits: Bool, now: UInt32) -> Action {
        guard state == .handling || state == .deferred else { return .none }
        if streamingBody {
            // Answered before the body was all read: the rest is never parsed.
            endStreamedBody()
            return beginClose(linger: true, now: now)
        }
        if !keepAlive || answeredEarly {  // Answered early: where the next request starts is unknown.
            return beginClose(linger: inputWaits || answeredEarly, now: now)
        }
        state = .idle
        since = now
        answeredEarly = false
        return .parse
    }

    // MARK: Output

    /// Output was handed to the transport; `queuedBefore` and `queuedAfter` are its unsent
    /// bytes before and after. Above `highWaterMark`, reading pauses until it drains.
    mutating func outputQueued(queuedBefore: Int, queuedAfter: Int, highWaterMark: Int,
                               now: UInt32) -> Action {
        if queuedBefore == 0 { writeProgressAt = now }
        guard !outputBacklogged, queuedAfter > highWaterMark, state != .closed else { return .none }
        outputBacklogged = true
        return .stopReading
    }

    /// Queued output left (`queued` bytes still unsent). At half the high-water mark,
    /// reading resumes and waiting input is parsed.
    mutating func outputDrained(queued: Int, highWaterMark: Int, now: UInt32) -> Action {
        writeProgressAt = now
        guard outputBacklogged, queued <= highWaterMark / 2 else { return .none }
        outputBacklogged = false
        switch state {
        case .closing, .closed: return .none
        default: return .resume
        }
    }

    // MARK: The peer and the transport

    /// The peer half-closed. `inputWaits`: unparsed input is buffered; `outputQueued`:
    /// output has not all left yet.
    mutating func peerClosed(inputWaits: Bool, outputQueued: Bool, now: UInt32) -> Action {
        peerClosed = true
        switch state {
        case .handling where streamingBody, .deferred where streamingBody:
            // Unless what waits completes it, the body never can: nothing to answer.
            return inputWaits ? .none : .abort
        case .handling, .deferred, .closed:
            return .none  // Answer it; the connection closes afterwards.
        case .closing:
            return outputQueued ? .none : .abort
        case .idle where outputBacklogged && inputWaits:
            return .none  // Pipelined requests still to answer once the client reads.
        case .idle, .head, .body, .expecting:
            return beginClose(linger: false, now: now)
        }
    }

    /// The transport failed (a reset, a failed write): nothing more can be said.
    func transportFailed() -> Action {
        state == .closed ? .none : .abort
    }

    /// The transport is closed.
    mutating func transportClosed() {
        state = .closed
    }

    /// The half-close of a closing connection completed (`failed`: it could not be done).
    func shutdownCompleted(failed: Bool, shuttingDown: Bool) -> Action {
        guard state == .closing else { return .none }
        return failed || peerClosed || shuttingDown || !lingering ? .abort : .none
    }

    // MARK: Time and shutdown

    /// The sweep timer's tick: enforces the deadline of the current state.
    /// `outputQueued`: output has not all left; `inputWaits`: unparsed input is buffered.
    mutating func tick(now: UInt32, deadlines: Deadlines, outputQueued: Bool, inputWaits: Bool) -> Action {
        if state == .closed { return .none }
        if outputQueued, expired(writeProgressAt, deadlines.write, now) { return .abort }
        switch state {
        case .head where expired(since, deadlines.head, now),
             .body where expired(since, deadlines.body, now):
            state = .handling
            answeredEarly = true
            return .timeOut
        case .handling where bodyAwaited && expired(since, deadlines.body, now),
             .deferred where bodyAwaited && expired(since, deadlines.body, now):
            endStreamedBody()
            return .timeOut
        case .idle where !inputWaits && expired(since, deadlines.idle, now):
            return beginClose(linger: false, now: now)
        case .closing where expired(since, deadlines.linger, now):
            return .abort
        default:
            return .none
        }
    }

    /// The server is shutting down: an idle connection closes now; one in flight finishes
    /// its response first (and closes then).
    mutating func shutdownRequested(inputWaits: Bool, outputWaits: Bool, now: UInt32) -> Action {
        guard state == .idle, !inputWaits, !outputWaits else { return .none }
        return beginClose(linger: false, now: now)
    }

    private mutating func beginClose(linger: Bool, now: UInt32) -> Action {
        state = .closing
        since = now
        lingering = linger
        return .close(linger: linger)
    }

    /// Whether `limit` milliseconds (0: no deadline) have passed since `start`. Times wrap
    /// every 49.7 days, which no deadline comes near, so the difference is always right.
    private func expired(_ start: UInt32, _ limit: UInt32, _ now: UInt32) -> Bool {
        limit > 0 && now &- start >= limit
    }
}
