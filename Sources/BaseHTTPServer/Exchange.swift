import HTTPParser

/// What a connection needs only while a request is in progress: the parser, unparsed input,
/// the request's head and body (behind the handler's request attributes), and the response
/// being produced.
///
/// A connection borrows one from its server when bytes of a request arrive and hands it back
/// once the response has left and nothing waits (`HTTPConnection.returnExchange()`). So an
/// idle keep-alive connection owns none of this, and the busy ones share a few warm ones.
///
/// Loop-confined, with no access overlapping another, so the fields are
/// `@exclusivity(unchecked)` (see `HTTPConnection`).
final class Exchange {
    // MARK: Input

    @exclusivity(unchecked) var parser: RequestParser
    /// Bytes received but not yet parsed, or the unfinished head of the current request.
    @exclusivity(unchecked) var pending: [UInt8] = []
    /// How much of `pending` the parser has consumed already (it never rescans).
    @exclusivity(unchecked) var pendingParsed = 0

    // MARK: The request

    /// The parser's head, from its arrival until the response is finished: released then,
    /// the parser reuses its storage for the next request.
    @exclusivity(unchecked) var head: RequestHead?
    /// The head's bytes; `head`'s ranges point into them.
    @exclusivity(unchecked) var headBytes: [UInt8] = []
    /// The decoded body, as it arrives.
    @exclusivity(unchecked) var body: [UInt8] = []
    @exclusivity(unchecked) var methodKind = Method.other
    @exclusivity(unchecked) var isHTTP09 = false
    /// The handler's attributes, made when first read.
    @exclusivity(unchecked) var command: String?
    @exclusivity(unchecked) var path: String?
    @exclusivity(unchecked) var version: String?
    @exclusivity(unchecked) var requestLine: String?
    @exclusivity(unchecked) var headers: HTTPMessage?
    @exclusivity(unchecked) var rfile: RequestBody?

    // MARK: The response

    /// Output produced since the last write; everything from one read leaves in one write.
    @exclusivity(unchecked) var output = ByteBuffer()
    /// Where the current response starts in `output` (to replace it after a handler error).
    @exclusivity(unchecked) var responseStart = 0
    /// Whether output has reached the socket since the current response began.
    @exclusivity(unchecked) var responseFlushed = false
    /// The framing state of the response being produced.
    @exclusivity(unchecked) var response = ResponseState()
    /// Called when queued output has drained to half the high-water mark or below, for a body
    /// produced piece by piece (a large file) under backpressure; set by the producer, which
    /// clears it when done.
    @exclusivity(unchecked) var onDrain: (() -> Void)?
    /// Called once if the connection closes while `onDrain` is set (the producer stops).
    @exclusivity(unchecked) var onAbandon: (() -> Void)?

    init(limits: ParserLimits) {
        parser = RequestParser(limits: limits)
    }

    /// Whether the connection can hand this back: nothing waits to be parsed, answered or sent.
    var isDone: Bool {
        pending.isEmpty && output.isEmpty && response.stage == .none && onDrain == nil
    }

    /// Starts the attributes of a request whose head (nil for an error answered before a
    /// request line was understood) and body are in place.
    func beginRequest(_ head: RequestHead?) {
        self.head = head
        if let head {
            methodKind = headBytes.withUnsafeBytes { Method(UnsafeRawBufferPointer(rebasing: $0[head.method])) }
            isHTTP09 = head.isHTTP09
        } else {
            methodKind = .other
            isHTTP09 = false
        }
        command = nil
        path = nil
        version = nil
        requestLine = nil
        headers = nil
        rfile?.reset(body)
    }

    /// Ready for another connection: no trace of the last one is left, and buffers keep at
    /// most 64 KiB of capacity each.
    func reset() {
        parser.reset()
        pending.removeAll(keepingCapacity: pending.capacity <= 1 << 16)
        pendingParsed = 0
        headBytes.removeAll(keepingCapacity: headBytes.capacity <= 1 << 16)
        body.removeAll(keepingCapacity: body.capacity <= 1 << 16)
        beginRequest(nil)
        rfile = nil
        output.removeAll(keepingAtMost: 1 << 16)
        responseStart = 0
        responseFlushed = false
        response.reset()
        onDrain = nil
        onAbandon = nil
    }
}
