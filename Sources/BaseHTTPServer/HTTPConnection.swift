import HTTPParser
import UVLoop

/// One client connection: performs what its `ConnectionStateMachine` decides, on its
/// transport and its handler. It parses input, runs the handler for each complete request in
/// order, writes what the handler produced, and closes.
///
/// Ownership, all on the loop thread:
/// - the server's connection list owns this object until the transport has closed;
/// - this object owns its `transport` (whose delegate it is until the close), its `handler`
///   (one for the connection's whole life, Python's model) and its `exchange`;
/// - the `exchange` (parser, unparsed input, request, response buffers) is taken from the
///   server's pool when bytes of a request arrive and given back once nothing waits, so an
///   idle connection owns none. While a response is in progress the handler borrows it
///   (`handler.exchange`); the connection takes it back when the response is finished.
final class HTTPConnection: TransportDelegate {
    let transport: any Transport
    let handler: BaseHTTPRequestHandler
    /// The connection's state: every decision is made there.
    var machine: ConnectionStateMachine
    /// The request and response state while there is work; nil while idle.
    private(set) var exchange: Exchange?
    /// The deferred response in progress, told when the client goes.
    var deferred: DeferredResponse?
    /// This connection's index in the server's list (for O(1) removal).
    var slot: Int32 = 0
    /// Whether the parse loop is on the stack (nothing re-enters it).
    private var parsing = false
    /// The handler class's `streamsRequestBodies`: without it, none of the streamed-body
    /// paths is taken (kept here, a check per request that costs nothing).
    private let streamsBodies: Bool

    init(server: HTTPServer, transport: any Transport) {
        self.transport = transport
        streamsBodies = server.streamsBodies
        machine = ConnectionStateMachine(now: UInt32(truncatingIfNeeded: server.loop.now))
        let address = transport.remoteAddress
        handler = server.handlerType.init(clientAddress: (address?.host ?? "", address?.port ?? 0),
                                          server: server)
        handler.connection = self
        transport.delegate = self
        transport.startReading()
    }

    var server: HTTPServer { handler.server }

    private var now: UInt32 { UInt32(truncatingIfNeeded: handler.server.loop.now) }

    private var configuration: HTTPServer.Configuration { handler.server.configuration }

    /// The exchange, taken from the server's pool when the connection has none.
    private func work() -> Exchange {
        if let exchange { return exchange }
        let exchange = handler.server.lendExchange()
        self.exchange = exchange
        return exchange
    }

    /// Gives the exchange back to the server once nothing waits in it (between requests, or
    /// while closing), so that idle connections own none: a crowd of them costs little
    /// memory, and the busy ones share warm buffers. Never while parsing, which uses it.
    private func returnExchangeIfDone() {
        guard !parsing, machine.isBetweenRequests, let exchange = exchange.take() else { return }
        if exchange.isDone {
            handler.exchange = nil
            handler.server.recycle(exchange)
        } else {
            self.exchange = exchange
        }
    }

    // MARK: Transport events

    func transport(_ transport: any Transport, didRead bytes: UnsafeRawBufferPointer) {
        let exchange: Exchange
        switch machine.didRead() {
        case .parse:
            exchange = work()
            if exchange.pending.isEmpty {
                // The common case: parse straight from the loop's read buffer.
                let (keep, parsed) = parse(bytes, from: 0, exchange)
                if keep < bytes.count, machine.state != .closing {
                    exchange.pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[keep...]))
                    exchange.pendingParsed = parsed
                }
            } else {
                exchange.pending.append(contentsOf: bytes)
                parsePending()
            }
        case .buffer:
            exchange = work()
            exchange.pending.append(contentsOf: bytes)
            perform(machine.inputBuffered(exchange.pending.count,
                                          highWaterMark: configuration.inputHighWaterMark))
        default:
            return  // Closing: discard.
        }
        if streamsBodies, exchange.bodyReader != nil { deliverBody(exchange) }
        flush(exchange)
        if machine.peerClosed { perform(machine.inputExhausted(now: now)) }
        returnExchangeIfDone()
    }

    func transportDidReadEOF(_ transport: any Transport) {
        if machine.state == .deferred { deferred?.clientStoppedSending() }
        perform(machine.peerClosed(inputWaits: hasPendingInput, outputQueued: transport.queuedBytes > 0,
                                   now: now))
    }

    func transport(_ transport: any Transport, didFail error: UVError) {
        perform(machine.transportFailed())
    }

    func transportDidWrite(_ transport: any Transport) {
        let queued = transport.queuedBytes
        let mark = configuration.outputHighWaterMark
        if let exchange, let waiter = exchange.drainWaiter, queued <= exchange.drainTarget {
            exchange.drainWaiter = nil
            waiter(true)
        }
        perform(machine.outputDrained(queued: queued, highWaterMark: mark, now: now))
        returnExchangeIfDone()
    }

    func transportDidClose(_ transport: any Transport) {
        machine.transportClosed()
        // The handler's waiting read and drain are told, once, after the connection is gone.
        // (A read waits only for a body still arriving: any other is answered at once.)
        let drainWaiter = exchange?.drainWaiter
        let bodyReader = exchange?.bodyReader
        handler.exchange = nil
        if let exchange {
            self.exchange = nil
            handler.server.recycle(exchange)  // resetting it drops the waiters
        }
        deferred?.clientDidLeave()
        deferred = nil
        handler.connection = nil
        handler.connectionDidClose()
        drainWaiter?(false)
        bodyReader?(.failed(.clientGone))
        handler.server.connectionDidClose(self)
    }

    // MARK: Actions

    private func perform(_ action: ConnectionStateMachine.Action) {
        switch action {
        case .none, .parse, .buffer, .discard, .dispatch, .answerExpectation, .reject, .timeOut:
            break  // Done by the caller that asked.
        case .stopReading:
            transport.stopReading()
        case .resume:
            resume()
        case .close(let linger):
            close(linger: linger)
        case .abort:
            transport.close()
        }
    }

    /// Reading may go on, and what waits may be parsed (output drained, a deferred response
    /// finished, waiting input consumed).
    private func resume() {
        guard transport.isOpen, !parsing else { return }
        if machine.wantsReading { transport.startReading() }
        parsePending()
        flushOutput()
        perform(machine.inputExhausted(now: now))
    }

    private var hasPendingInput: Bool { !(exchange?.pending.isEmpty ?? true) }

    // MARK: Parsing

    /// Parses what waits in `pending` (after a deferred response or backpressure ends).
    /// Runs even with nothing waiting while a body streams: the parser may owe the body's
    /// end (its last bytes came in the read that paused reading).
    private func parsePending() {
        guard let exchange, machine.canParse, !parsing,
              !exchange.pending.isEmpty || machine.streamingBody else { return }
        let window = exchange.pending
        exchange.pending = []
        let (keep, parsed) = window.withUnsafeBytes { parse($0, from: exchange.pendingParsed, exchange) }
        if keep < window.count, machine.state != .closing {
            exchange.pending = Array(window[keep...])
        }
        exchange.pendingParsed = parsed
        perform(machine.inputConsumed(exchange.pending.count, highWaterMark: configuration.inputHighWaterMark))
    }

    /// Runs the parser over `window` from `start`, dispatching each complete request, until it
    /// needs more bytes or must stop (a deferred response, backpressure, an error).
    /// - Returns: the offset from which bytes must be kept (the unfinished head, or input not
    ///   yet parsed) and how many of those kept bytes the parser has already consumed.
    private func parse(_ window: UnsafeRawBufferPointer, from start: Int,
                       _ exchange: Exchange) -> (keep: Int, parsed: Int) {
        var position = start
        var messageStart = 0
        parsing = true
        defer { parsing = false }
        while machine.canParse {
            let input = UnsafeRawBufferPointer(rebasing: window[position...])
            let (event, consumed) = exchange.parser.parse(input)
            let eventStart = position
            position += consumed
            switch event {
            case .needMore:
                if position > messageStart { machine.headStarted(now: now) }
                let keep = machine.state == .head ? messageStart : position
                return (keep, position - keep)
            case .head(let head):
                exchange.headBytes.replaceSubrange(
                    exchange.headBytes.indices,
                    with: UnsafeRawBufferPointer(rebasing: window[messageStart..<messageStart + head.headLength]))
                if !exchange.body.isEmpty { exchange.body.removeAll(keepingCapacity: true) }
                exchange.head = head
                var expects = head.expect != .none && head.isHTTP11OrLater && handler.protocolIsHTTP11
                var streams = false
                if streamsBodies {  // (Other servers' bodies are always whole.)
                    streams = head.hasBody
                    // A streaming handler runs now; `100 Continue` waits for its first read.
                    exchange.bodyState = streams ? .streaming : .whole
                    exchange.continuePending = streams && expects && head.expect == .continue100
                    if exchange.continuePending { expects = false }
                }
                switch machine.headReceived(expects: expects, streams: streams, now: now) {
                case .answerExpectation: answerExpectation(head.expect, exchange)
                case .dispatch: dispatch(exchange)
                default: break
                }
            case .body(let range):
                if streamsBodies && exchange.body.isEmpty && machine.streamingBody {
                    // Room for what may arrive before the handler takes it, at once: growing
                    // a piece by doubling copied it twice more (and faulted in new pages).
                    exchange.body.reserveCapacity(configuration.inputHighWaterMark + (64 << 10))  // + one read
                }
                exchange.body.append(contentsOf: UnsafeRawBufferPointer(
                    rebasing: window[eventStart + range.lowerBound..<eventStart + range.upperBound]))
                machine.bodyProgressed(now: now)
                if streamsBodies && machine.streamingBody {
                    perform(machine.bodyBuffered(exchange.body.count, highWaterMark: configuration.inputHighWaterMark))
                }
            case .end:
                messageStart = position
                if streamsBodies && machine.streamingBody { exchange.bodyState = .ended }
                switch machine.requestReceived() {
                case .dispatch: dispatch(exchange)
                case .resume: perform(.resume)
                default: break
                }
                if exchange.output.count >= configuration.outputHighWaterMark { flush(exchange) }
            case .error(let error):
                if streamsBodies && machine.streamingBody {
                    if machine.parseFailed() == .reject {
                        failBody(error.kind == .bodyTooLarge ? .tooLarge : .malformed, answer: error.status, exchange)
                    }
                } else if machine.parseFailed() == .reject {
                    reject(error, lineFrom: UnsafeRawBufferPointer(rebasing: window[messageStart...]))
                }
                return (window.count, 0)
            }
        }
        if machine.state == .closing || machine.state == .closed { return (window.count, 0) }
        // A streamed body stopped by backpressure: its bytes so far are out of the window.
        if streamsBodies && machine.streamingBody { return (position, 0) }
        return (messageStart, position - messageStart)
    }

    // MARK: Requests

    /// Answers `Expect` before the body is read: `100 Continue` through the handler's
    /// `handleExpect100()`, 417 for an expectation we do not know.
    private func answerExpectation(_ expect: ExpectValue, _ exchange: Exchange) {
        handler.prepare(exchange)
        if expect == .continue100, handler.handleExpect100() {
            exchange.isResponding = false  // The interim response is out; the request goes on.
            flushOutput()
            _ = machine.expectationAnswered(accepted: true, now: now)
            return
        }
        _ = machine.expectationAnswered(accepted: false, now: now)
        if expect != .continue100 { handler.sendError(417) }
        handler.closeConnection = true  // The body may follow anyway: never parse it.
        finishResponse()
    }

    // MARK: Streamed bodies

    /// The handler's `readBody(_:)`: the first sends `100 Continue` if the client waits for
    /// it, then parts go to the handler as they are there.
    func readBody(_ reader: @escaping (BodyPart) -> Void, _ exchange: Exchange) {
        if exchange.bodyReader != nil {
            handler.logError("readBody: a read was still waiting; the earlier one is dropped")
        }
        exchange.bodyReader = reader
        if exchange.continuePending {
            exchange.continuePending = false
            sendContinue(exchange)
        }
        deliverBody(exchange)
    }

    /// `100 Continue` through the handler's `handleExpect100()`, unless its response has
    /// begun already (then the client sends the body after its own wait, or not at all).
    private func sendContinue(_ exchange: Exchange) {
        guard exchange.response.stage == .none, exchange.output.count == exchange.responseStart else { return }
        if handler.handleExpect100() {
            flush(exchange)
            exchange.beginResponse(bufferSize: exchange.responseBufferSize)  // The response starts after it.
            return
        }
        // Refused: what the handler sent is the response; the body is never read.
        exchange.bodyState = .failed(.refused)
        finishResponse(exchange)
        flush(exchange)
    }

    /// Hands the handler's waiting read what there is: the bytes buffered, else the end or
    /// the failure; while the body still arrives with nothing buffered, the read waits (and
    /// the body deadline runs). A read made by the reader is served by this same loop.
    private func deliverBody(_ exchange: Exchange) {
        guard !exchange.deliveringBody else { return }
        exchange.deliveringBody = true
        defer { exchange.deliveringBody = false }
        while let reader = exchange.bodyReader {
            let part: BodyPart
            if case .whole = exchange.bodyState {
                let rest = handler.rfile.read()  // What the handler has not read through `rfile`.
                part = rest.isEmpty ? .end : .data(rest)
            } else if !exchange.body.isEmpty {
                part = .data(exchange.body)
                exchange.body = []
            } else {
                switch exchange.bodyState {
                case .ended, .whole: part = .end
                case .failed(let error): part = .failed(error)
                case .streaming:
                    machine.bodyAwaited(true, now: now)
                    return
                }
            }
            exchange.bodyReader = nil
            machine.bodyAwaited(false, now: now)
            if case .data = part { perform(machine.bodyTaken()) }
            reader(part)
        }
    }

    /// A streamed body stopped short (`error`): answers `status` in place of the handler's
    /// response when none of it has left yet (else closes), then tells the handler's read.
    private func failBody(_ error: RequestBodyError, answer status: Int, _ exchange: Exchange) {
        exchange.bodyState = .failed(error)  // Told after the bytes that came before it.
        if exchange.isResponding {
            if exchange.responseFlushed {
                transport.close()  // The client has part of a response: it can only be cut short.
            } else {
                exchange.output.truncate(to: exchange.responseStart)
                exchange.response.reset()
                handler.sendError(status)
                handler.closeConnection = true
                finishResponse(exchange)
                flush(exchange)
            }
        }
        deliverBody(exchange)
    }

    // MARK: Output flow

    /// The handler's `waitForDrain(_:)` (its output is flushed already).
    func waitForDrain(_ then: @escaping (Bool) -> Void, _ exchange: Exchange, emptied: Bool = false) {
        if exchange.drainWaiter != nil {
            handler.logError("waitForDrain: a wait was still pending; the earlier one is dropped")
        }
        let target = emptied ? 0 : configuration.outputHighWaterMark / 2
        if transport.queuedBytes <= target {
            exchange.drainWaiter = nil
            handler.server.onNextTurn { [transport] in then(transport.isOpen) }
        } else {
            exchange.drainWaiter = then
            exchange.drainTarget = target
        }
    }

    /// Sends what the response has buffered, then up to `count` bytes of the file
    /// `descriptor` from `offset` straight from the page cache, when the transport can
    /// (see `Transport.sendFile`): the bytes sent now, or nil (nothing was sent: read and
    /// write them instead).
    func sendFile(_ descriptor: Int32, offset: Int, count: Int, _ exchange: Exchange) -> Int? {
        guard transport.isOpen else { return nil }
        let result = transport.sendFile(prefix: exchange.output.bytes, descriptor, offset: offset,
                                        count: count)
        guard let result else { return nil }
        exchange.output.removeAll(keepingAtMost: 1 << 16)
        exchange.responseFlushed = true
        switch result {
        case .success(let sent):
            return sent
        case .failure(let error):
            // The client is gone (or the file unreadable): what follows fails like a write.
            transport(transport, didFail: error)
            return 0
        }
    }

    private func dispatch(_ exchange: Exchange) {
        if handler.server.recordsAccess { exchange.requestStart = monotonicNanoseconds() }
        handler.prepare(exchange)
        handler.run()
        if machine.state == .handling { finishResponse(exchange) }
    }

    /// Answers a request the parser refused with its status, then closes.
    private func reject(_ error: ParseError, lineFrom bytes: UnsafeRawBufferPointer) {
        let line = bytes.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }.prefix(200)
        handler.prepareForError(requestLine: Array(line), work())
        handler.sendError(error.status, message: pythonErrorMessage(error, requestLine: Array(line)))
        handler.closeConnection = true
        finishResponse()
    }

    /// Answers 408 to a request whose head or body took too long, then closes.
    private func timeOut() {
        handler.prepareForError(requestLine: [], work())
        handler.sendError(408)
        handler.closeConnection = true
        finishResponse()
    }

    /// A handler threw: before anything left, its output becomes a 500; after, the
    /// connection closes (the client sees a truncated response).
    func handlerDidThrow(_ error: any Error) {
        handler.logError("error in handler for \(handler.requestline.debugDescription): \(error)")
        machine.handlerThrew()
        deferred = nil
        guard let exchange = handler.exchange, exchange.isResponding else { return }
        if !exchange.responseFlushed {
            exchange.output.truncate(to: exchange.responseStart)
            exchange.response.reset()
            handler.sendError(500)
        } else {
            exchange.response.stage = .raw
        }
        handler.closeConnection = true
    }

    /// Called when the handler defers its response.
    func didDefer(_ response: DeferredResponse) {
        machine.responseDeferred()
        if machine.state == .deferred { deferred = response }
    }

    /// Completes the current response (its framing) and moves on: the next request, or close.
    /// The handler gives the exchange back, and the request's head is let go, so the parser
    /// can reuse its storage (attributes not read by now are no longer available: the
    /// contract keeps them until this point).
    private func finishResponse() {
        finishResponse(work())
    }

    private func finishResponse(_ exchange: Exchange) {
        guard machine.state == .handling || machine.state == .deferred else { return }
        // Finished before the body's end: the rest is never read.
        var bodyUnread = false
        if streamsBodies, machine.streamingBody, case .streaming = exchange.bodyState { bodyUnread = true }
        if bodyUnread { handler.closeConnection = true }
        // The status and size, before the framing's end resets them.
        let sent = handler.server.recordsAccess
            ? (status: exchange.response.status, bytes: exchange.response.bodyCount) : nil
        handler.completeResponse(exchange)
        if let sent, let logger = handler.server.logger {
            handler.recordAccess(exchange, status: sent.status, bytes: sent.bytes, logger: logger)
        }
        exchange.isResponding = false
        if deferred != nil { deferred = nil }
        exchange.head = nil
        handler.server.requestDidComplete()
        let keepAlive = !handler.closeConnection && !handler.server.isShuttingDown
        let action = machine.responseFinished(keepAlive: keepAlive, inputWaits: !exchange.pending.isEmpty,
                                              now: now)
        if bodyUnread {
            exchange.bodyState = .failed(.responseFinished)
            exchange.body = []
        }
        if action != .parse { perform(action) }  // The parse loop, or the caller, goes on.
        if streamsBodies, exchange.bodyReader != nil { deliverBody(exchange) }
    }

    /// A deferred response finished: write it and carry on with what waited behind it.
    func deferredResponseDidFinish() {
        guard machine.state == .deferred else { return }
        finishResponse()
        afterDeferredResponse()
    }

    /// The code that finishes a deferred response threw (an async handler's): as when a
    /// handler throws, a 500 if nothing was sent yet, else a cut connection; then carry on.
    func deferredResponseDidFail(_ error: any Error) {
        guard machine.state == .deferred else { return }
        handlerDidThrow(error)
        finishResponse()
        afterDeferredResponse()
    }

    private func afterDeferredResponse() {
        flushOutput()
        if machine.state == .idle { resume() }
        returnExchangeIfDone()
    }

    // MARK: Output

    /// Writes what is buffered. Stops reading when the client is not keeping up.
    func flushOutput() {
        guard let exchange else { return }
        flush(exchange)
    }

    private func flush(_ exchange: Exchange) {
        guard !exchange.output.isEmpty else { return }
        if transport.isOpen {
            let before = transport.queuedBytes
            transport.write(exchange.output.bytes)
            exchange.responseFlushed = true
            perform(machine.outputQueued(queuedBefore: before, queuedAfter: transport.queuedBytes,
                                         highWaterMark: configuration.outputHighWaterMark, now: now))
        }
        exchange.output.removeAll(keepingAtMost: 1 << 16)
    }

    /// Sends what is buffered, then closes; with `linger`, half-closes once it has left and
    /// reads until the client closes (or the linger deadline), so that a client still sending
    /// is not reset before it has read the response.
    private func close(linger: Bool) {
        guard transport.isOpen else { return }
        flushOutput()
        exchange?.pending.removeAll()
        if !linger && transport.queuedBytes == 0 {
            // Everything is with the kernel and nothing unread is known: a plain close sends
            // the response and then FIN, without a half-close round through the loop.
            transport.close()
            return
        }
        transport.shutdown { [self] error in
            perform(machine.shutdownCompleted(failed: error != nil, shuttingDown: server.isShuttingDown))
            if machine.wantsReading { transport.startReading() }
        }
    }

    // MARK: Deadlines and shutdown

    /// Enforces the deadline of the current state; called by the server's one sweep timer.
    func checkDeadlines(now: UInt32, deadlines: ConnectionStateMachine.Deadlines) {
        let action = machine.tick(now: now, deadlines: deadlines, outputQueued: transport.queuedBytes > 0,
                                  inputWaits: hasPendingInput)
        if action == .timeOut, let exchange, case .streaming = exchange.bodyState {
            failBody(.timedOut, answer: 408, exchange)
        } else if action == .timeOut {
            timeOut()
            flushOutput()
        } else {
            perform(action)
        }
    }

    /// The server is shutting down: closes now if nothing is in flight.
    func shutdownRequested() {
        perform(machine.shutdownRequested(inputWaits: hasPendingInput,
                                          outputWaits: !(exchange?.output.isEmpty ?? true), now: now))
    }

    /// Closes without a goodbye (the shutdown grace period is over).
    func abort() {
        transport.close()
    }
}

@available(*, unavailable)
extension HTTPConnection: Sendable {}
