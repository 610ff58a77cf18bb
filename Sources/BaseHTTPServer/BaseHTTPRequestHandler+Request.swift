import HTTPParser

/// The per-request machinery the connection drives: resetting the request attributes,
/// dispatching to `doFOO()`, and ending the response. Called on the loop thread.
extension BaseHTTPRequestHandler {
    /// Starts a request whose head (and body) are in `exchange`: lends it to this handler,
    /// resets the attributes and decides, as Python's `parse_request` does, whether the
    /// connection stays open.
    func prepare(_ exchange: Exchange) {
        if self.exchange !== exchange { self.exchange = exchange }
        exchange.isResponding = true
        exchange.beginRequest()
        var close = true
        if let head = exchange.head {
            // Keep-alive for HTTP/1.1, or when asked and allowed.
            close = !(head.isHTTP11OrLater && protocolIsHTTP11)
            if head.connectionClose {
                close = true
            } else if head.connectionKeepAlive && protocolIsHTTP11 && !head.isHTTP09 {
                close = false
            }
        }
        closeConnection = close || server.isShuttingDown
        exchange.beginResponse(bufferSize: server.configuration.responseBufferSize)
    }

    /// Starts the answer to an error found before a request was understood (`requestLine`
    /// is what was read of its first line).
    func prepareForError(requestLine: [UInt8], _ exchange: Exchange) {
        if self.exchange !== exchange { self.exchange = exchange }
        exchange.isResponding = true
        exchange.body.removeAll()
        exchange.head = nil
        exchange.beginRequest()
        exchange.requestLine = latin1String(requestLine)
        closeConnection = true
        exchange.beginResponse(bufferSize: server.configuration.responseBufferSize)
    }

    /// Runs the request through `handleOneRequest()`; what it throws ends the response.
    func run() {
        do {
            try handleOneRequest()
        } catch {
            connection?.handlerDidThrow(error)
        }
    }

    /// Calls the `doFOO()` for the request's method (`handleOneRequest()`'s default).
    func dispatchToMethod() throws {
        switch withRequest(.other, { $0.methodKind }) {
        case .get: try doGET()
        case .head: try doHEAD()
        case .post: try doPOST()
        case .put: try doPUT()
        case .delete: try doDELETE()
        case .patch: try doPATCH()
        case .options: try doOPTIONS()
        case .trace: try doTRACE()
        case .connect: try doCONNECT()
        case .other: try doMethod(command ?? "")
        }
    }

    /// What the framing of this response depends on.
    func responseContext(_ exchange: Exchange) -> ResponseContext {
        let isHTTP11 = exchange.head?.isHTTP11OrLater ?? false
        return ResponseContext(
            isHEAD: exchange.methodKind == .head,
            isHTTP09: exchange.isHTTP09,
            canChunk: isHTTP11 && protocolIsHTTP11,
            echoKeepAlive: exchange.head != nil && !isHTTP11 && !closeConnection,
            bufferSize: exchange.responseBufferSize)
    }

    /// Ends the response's framing; logs a response that does not add up.
    func completeResponse(_ exchange: Exchange) {
        if server.isShuttingDown { closeConnection = true }
        let outcome = exchange.completeResponseFraming(responseContext(exchange),
                                                       closeConnection: closeConnection)
        closeConnection = outcome.close
        if let problem = outcome.problem { logError(problem) }
    }
}
