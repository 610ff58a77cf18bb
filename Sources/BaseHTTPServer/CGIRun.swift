import Glibc
import UVLoop

/// One CGI script running for one request: the child process, the request body on its way
/// to the script's standard input, its output on the way to the client, its errors on the way
/// to the log, and its deadlines.
///
/// Owned by its process's exit callback and its pipes' delegate slots: it lives until the
/// script has exited and its output has ended. Everything happens on the loop thread.
final class CGIRun: TransportDelegate {
    private let handler: CGIHTTPRequestHandler
    private let script: CGIHTTPRequestHandler.Script
    private let response: DeferredResponse
    private var process: ChildProcess?
    /// Unowned: the server keeps this run (its deadline watcher) as long as it has to, and a
    /// strong reference back would keep a server that stopped serving from ever being freed.
    private unowned let server: HTTPServer

    private enum Phase {
        /// Reading the script's header block.
        case head
        /// Streaming the script's body to the client.
        case body
        /// The response is over (sent, refused, or the client left); output is discarded.
        case done
    }
    private var phase = Phase.head
    private var head: [UInt8] = []
    private var declaredLength: Int?
    private var bodySent = 0
    private var outputEnded = false
    private var exited = false
    /// The deadline clock's time of the script's last sign of life (output, or input taken).
    private var lastActivity: UInt64
    /// When SIGTERM was sent (the client left), for the SIGKILL that follows.
    private var terminatedAt: UInt64?
    private var killedForSilence = false
    /// A line of standard error not ended yet.
    private var errorLine: [UInt8] = []

    private let timeout: UInt64
    private let killDelay: UInt64
    private let headLimit: Int

    init(handler: CGIHTTPRequestHandler, script: CGIHTTPRequestHandler.Script, response: DeferredResponse) {
        self.handler = handler
        self.script = script
        self.response = response
        server = handler.server
        lastActivity = handler.server.clockNow
        let type = type(of: handler)
        timeout = UInt64(max(type.cgiTimeout, 0.001) * 1000)
        killDelay = UInt64(max(type.cgiKillDelay, 0) * 1000)
        headLimit = type.maxScriptHeaderSize
    }

    /// Spawns the script and starts the traffic; answers 500 when it cannot start.
    func start() {
        var options = ChildProcess.Options(executable: script.file)
        options.environment = script.environment
        options.workingDirectory = String(script.file[..<(script.file.lastIndex(of: "/") ?? script.file.endIndex)])
        do {
            process = try ChildProcess.spawn(loop: server.loop, options) { [self] _, termination in
                didExit(termination)
            }
        } catch {
            handler.logError("CGI script \(script.name) could not be started: \(error)")
            handler.sendError(500, message: "CGI script could not be started")
            phase = .done
            response.finish()
            server.cgiSlots.release()
            return
        }
        process?.standardOutput?.delegate = self
        process?.standardOutput?.startReading()
        process?.standardError?.delegate = self
        process?.standardError?.startReading()
        feedBody()
        server.watchDeadlines { [self] now in checkDeadlines(now) }
    }

    // MARK: The request body, to standard input

    /// Streams the request body to the script's standard input, a piece at a time: the next
    /// piece is read only once the script has taken the last one.
    private func feedBody() {
        guard let input = process?.standardInput else { return }
        guard let length = handler.headers["Content-Length"].flatMap({ Int($0) }), length > 0 else {
            input.shutdown { _ in input.close() }
            return
        }
        handler.readBody { [self] part in
            switch part {
            case .data(let bytes):
                input.write(bytes) { [self] error in
                    lastActivity = server.clockNow
                    if error == nil {
                        feedBody()
                    } else {
                        input.close()  // The script stopped reading: the rest is dropped.
                        discardBody()
                    }
                }
            case .end:
                input.shutdown { _ in input.close() }
            case .failed(let why):
                input.close()
                if why == .clientGone { clientLeft() }
            }
        }
    }

    /// Reads the rest of a body the script does not want, so that the connection can go on.
    private func discardBody() {
        handler.readBody { [self] part in
            if case .data = part { discardBody() }
        }
    }

    // MARK: Standard output and standard error

    func transport(_ transport: any Transport, didRead bytes: UnsafeRawBufferPointer) {
        lastActivity = server.clockNow
        if transport === process?.standardError {
            logErrors(bytes)
            return
        }
        switch phase {
        case .head:
            head.append(contentsOf: bytes)
            if let end = CGIResponseHead.end(in: head), end <= headLimit {
                respond(headEnd: end)
            } else if head.count > headLimit {
                fail(.tooLong(limit: headLimit))
            }
        case .body:
            sendBody(bytes)
        case .done:
            break
        }
    }

    func transportDidReadEOF(_ transport: any Transport) {
        if transport === process?.standardError {
            if !errorLine.isEmpty { logErrorLine() }
            transport.close()
            return
        }
        outputDidEnd()
    }

    func transport(_ transport: any Transport, didFail error: UVError) {
        if transport === process?.standardError {
            transport.close()
        } else {
            outputDidEnd()
        }
    }

    func transportDidClose(_ transport: any Transport) {}

    private func outputDidEnd() {
        guard !outputEnded else { return }
        outputEnded = true
        process?.standardOutput?.close()
        switch phase {
        case .head:
            if head.isEmpty {
                handler.logError("CGI script \(script.name) wrote no response")
                handler.sendError(500, message: "CGI script wrote no response")
                complete()
            } else if let end = CGIResponseHead.end(in: head + [10]) {
                respond(headEnd: min(end, head.count))  // the blank line never came: no body
                if phase == .body { complete() }
            } else {
                fail(.malformedLine(String(decoding: head.suffix(80), as: UTF8.self)))
            }
        case .body:
            if let declaredLength, bodySent != declaredLength, handler.command != "HEAD" {
                handler.logError("CGI script \(script.name) declared \(declaredLength) bytes and wrote \(bodySent)")
                cutOff()
            } else {
                complete()
            }
        case .done:
            break
        }
    }

    /// The header block is in `head[..<end]`: answers as it says.
    private func respond(headEnd end: Int) {
        let parsed: CGIResponseHead
        do {
            parsed = try CGIResponseHead(parsing: head[..<end])
        } catch {
            fail(error)
            return
        }
        let rest = Array(head[end...])
        head = []
        switch parsed.disposition {
        case .internalRedirect(let path):
            // The script's part is over; the path it names is served in its place.
            phase = .done
            process?.standardOutput?.close()
            let outer = response
            _ = handler.followInternalRedirect(to: path)
            // A response the redirect deferred again finishes itself; else it is complete.
            if handler.connection?.deferred === outer || handler.connection == nil { outer.finish() }
        case .respond(let status, let reason):
            handler.sendResponse(status, message: reason)
            for field in parsed.fields where !isHopByHop(field.name) {
                handler.sendHeader(field.name, field.value)
            }
            handler.endHeaders()
            declaredLength = parsed.contentLength
            phase = .body
            if !rest.isEmpty { rest.withUnsafeBytes { sendBody($0) } }
        }
    }

    /// Sends a piece of the body, and reads the script's next one once the client has
    /// taken enough: the script is slowed to the client's pace, never buffered without end.
    private func sendBody(_ bytes: UnsafeRawBufferPointer) {
        handler.writeBody(bytes)
        handler.flushBody()
        bodySent += bytes.count
        guard let output = process?.standardOutput, !outputEnded else { return }
        output.stopReading()
        handler.waitForDrain { [self] clientIsThere in
            guard clientIsThere else { return clientLeft() }
            if phase == .body, !outputEnded { output.startReading() }
        }
    }

    private func logErrors(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes {
            if byte == 10 {
                logErrorLine()
            } else {
                errorLine.append(byte)
                if errorLine.count >= 4096 { logErrorLine() }
            }
        }
    }

    private func logErrorLine() {
        if errorLine.last == 13 { errorLine.removeLast() }
        handler.logError("CGI script \(script.name): \(String(decoding: errorLine, as: UTF8.self))")
        errorLine.removeAll(keepingCapacity: true)
    }

    // MARK: Ends

    /// The script's header block is refused: 500, logged.
    private func fail(_ failure: CGIResponseHead.Failure) {
        handler.logError("CGI script \(script.name): \(failure)")
        handler.sendError(500, message: "Malformed CGI script response")
        complete()
        stopScript(signal: SIGTERM)
    }

    /// The response is over.
    private func complete() {
        phase = .done
        response.finish()
    }

    /// Ends a response that cannot be completed truthfully (the body is short): the
    /// connection closes, so the client sees it cut off rather than complete.
    private func cutOff() {
        phase = .done
        handler.connection?.abort()
        response.finish()
    }

    /// The client is gone: the script is told to stop (SIGTERM, SIGKILL later).
    private func clientLeft() {
        guard phase != .done || !exited else { return }
        phase = .done
        process?.standardOutput?.close()
        process?.standardInput?.close()
        outputEnded = true
        response.finish()
        stopScript(signal: SIGTERM)
    }

    private func stopScript(signal: Int32) {
        guard !exited, let process else { return }
        if signal == SIGTERM {
            guard terminatedAt == nil else { return }
            terminatedAt = server.clockNow
        }
        process.signal(signal)
    }

    private func didExit(_ termination: ChildProcess.Termination) {
        exited = true
        server.cgiSlots.release()
        switch termination {
        case .exited(0):
            break
        case .exited(let status):
            handler.logError("CGI script \(script.name) exit status \(status)")
        case .signalled(let number) where killedForSilence || terminatedAt != nil:
            _ = number  // Stopped on purpose: already logged or asked for.
        case .signalled(let number):
            handler.logError("CGI script \(script.name) killed by signal \(number)")
        }
        process?.standardInput?.close()
    }

    /// Called at every sweep: the silence deadline, the client's departure, the SIGKILL
    /// that follows a SIGTERM. Returns false once nothing is left to watch.
    private func checkDeadlines(_ now: UInt64) -> Bool {
        if exited && (outputEnded || phase == .done) { return false }
        // A client that closed its side before the script answered has given up on the answer
        // (nginx decides so too): the script is stopped rather than left to run for no one.
        if phase != .done && (response.isClientGone || phase == .head && handler.clientHasClosed) {
            clientLeft()
        }
        if let terminatedAt, !exited, now &- terminatedAt >= killDelay {
            process?.signal(SIGKILL)
        }
        if now &- lastActivity >= timeout && !killedForSilence {
            killedForSilence = true
            handler.logError("CGI script \(script.name) killed: silent for \(timeout / 1000) s")
            stopScript(signal: SIGKILL)
            process?.standardOutput?.close()
            outputEnded = true
            switch phase {
            case .head:
                handler.sendError(504, message: "CGI script timed out")
                complete()
            case .body:
                cutOff()
            case .done:
                break
            }
        }
        return !(exited && (outputEnded || phase == .done))
    }
}

/// Fields that describe one connection, not the response: a script does not set them.
private func isHopByHop(_ name: String) -> Bool {
    switch name.lowercased() {
    case "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection":
        true
    default:
        false
    }
}
