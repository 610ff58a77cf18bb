import HTTPParser

/// What a connection needs only while a request is in progress: the parser, unparsed input,
/// the request's head and body (behind the handler's request attributes), and the response
/// being produced.
///
/// A connection borrows one from its server when bytes of a request arrive and hands it back
/// once the response has left and nothing waits (`HTTPConnection.returnExchange()`). So an
/// idle keep-alive connection owns none of this, and the busy ones share a few warm ones.
///
/// Owned by its connection while lent (`HTTPConnection.exchange`), borrowed by the handler
/// while a response is in progress (`BaseHTTPRequestHandler.exchange`), owned by the server's
/// pool while spare. Only the loop thread touches it, and no access to a field overlaps
/// another (no `inout` is held across a call out). The fields that the request path changes
/// in place through calls (the parser, the buffers, the response state) are
/// `@exclusivity(unchecked)`, each with what the dynamic check would cost per request
/// (Scripts/callgrind, S2's shape, one field checked at a time, against 6,060 with none
/// checked). Checking every field costs 10,927 instead of 6,187. The other fields the
/// compiler checks statically or cheaply: marking them bought nothing measurable.
final class Exchange {
    // MARK: Input

    // Unchecked: 603 instructions fewer per request (Scripts/callgrind).
    @exclusivity(unchecked) var parser: RequestParser
    /// Bytes received but not yet parsed, or the unfinished head of the current request.
    // Unchecked: 379 instructions fewer per request (Scripts/callgrind).
    @exclusivity(unchecked) var pending: [UInt8] = []
    /// How much of `pending` the parser has consumed already (it never rescans).
    var pendingParsed = 0

    // MARK: The request

    /// The parser's head, from its arrival until the response is finished: released then,
    /// the parser reuses its storage for the next request.
    var head: RequestHead?
    /// The head's bytes; `head`'s ranges point into them.
    // Unchecked: 394 instructions fewer per request (Scripts/callgrind).
    @exclusivity(unchecked) var headBytes: [UInt8] = []
    /// The decoded body, as it arrives.
    // Unchecked: 207 instructions fewer per request (Scripts/callgrind).
    @exclusivity(unchecked) var body: [UInt8] = []
    // What the request path asks of the head most often, read from it once in
    // `beginRequest()`.
    /// When the request's head was dispatched (`monotonicNanoseconds`), for the access record
    /// of a server with a `logger`; 0 otherwise.
    var requestStart: UInt64 = 0
    var methodKind = KnownMethod.other
    var isHTTP09 = false
    /// The handler's attributes, made when first read.
    var command: String? { didSet { hasAttributes = true } }
    var path: String? { didSet { hasAttributes = true } }
    var version: String? { didSet { hasAttributes = true } }
    var requestLine: String? { didSet { hasAttributes = true } }
    var headers: HTTPMessage? { didSet { hasAttributes = true } }
    var rfile: RequestBody?
    /// Whether any of the attributes above was made (a handler that reads none leaves
    /// nothing to clear).
    private var hasAttributes = false

    // MARK: The response

    /// Whether a response is in progress: the handler's request attributes and output go
    /// here only then (the connection's `machine.acceptsOutput`, kept where the handler reads
    /// it: the handler keeps its reference to the exchange between the requests of one read,
    /// which saves a reference count per request).
    var isResponding = false
    /// Output produced since the last write; everything from one read leaves in one write.
    // Unchecked: 958 instructions fewer per request (Scripts/callgrind).
    @exclusivity(unchecked) var output = ByteBuffer()
    /// Where the current response starts in `output` (to replace it after a handler error).
    var responseStart = 0
    /// Whether output has reached the socket since the current response began.
    var responseFlushed = false
    /// How much of a body is held to measure it (see `beginResponse`).
    var responseBufferSize = 0
    /// The framing state of the response being produced.
    // Unchecked: 2004 instructions fewer per request (Scripts/callgrind).
    @exclusivity(unchecked) var response = ResponseState()
    /// The handler's `waitForDrain(_:)`: told true once queued output has drained to half
    /// the high-water mark, false if the connection closes first.
    var drainWaiter: ((Bool) -> Void)?
    /// The queued bytes at or below which `drainWaiter` is told (half the high-water mark,
    /// or 0 for a file sent with `sendfile`, which needs an empty queue).
    var drainTarget = 0

    // MARK: A streamed request body

    /// Where the request's body stands for the handler.
    var bodyState = BodyState.whole
    /// The handler's outstanding `readBody(_:)`.
    var bodyReader: ((BodyPart) -> Void)?
    /// `Expect: 100-continue` waits for the handler to start taking the body.
    var continuePending = false
    /// Parts are being handed to the handler (a read made meanwhile is served by that loop).
    var deliveringBody = false

    enum BodyState {
        /// Read whole before the handler ran (`rfile`).
        case whole
        /// Arriving into `body`, which the handler empties as it reads.
        case streaming
        /// Every byte has arrived (and is in `body` until read).
        case ended
        /// It stopped short; what the handler's reads are told.
        case failed(RequestBodyError)
    }

    init(limits: ParserLimits) {
        parser = RequestParser(limits: limits)
    }

    /// Whether the connection can hand this back: nothing waits to be parsed, answered or sent.
    var isDone: Bool {
        !isResponding && pending.isEmpty && output.isEmpty && response.stage == .none && drainWaiter == nil
            && bodyReader == nil
    }

    /// Resets the response state for a new request, whose body is held up to `bufferSize`
    /// bytes to measure it (`Configuration.responseBufferSize`, read once per request).
    func beginResponse(bufferSize: Int) {
        responseBufferSize = bufferSize
        response.reset()
        responseStart = output.count
        responseFlushed = false
    }

    /// Starts the attributes of the request whose head (`head`, nil for an error answered
    /// before a request line was understood) and body are in place.
    func beginRequest() {
        if let head {
            methodKind = head.knownMethod
            isHTTP09 = head.isHTTP09
        } else {
            methodKind = .other
            isHTTP09 = false
        }
        if hasAttributes {
            command = nil
            path = nil
            version = nil
            requestLine = nil
            headers = nil
            hasAttributes = false
        }
        rfile?.reset(body)
    }

    /// Ready for another connection: nothing of the last one can be read through it, and
    /// buffers keep at most 64 KiB of capacity each.
    func reset() {
        parser.reset()
        Exchange.empty(&pending)
        pendingParsed = 0
        // The head's bytes are read only through a head, and the next one replaces them
        // whole: only a large buffer is worth letting go of.
        if headBytes.capacity > 1 << 16 { headBytes = [] }
        Exchange.empty(&body)
        head = nil
        rfile = nil
        beginRequest()
        output.removeAll(keepingAtMost: 1 << 16)
        responseStart = 0
        responseFlushed = false
        isResponding = false
        response.reset()
        // Guarded: most exchanges had none of these, and a store costs an access check.
        if drainWaiter != nil { drainWaiter = nil }
        if bodyReader != nil { bodyReader = nil }
        if case .whole = bodyState {} else { bodyState = .whole }
        if continuePending { continuePending = false }
    }

    /// Empties `bytes`, keeping at most 64 KiB of capacity. An array already empty with no
    /// more than that (the usual case) is not touched: `removeAll(keepingCapacity:)` costs
    /// as much as the rest of `reset()` even then.
    private static func empty(_ bytes: inout [UInt8]) {
        guard !bytes.isEmpty || bytes.capacity > 1 << 16 else { return }
        bytes.removeAll(keepingCapacity: bytes.capacity <= 1 << 16)
    }
}
