import HTTPParser
import UVLoop

/// One client connection: feeds its bytes to the parser, runs its handler for each complete
/// request in order, writes what the handler produced, and enforces the deadlines and limits.
///
/// Everything happens on the loop thread. Reads are parsed straight from the loop's buffer;
/// only the unfinished head of a request (or input waiting behind a deferred response) is
/// copied into `pending`.
///
/// The mutable state is loop-confined and no access to it overlaps another (no `inout` is
/// held across a call out), so its stored properties are `@exclusivity(unchecked)`: the
/// dynamic exclusivity check would otherwise cost more than the parsing of a small request.
final class HTTPConnection: TransportDelegate {
    enum Phase {
        /// Between requests, no byte of the next one seen yet.
        case idle
        /// Part of a request head has arrived (the head deadline runs).
        case head
        /// The head is complete and the body is arriving (the body deadline runs).
        case body
        /// The handler is running.
        case handling
        /// The handler returned without finishing; later requests wait.
        case deferred
        /// The last response is written (or being written); the connection is closing.
        case closing
    }

    // The fields are ordered so that they pack: an idle connection is this object, its
    // handler, and the TCP handle and its owner, nothing more.

    let tcp: TCPConnection
    /// The connection's one handler instance, for its whole life (Python's model). It holds
    /// the connection's exchange while there is one (see `work`).
    let handler: BaseHTTPRequestHandler
    /// Loop times (milliseconds, wrapping) for the deadlines: when the phase began, and when
    /// queued output last made progress.
    @exclusivity(unchecked) var phaseSince: UInt32
    @exclusivity(unchecked) var writeProgressAt: UInt32
    /// This connection's index in the server's list (for O(1) removal).
    var slot: Int32 = 0
    @exclusivity(unchecked) var phase = Phase.idle
    /// Whether `parse` is on the stack (so that nothing re-enters it).
    @exclusivity(unchecked) private(set) var parsing = false
    /// Whether reading stopped because unsent output passed the high-water mark.
    @exclusivity(unchecked) private var outputBlocked = false
    /// Whether reading stopped because too much input waits to be processed.
    @exclusivity(unchecked) private var inputBlocked = false
    @exclusivity(unchecked) private var peerClosed = false
    /// Whether a request was answered before it was all read (an error, an expectation
    /// refused): its remaining bytes may still arrive, so closing lingers.
    @exclusivity(unchecked) var requestRefused = false

    init(server: HTTPServer, tcp: TCPConnection) {
        self.tcp = tcp
        phaseSince = UInt32(truncatingIfNeeded: server.clock.now)
        writeProgressAt = phaseSince
        let address = tcp.remoteAddress
        handler = server.handlerType.init(clientAddress: (address?.host ?? "", address?.port ?? 0),
                                          server: server)
        handler.connection = self
        tcp.delegate = self
        tcp.startReading()
    }

    /// The server outlives its connections: `serveForever()` returns only after every
    /// connection has closed.
    var server: HTTPServer { handler.owner }

    /// Runs `body` with the server, borrowed without reference counting (the request path).
    @inline(__always)
    func withServer<R>(_ body: (HTTPServer) -> R) -> R {
        handler.withOwner(body)
    }

    /// The parser, the request and the response in progress: borrowed from the server while
    /// the connection has work, handed back when it is idle (see `returnExchange()`).
    var exchange: Exchange? { handler.exchange }

    /// The exchange, borrowed from the server when the connection has none.
    var work: Exchange { workReference.takeUnretainedValue() }

    /// `work` as the reference the handler holds, for callers that borrow it for a while
    /// (`_withUnsafeGuaranteedRef`) instead of retaining it.
    var workReference: Unmanaged<Exchange> {
        if let reference = handler.exchangeReference { return reference }
        let reference = withServer { $0.lendExchange() }
        handler.exchangeReference = reference
        return reference
    }

    /// Hands the exchange back to the server (which resets it for another connection).
    func giveBackExchange() {
        guard let reference = handler.exchangeReference else { return }
        handler.exchangeReference = nil
        withServer { $0.recycle(reference) }
    }

    var now: UInt32 { UInt32(truncatingIfNeeded: withServer { $0.clock.now }) }

    // MARK: Input

    func transport(_ transport: any Transport, didRead bytes: UnsafeRawBufferPointer) {
        if phase == .closing { return }  // Lingering after the last response: discard.
        defer { returnExchange() }
        // Borrowed: the exchange goes back only in `returnExchange()` (after this) or when
        // the connection's close callback runs (never during a read).
        workReference._withUnsafeGuaranteedRef { read(bytes, into: $0) }
    }

    private func read(_ bytes: UnsafeRawBufferPointer, into exchange: Exchange) {
        if exchange.pending.isEmpty && !isBlocked {
            // The common case: parse straight from the loop's read buffer.
            let (keep, parsed) = parse(bytes, from: 0, exchange)
            if keep < bytes.count {
                exchange.pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[keep...]))
                exchange.pendingParsed = parsed
            }
        } else {
            exchange.pending.append(contentsOf: bytes)
            if isBlocked {
                if exchange.pending.count > server.configuration.inputHighWaterMark {
                    inputBlocked = true
                    tcp.stopReading()
                }
            } else {
                parsePending()
            }
        }
        flushOutput()
        closeIfPeerIsDone()
    }

    func transportDidReadEOF(_ transport: any Transport) {
        peerClosed = true
        switch phase {
        case .handling, .deferred:
            break  // Answer it; the connection closes afterwards.
        case .closing:
            if tcp.queuedBytes == 0 { tcp.close() }
        case .idle where outputBlocked && hasPendingInput:
            break  // Pipelined requests still to answer once the client reads.
        case .idle, .head, .body:
            closeGracefully()
        }
    }

    func transport(_ transport: any Transport, didFail error: UVError) {
        // A reset or a failed write: nothing more can be said to this client.
        tcp.close()
    }

    func transportDidWrite(_ transport: any Transport) {
        writeProgressAt = now
        defer { returnExchange() }
        if let onDrain = exchange?.onDrain, tcp.queuedBytes <= server.configuration.outputHighWaterMark / 2 {
            onDrain()
        }
        if outputBlocked && tcp.queuedBytes <= server.configuration.outputHighWaterMark / 2 {
            outputBlocked = false
            resumeInput()
        }
    }

    func transportDidClose(_ transport: any Transport) {
        phase = .closing
        let onAbandon = exchange?.onAbandon
        giveBackExchange()  // resetting it drops the drain hooks
        onAbandon?()
        handler.connection = nil
        server.connectionDidClose(self)
    }

    private var isBlocked: Bool { outputBlocked || phase == .deferred || phase == .handling }

    private var hasPendingInput: Bool { !(exchange?.pending.isEmpty ?? true) }

    /// After the client half-closed: close once nothing it sent is left to answer (an
    /// unfinished request can never complete now).
    private func closeIfPeerIsDone() {
        guard peerClosed, !isBlocked, tcp.isOpen else { return }
        switch phase {
        case .idle, .head, .body: closeGracefully()
        case .handling, .deferred, .closing: break
        }
    }

    /// Parses what waits in `pending` (after a deferred response or backpressure ends).
    private func parsePending() {
        guard let exchange, !exchange.pending.isEmpty, !isBlocked, phase != .closing else { return }
        let window = exchange.pending
        exchange.pending = []
        let (keep, parsed) = window.withUnsafeBytes { parse($0, from: exchange.pendingParsed, exchange) }
        if keep < window.count {
            exchange.pending = Array(window[keep...])
        }
        exchange.pendingParsed = parsed
        if inputBlocked && exchange.pending.count <= server.configuration.inputHighWaterMark / 2 {
            inputBlocked = false
            tcp.startReading()
        }
    }

    private func resumeInput() {
        guard tcp.isOpen, phase != .closing, !parsing else { return }
        if !inputBlocked && !peerClosed { tcp.startReading() }
        parsePending()
        flushOutput()
        closeIfPeerIsDone()
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
        while !isBlocked && phase != .closing {
            let input = UnsafeRawBufferPointer(rebasing: window[position...])
            let (event, consumed) = exchange.parser.parse(input)
            let eventStart = position
            position += consumed
            switch event {
            case .needMore:
                if phase == .idle && position > messageStart {
                    phase = .head
                    phaseSince = now
                }
                let keep = phase == .head ? messageStart : position
                return (keep, position - keep)
            case .head(let parsedHead):
                exchange.headBytes.replaceSubrange(
                    exchange.headBytes.indices,
                    with: UnsafeRawBufferPointer(rebasing: window[messageStart..<messageStart + parsedHead.headLength]))
                if !exchange.body.isEmpty { exchange.body.removeAll(keepingCapacity: true) }
                exchange.head = parsedHead
                phase = .body
                phaseSince = now
                if !checkExpectation(parsedHead, exchange) { return (position, 0) }
            case .body(let range):
                exchange.body.append(contentsOf: UnsafeRawBufferPointer(
                    rebasing: window[eventStart + range.lowerBound..<eventStart + range.upperBound]))
                phaseSince = now
            case .end:
                messageStart = position
                dispatch(exchange)
                if exchange.output.count >= withServer({ $0.configuration.outputHighWaterMark }) { flushOutput() }
            case .error(let error):
                reject(error, lineFrom: UnsafeRawBufferPointer(rebasing: window[messageStart...]))
                return (window.count, 0)
            }
        }
        if phase == .closing { return (window.count, 0) }
        return (messageStart, position - messageStart)
    }

    // MARK: Requests

    /// Answers `Expect` before the body is read: `100 Continue` through the handler's
    /// `handleExpect100()`, 417 for an expectation we do not know.
    private func checkExpectation(_ head: RequestHead, _ exchange: Exchange) -> Bool {
        guard head.isHTTP11OrLater, handler.protocolIsHTTP11 else { return true }
        switch head.expect {
        case .none:
            return true
        case .continue100:
            handler.prepare(exchange, connection: self)
            if handler.handleExpect100() {
                exchange.response.reset()
                flushOutput()
                return true
            }
            handler.closeConnection = true  // The body may follow anyway: never parse it.
            requestRefused = true
            finishResponse()
            return false
        case .other:
            requestRefused = true
            handler.prepare(exchange, connection: self)
            handler.sendError(417)
            finishResponse()
            return false
        }
    }

    private func dispatch(_ exchange: Exchange) {
        guard exchange.head != nil else { return }
        phase = .handling
        handler.prepare(exchange, connection: self)
        handler.run()
        if phase == .handling { finishResponse() }
    }

    /// Resets the response state for a new request.
    func beginResponse(_ exchange: Exchange) {
        exchange.response.reset()
        exchange.responseStart = exchange.output.count
        exchange.responseFlushed = false
    }

    /// A handler threw: before anything left, its output becomes a 500; after, the
    /// connection closes (the client sees a truncated response).
    func handlerDidThrow(_ error: any Error) {
        handler.logError("error in handler for \(handler.requestline.debugDescription): \(error)")
        let exchange = work
        if !exchange.responseFlushed {
            exchange.output.truncate(to: exchange.responseStart)
            exchange.response.reset()
            handler.sendError(500)
        } else {
            exchange.response.stage = .raw
        }
        handler.closeConnection = true
        if phase == .deferred { phase = .handling }
    }

    /// Called when the handler defers its response.
    func didDefer() {
        if phase == .handling { phase = .deferred }
    }

    /// Completes the current response (its framing) and moves on: the next request, or close.
    /// The request's head is let go, so the parser can reuse its storage (attributes not
    /// read by now are no longer available: the contract keeps them until this point).
    func finishResponse() {
        guard phase != .closing else { return }
        handler.completeResponse()
        exchange?.head = nil
        let isShuttingDown = withServer { server in
            server.requestDidComplete()
            return server.isShuttingDown
        }
        if handler.closeConnection || isShuttingDown {
            closeGracefully()
        } else {
            // A client that half-closed still gets answers to everything it sent: the
            // connection closes once the input waiting behind this response is answered.
            phase = .idle
            phaseSince = now
        }
    }

    /// A deferred response finished: write it and carry on with what waited behind it.
    func deferredResponseDidFinish() {
        guard phase == .deferred else { return }
        defer { returnExchange() }
        finishResponse()
        flushOutput()
        if phase == .idle { resumeInput() }
    }

    /// Answers a request the parser refused with its status, then closes.
    private func reject(_ error: ParseError, lineFrom bytes: UnsafeRawBufferPointer) {
        requestRefused = true
        let line = bytes.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }.prefix(200)
        phase = .handling
        handler.prepareForError(requestLine: Array(line), work, connection: self)
        handler.sendError(error.status, message: String(describing: error.reason))
        handler.closeConnection = true
        finishResponse()
    }

    // MARK: Output

    /// Writes what is buffered. Stops reading when the client is not keeping up.
    func flushOutput() {
        // Borrowed: writing never gives the exchange back (write failures are reported on a
        // later loop iteration).
        handler.exchangeReference?._withUnsafeGuaranteedRef { flushOutput($0) }
    }

    private func flushOutput(_ exchange: Exchange) {
        guard !exchange.output.isEmpty else { return }
        if tcp.isOpen {
            if tcp.queuedBytes == 0 { writeProgressAt = now }
            tcp.write(exchange.output.bytes)
            exchange.responseFlushed = true
            if tcp.queuedBytes > withServer({ $0.configuration.outputHighWaterMark }) && !outputBlocked {
                outputBlocked = true
                tcp.stopReading()
            }
        }
        exchange.output.removeAll(keepingAtMost: 1 << 16)
    }

    /// Sends what is buffered, half-closes once it has left, and closes when the client has
    /// closed too (or after a short linger), so that a response is never cut off by a reset.
    func closeGracefully() {
        guard tcp.isOpen else { return }
        flushOutput()
        // Linger (read and discard until the client closes) only when the client may still
        // be sending: input not yet answered, or a refused request whose body may be on its
        // way. Closing with unread bytes would reset the connection, and a reset can destroy
        // the response before the client reads it. Otherwise close once the output is sent.
        let linger = hasPendingInput || requestRefused
        phase = .closing
        phaseSince = now
        exchange?.pending.removeAll()
        if !linger && tcp.queuedBytes == 0 {
            // Everything is with the kernel and nothing unread is known: a plain close sends
            // the response and then FIN, without a half-close round through the loop.
            tcp.close()
            return
        }
        tcp.shutdown { [self] error in
            if error != nil || peerClosed || server.isShuttingDown || !linger {
                tcp.close()
            } else {
                tcp.startReading()
            }
        }
    }

    /// Closes without a goodbye (deadline passed, shutdown grace period over).
    func abort() {
        tcp.close()
    }

    /// Whether the connection has nothing in flight (for shutdown).
    var isIdle: Bool {
        phase == .idle && (exchange.map { $0.pending.isEmpty && $0.output.isEmpty } ?? true)
    }
}

@available(*, unavailable)
extension HTTPConnection: Sendable {}
