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
final class HTTPConnection: TCPConnectionDelegate {
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

    /// The server outlives its connections: `serveForever()` returns only after every
    /// connection has closed, so no reference count traffic is needed.
    unowned(unsafe) let server: HTTPServer
    let tcp: TCPConnection
    /// The connection's one handler instance, for its whole life (Python's model).
    let handler: BaseHTTPRequestHandler
    /// The parser, while the connection is active; an idle connection gives it up (it is
    /// the largest part of a connection's memory, and a fresh one parses the same).
    @exclusivity(unchecked) var parserBox: ParserBox?
    @exclusivity(unchecked) var phase = Phase.idle

    /// Bytes received but not yet parsed, or the unfinished head of the current request.
    @exclusivity(unchecked) var pending: [UInt8] = []
    /// How much of `pending` the parser has consumed already (it never rescans).
    @exclusivity(unchecked) private var pendingParsed = 0
    /// The current request's head bytes and the decoded body, until it is dispatched.
    @exclusivity(unchecked) var head: RequestHead?
    @exclusivity(unchecked) var headBytes: [UInt8] = []
    @exclusivity(unchecked) var body: [UInt8] = []

    /// Output produced since the last write; everything from one read leaves in one write.
    @exclusivity(unchecked) var output = ByteBuffer()
    /// Whether output has reached the socket since the current response began.
    @exclusivity(unchecked) var responseFlushed = false
    /// Where the current response starts in `output` (to replace it after a handler error).
    @exclusivity(unchecked) private var responseStart = 0
    /// Whether `parse` is on the stack (so that nothing re-enters it).
    @exclusivity(unchecked) private var parsing = false
    /// The framing state of the response being produced.
    @exclusivity(unchecked) var response = ResponseState()

    /// Whether reading stopped because unsent output passed the high-water mark.
    @exclusivity(unchecked) private var outputBlocked = false
    /// Whether reading stopped because too much input waits to be processed.
    @exclusivity(unchecked) private var inputBlocked = false
    @exclusivity(unchecked) private var peerClosed = false
    /// Whether a request was answered before it was all read (an error, an expectation
    /// refused): its remaining bytes may still arrive, so closing lingers.
    @exclusivity(unchecked) var requestRefused = false
    /// Loop times (ms) for the deadlines.
    @exclusivity(unchecked) var phaseSince: UInt64
    @exclusivity(unchecked) var writeProgressAt: UInt64
    /// This connection's index in the server's list (for O(1) removal).
    var slot = 0

    /// Called on the loop thread when queued output has drained to half the high-water mark
    /// or below, for a body produced piece by piece (a large file) under backpressure. Set by
    /// the producer, which clears it when done; cleared when the connection closes.
    var onDrain: (() -> Void)?
    /// Called once if the connection closes while `onDrain` is set (the producer stops).
    var onAbandon: (() -> Void)?

    init(server: HTTPServer, tcp: TCPConnection) {
        self.server = server
        self.tcp = tcp
        phaseSince = server.loop.now
        writeProgressAt = phaseSince
        let address = tcp.remoteAddress
        handler = server.handlerType.init(clientAddress: (address?.host ?? "", address?.port ?? 0),
                                          server: server)
        handler.connection = self
        tcp.delegate = self
        tcp.startReading()
    }

    var now: UInt64 { server.loop.now }

    // MARK: Input

    func connection(_ connection: TCPConnection, didRead bytes: UnsafeRawBufferPointer) {
        if phase == .closing { return }  // Lingering after the last response: discard.
        defer { returnScratch() }
        if pending.isEmpty && !isBlocked {
            // The common case: parse straight from the loop's read buffer.
            let (keep, parsed) = parse(bytes, from: 0)
            if keep < bytes.count {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[keep...]))
                pendingParsed = parsed
            }
        } else {
            pending.append(contentsOf: bytes)
            if isBlocked {
                if pending.count > server.configuration.inputHighWaterMark {
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

    func connectionDidReadEOF(_ connection: TCPConnection) {
        peerClosed = true
        switch phase {
        case .handling, .deferred:
            break  // Answer it; the connection closes afterwards.
        case .closing:
            if tcp.queuedBytes == 0 { tcp.close() }
        case .idle where outputBlocked && !pending.isEmpty:
            break  // Pipelined requests still to answer once the client reads.
        case .idle, .head, .body:
            closeGracefully()
        }
    }

    func connection(_ connection: TCPConnection, didFail error: UVError) {
        // A reset or a failed write: nothing more can be said to this client.
        tcp.close()
    }

    func connectionDidWrite(_ connection: TCPConnection) {
        writeProgressAt = now
        defer { returnScratch() }
        if let onDrain, tcp.queuedBytes <= server.configuration.outputHighWaterMark / 2 {
            onDrain()
        }
        if outputBlocked && tcp.queuedBytes <= server.configuration.outputHighWaterMark / 2 {
            outputBlocked = false
            resumeInput()
        }
    }

    func connectionDidClose(_ connection: TCPConnection) {
        phase = .closing
        onDrain = nil
        if let onAbandon {
            self.onAbandon = nil
            onAbandon()
        }
        handler.connectionDidClose()
        handler.connection = nil
        server.connectionDidClose(self)
    }

    private var isBlocked: Bool { outputBlocked || phase == .deferred || phase == .handling }

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
        guard !pending.isEmpty, !isBlocked, phase != .closing else { return }
        let window = pending
        pending = []
        let (keep, parsed) = window.withUnsafeBytes { parse($0, from: pendingParsed) }
        if keep < window.count {
            pending = Array(window[keep...])
        }
        pendingParsed = parsed
        if inputBlocked && pending.count <= server.configuration.inputHighWaterMark / 2 {
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
    private func parse(_ window: UnsafeRawBufferPointer, from start: Int) -> (keep: Int, parsed: Int) {
        var position = start
        var messageStart = 0
        parsing = true
        defer { parsing = false }
        let box = parserBox ?? makeParser()
        if output.capacity == 0 { server.borrow(into: &output) }
        if response.head.capacity == 0 { server.borrow(into: &response.head) }
        while !isBlocked && phase != .closing {
            let input = UnsafeRawBufferPointer(rebasing: window[position...])
            let (event, consumed) = box.parser.parse(input)
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
                headBytes.removeAll(keepingCapacity: true)
                headBytes.append(contentsOf: UnsafeRawBufferPointer(
                    rebasing: window[messageStart..<messageStart + parsedHead.headLength]))
                head = parsedHead
                phase = .body
                phaseSince = now
                if !checkExpectation(parsedHead) { return (position, 0) }
            case .body(let range):
                body.append(contentsOf: UnsafeRawBufferPointer(
                    rebasing: window[eventStart + range.lowerBound..<eventStart + range.upperBound]))
                phaseSince = now
            case .end:
                messageStart = position
                dispatch()
                if output.count >= server.configuration.outputHighWaterMark { flushOutput() }
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
    private func checkExpectation(_ head: RequestHead) -> Bool {
        guard head.isHTTP11OrLater, handler.protocolIsHTTP11 else { return true }
        switch head.expect {
        case .none:
            return true
        case .continue100:
            handler.prepare(head: head, headBytes: &headBytes, body: [], connection: self)
            if handler.handleExpect100() {
                swap(&headBytes, &handler.headBytes)  // dispatch() hands them over again
                response.reset()
                flushOutput()
                return true
            }
            handler.closeConnection = true  // The body may follow anyway: never parse it.
            requestRefused = true
            finishResponse()
            return false
        case .other:
            requestRefused = true
            handler.prepare(head: head, headBytes: &headBytes, body: [], connection: self)
            handler.sendError(417)
            finishResponse()
            return false
        }
    }

    private func dispatch() {
        guard let head else { return }
        self.head = nil
        phase = .handling
        let requestBody = body
        body = []
        handler.prepare(head: head, headBytes: &headBytes, body: requestBody, connection: self)
        handler.run()
        if phase == .handling { finishResponse() }
    }

    /// Resets the response state for a new request.
    func beginResponse() {
        response.reset()
        responseStart = output.count
        responseFlushed = false
    }

    /// A handler threw: before anything left, its output becomes a 500; after, the
    /// connection closes (the client sees a truncated response).
    func handlerDidThrow(_ error: any Error) {
        handler.logError("error in handler for \(handler.requestline.debugDescription): \(error)")
        if !responseFlushed {
            output.truncate(to: responseStart)
            response.reset()
            handler.sendError(500)
        } else {
            response.stage = .raw
        }
        handler.closeConnection = true
        if phase == .deferred { phase = .handling }
    }

    /// Called when the handler defers its response.
    func didDefer() {
        if phase == .handling { phase = .deferred }
    }

    /// Completes the current response (its framing) and moves on: the next request, or close.
    func finishResponse() {
        guard phase != .closing else { return }
        handler.completeResponse()
        handler.requestDidFinish()
        server.requestDidComplete()
        if handler.closeConnection || server.isShuttingDown {
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
        defer { returnScratch() }
        finishResponse()
        flushOutput()
        if phase == .idle { resumeInput() }
    }

    /// Answers a request the parser refused with its status, then closes.
    private func reject(_ error: ParseError, lineFrom bytes: UnsafeRawBufferPointer) {
        requestRefused = true
        let line = bytes.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }.prefix(200)
        phase = .handling
        handler.prepareForError(requestLine: Array(line), connection: self)
        handler.sendError(error.status, message: String(describing: error.reason))
        handler.closeConnection = true
        finishResponse()
    }

    // MARK: Output

    /// Writes what is buffered. Stops reading when the client is not keeping up.
    func flushOutput() {
        guard !output.isEmpty else { return }
        if tcp.isOpen {
            if tcp.queuedBytes == 0 { writeProgressAt = now }
            tcp.write(output.bytes)
            responseFlushed = true
            if tcp.queuedBytes > server.configuration.outputHighWaterMark && !outputBlocked {
                outputBlocked = true
                tcp.stopReading()
            }
        }
        output.removeAll(keepingAtMost: 1 << 16)
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
        let linger = !pending.isEmpty || requestRefused
        phase = .closing
        phaseSince = now
        pending = []
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
    var isIdle: Bool { phase == .idle && pending.isEmpty && output.isEmpty }
}

@available(*, unavailable)
extension HTTPConnection: Sendable {}
