/// One field line of a request head, as spans into the caller's bytes.
public struct HeaderField: Sendable, Equatable {
    /// The field name, exactly as sent (case kept).
    public var name: Range<Int>
    /// The field value with leading and trailing whitespace (SP, HTAB) removed.
    public var value: Range<Int>

    /// Creates a field from its name and value spans.
    public init(name: Range<Int>, value: Range<Int>) {
        self.name = name
        self.value = value
    }
}

/// How the body of a request is delimited (RFC 9112 §6.3).
public enum BodyFraming: Sendable, Equatable {
    /// No body: neither `Content-Length` nor `Transfer-Encoding` was sent.
    case none
    /// Exactly this many bytes follow the head (possibly zero).
    case contentLength(Int)
    /// `Transfer-Encoding: chunked`; the parser decodes it and reports only data bytes.
    case chunked
}

/// What the client's `Expect` field asks for.
public enum ExpectValue: Sendable, Equatable {
    /// No `Expect` field (or only empty ones).
    case none
    /// `Expect: 100-continue` (any case): the client waits for `100 Continue` before the body.
    case continue100
    /// Any other expectation; the server answers 417.
    case other
}

/// A parsed request head: the request line and field lines as spans, plus what the parser
/// already concluded from them (framing, connection options, expectation).
///
/// Every range is a byte offset counted from the first byte fed to the parser after the
/// previous message ended (or after `init`/`reset`). Empty lines before the request line are
/// skipped but still counted, so `requestLine.lowerBound` can be above zero.
public struct RequestHead: Sendable, Equatable {
    /// The whole request line, without its line ending (trailing whitespace kept, as Python
    /// keeps it in `requestline`).
    public var requestLine: Range<Int> = 0..<0
    /// The method token, e.g. `GET`.
    public var method: Range<Int> = 0..<0
    /// The request target, e.g. `/index.html`.
    public var target: Range<Int> = 0..<0
    /// The protocol version, e.g. `HTTP/1.1`; `nil` for an HTTP/0.9 request.
    public var version: Range<Int>? = nil
    /// The major version number; 0 for HTTP/0.9.
    public var versionMajor: Int = 0
    /// The minor version number; 9 for HTTP/0.9.
    public var versionMinor: Int = 9
    /// The field lines in the order received, repeats kept.
    public var fields: [HeaderField] = []
    /// How the body is delimited.
    public var framing: BodyFraming = .none
    /// Whether any `Connection` field lists the `close` option (any case).
    public var connectionClose: Bool = false
    /// Whether any `Connection` field lists the `keep-alive` option (any case).
    public var connectionKeepAlive: Bool = false
    /// What the `Expect` field asks for.
    public var expect: ExpectValue = .none
    /// The bytes from offset 0 through the empty line that ends the head (for HTTP/0.9, through
    /// the request line's line ending).
    public var headLength: Int = 0

    /// Creates an empty head; the parser fills it in.
    public init() {}

    /// Whether this is a two-word HTTP/0.9 request (`GET /path`), which has no version,
    /// no fields, and is answered without a status line.
    public var isHTTP09: Bool { version == nil }

    /// Whether the version is HTTP/1.1 or a later 1.x, where persistence is the default and
    /// `Host` is required.
    public var isHTTP11OrLater: Bool { versionMajor == 1 && versionMinor >= 1 }

    /// Clears the head for the next message, keeping the field array's storage when no one
    /// else holds it (so a caller that drops each head costs no allocation per request).
    mutating func clear() {
        requestLine = 0..<0
        method = 0..<0
        target = 0..<0
        version = nil
        versionMajor = 0
        versionMinor = 9
        fields.removeAll(keepingCapacity: true)
        framing = .none
        connectionClose = false
        connectionKeepAlive = false
        expect = .none
        headLength = 0
    }
}
