import HTTPParser

/// The per-request machinery the connection drives: resetting the request attributes,
/// dispatching to `doFOO()`, and ending the response. Called on the loop thread.
extension BaseHTTPRequestHandler {
    /// Resets the request attributes for a new request.
    /// The head's bytes are swapped in (the connection gets the previous request's buffer
    /// back to fill next time), so that no request allocates for them.
    func prepare(head: RequestHead, headBytes: inout [UInt8], body: [UInt8], connection: HTTPConnection) {
        self.head = head
        spans = RequestSpans(head)
        swap(&self.headBytes, &headBytes)
        methodKind = self.headBytes.withUnsafeBytes { Method(UnsafeRawBufferPointer(rebasing: $0[head.method])) }
        cachedCommand = nil
        cachedPath = nil
        cachedVersion = nil
        cachedRequestLine = nil
        cachedHeaders = nil
        isHTTP09Request = head.isHTTP09
        isDeferred = false
        bodyBytes = body
        self.body?.reset(body)
        // Python's parse_request: keep-alive for HTTP/1.1, or when asked and allowed.
        closeConnection = !(head.isHTTP11OrLater && protocolIsHTTP11)
        if head.connectionClose {
            closeConnection = true
        } else if head.connectionKeepAlive && protocolIsHTTP11 && !head.isHTTP09 {
            closeConnection = false
        }
        if owner.isShuttingDown { closeConnection = true }
        connection.beginResponse()
    }

    /// Resets the request attributes for an error answered before a request was understood.
    func prepareForError(requestLine: [UInt8], connection: HTTPConnection) {
        head = nil
        spans = nil
        headBytes = []
        methodKind = .other
        cachedCommand = nil
        cachedPath = nil
        cachedVersion = nil
        cachedRequestLine = latin1String(requestLine)
        cachedHeaders = nil
        isHTTP09Request = false
        isDeferred = false
        bodyBytes = []
        body?.reset([])
        closeConnection = true
        connection.beginResponse()
    }

    /// Calls the `doFOO()` for the request's method.
    func run() {
        do {
            switch methodKind {
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
            isDeferred = false
            connection?.handlerDidThrow(error)
        }
    }

    /// What the framing of this response depends on.
    var responseContext: ResponseContext {
        let isHTTP11 = spans?.isHTTP11OrLater ?? false
        return ResponseContext(
            isHEAD: methodKind == .head,
            isHTTP09: isHTTP09Request,
            canChunk: isHTTP11 && protocolIsHTTP11,
            echoKeepAlive: spans != nil && !isHTTP11 && !closeConnection,
            bufferSize: owner.configuration.responseBufferSize)
    }

    /// The response is finished: let go of the parser's head (see `head`).
    func requestDidFinish() {
        head = nil
    }

    /// The connection is idle: give up the request's buffers. Attributes not read by now
    /// (`path`, `headers`, …) read as empty afterwards.
    func releaseIdleMemory() {
        head = nil
        spans = nil
        headBytes = []
        bodyBytes = []
        body = nil
    }

    /// Ends the response's framing; logs a response that does not add up.
    func completeResponse() {
        guard let connection else { return }
        if owner.isShuttingDown { closeConnection = true }
        let (close, problem) = connection.completeResponseFraming(responseContext,
                                                                  closeConnection: closeConnection)
        closeConnection = close
        if let problem { logError(problem) }
    }

    /// The client went away: later writes are dropped and `finish()` does nothing.
    func connectionDidClose() {
        isDeferred = false
    }

    var isHTTP09: Bool { isHTTP09Request }
}

/// Where a request line's parts are in the head's bytes.
struct RequestSpans {
    var requestLine: Range<Int>
    var method: Range<Int>
    var target: Range<Int>
    var version: Range<Int>?
    var isHTTP11OrLater: Bool

    init(_ head: RequestHead) {
        requestLine = head.requestLine
        method = head.method
        target = head.target
        version = head.version
        isHTTP11OrLater = head.isHTTP11OrLater
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
