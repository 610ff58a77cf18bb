import HTTPParser

/// The per-request machinery the connection drives: resetting the request attributes,
/// dispatching to `doFOO()`, and ending the response. Called on the loop thread.
extension BaseHTTPRequestHandler {
    /// Starts a request whose head (and body) are in `exchange`: resets the attributes and
    /// decides, as Python's `parse_request` does, whether the connection stays open.
    func prepare(_ head: RequestHead, _ exchange: Exchange, connection: HTTPConnection) {
        exchange.beginRequest(head)
        // Keep-alive for HTTP/1.1, or when asked and allowed.
        closeConnection = !(head.isHTTP11OrLater && protocolIsHTTP11)
        if head.connectionClose {
            closeConnection = true
        } else if head.connectionKeepAlive && protocolIsHTTP11 && !head.isHTTP09 {
            closeConnection = false
        }
        if owner.isShuttingDown { closeConnection = true }
        connection.beginResponse(exchange)
    }

    /// Resets the request attributes for an error answered before a request was understood.
    func prepareForError(requestLine: [UInt8], _ exchange: Exchange, connection: HTTPConnection) {
        exchange.body.removeAll()
        exchange.beginRequest(nil)
        exchange.requestLine = latin1String(requestLine)
        closeConnection = true
        connection.beginResponse(exchange)
    }

    /// Calls the `doFOO()` for the request's method.
    func run() {
        do {
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
        } catch {
            connection?.handlerDidThrow(error)
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
            bufferSize: owner.configuration.responseBufferSize)
    }

    /// Ends the response's framing; logs a response that does not add up.
    func completeResponse() {
        guard connection != nil else { return }
        if owner.isShuttingDown { closeConnection = true }
        var problem: String?
        withResponse { exchange in
            let outcome = exchange.completeResponseFraming(responseContext(exchange),
                                                           closeConnection: closeConnection)
            closeConnection = outcome.close
            problem = outcome.problem
        }
        if let problem { logError(problem) }
    }
}

/// The methods with a `doFOO()` of their own.
enum Method {
    case get, head, post, put, delete, patch, options, trace, connect, other

    init(_ name: UnsafeRawBufferPointer) {
        // Methods are at most 7 bytes here: compare them as one little-endian integer.
        guard name.count <= 7 else {
            self = .other
            return
        }
        var word: UInt64 = 0
        for (index, byte) in name.enumerated() { word |= UInt64(byte) << (8 * UInt64(index)) }
        switch word {
        case Method.getWord: self = .get
        case Method.putWord: self = .put
        case Method.headWord: self = .head
        case Method.postWord: self = .post
        case Method.patchWord: self = .patch
        case Method.traceWord: self = .trace
        case Method.deleteWord: self = .delete
        case Method.optionsWord: self = .options
        case Method.connectWord: self = .connect
        default: self = .other
        }
    }

    private static let getWord = word("GET")
    private static let putWord = word("PUT")
    private static let headWord = word("HEAD")
    private static let postWord = word("POST")
    private static let patchWord = word("PATCH")
    private static let traceWord = word("TRACE")
    private static let deleteWord = word("DELETE")
    private static let optionsWord = word("OPTIONS")
    private static let connectWord = word("CONNECT")

    private static func word(_ name: StaticString) -> UInt64 {
        var word: UInt64 = 0
        for index in 0..<name.utf8CodeUnitCount {
            word |= UInt64(name.utf8Start[index]) << (8 * UInt64(index))
        }
        return word
    }
}
