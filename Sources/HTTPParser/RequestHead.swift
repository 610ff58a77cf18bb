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
///
/// A head is one reference to copy-on-write storage, so handing it out in a ``ParseEvent``
/// costs a retain rather than a copy of a dozen fields, and the parser reuses the storage for
/// the next request once the caller has dropped the head.
public struct RequestHead: Sendable, Equatable {
    /// The values behind a head. Only the parser writes it in place, and only after
    /// ``prepareForNextMessage()`` made it unique; every public setter copies it first when it
    /// is shared. That run-time uniqueness check is what makes sharing it across threads sound.
    /// The same check rules out overlapping accesses, so the properties skip the dynamic
    /// exclusivity bookkeeping (a thread-local access set). The number after each is what
    /// its check alone would add per request (Scripts/callgrind, S2's shape: 6,075
    /// instructions per request; with every field checked, 9,668).
    @usableFromInline
    final class Storage: @unchecked Sendable {
        @usableFromInline @exclusivity(unchecked) var requestLine: Range<Int> = 0..<0  // 276
        @usableFromInline @exclusivity(unchecked) var method: Range<Int> = 0..<0  // 168
        @usableFromInline @exclusivity(unchecked) var knownMethod = KnownMethod.other  // 250
        @usableFromInline @exclusivity(unchecked) var target: Range<Int> = 0..<0  // 164
        @usableFromInline @exclusivity(unchecked) var version: Range<Int>? = nil  // 253
        @usableFromInline @exclusivity(unchecked) var versionMajor = 0  // 519
        @usableFromInline @exclusivity(unchecked) var versionMinor = 9  // 546
        @exclusivity(unchecked) var fields: [HeaderField] = []  // 327
        @usableFromInline @exclusivity(unchecked) var framing = BodyFraming.none  // 168
        @usableFromInline @exclusivity(unchecked) var connectionClose = false  // 267
        @usableFromInline @exclusivity(unchecked) var connectionKeepAlive = false  // 248
        @usableFromInline @exclusivity(unchecked) var expect = ExpectValue.none  // 246
        @usableFromInline @exclusivity(unchecked) var headLength = 0  // 258

        init() { fields.reserveCapacity(16) }

        /// A copy of `other`, for copy-on-write.
        init(copying other: Storage) {
            requestLine = other.requestLine
            method = other.method
            knownMethod = other.knownMethod
            target = other.target
            version = other.version
            versionMajor = other.versionMajor
            versionMinor = other.versionMinor
            fields = other.fields
            framing = other.framing
            connectionClose = other.connectionClose
            connectionKeepAlive = other.connectionKeepAlive
            expect = other.expect
            headLength = other.headLength
        }
    }

    /// The values; the parser writes through this reference directly.
    @usableFromInline private(set) var storage: Storage

    /// Creates an empty head; the parser fills it in.
    public init() { storage = Storage() }

    /// Makes the storage unique before a public setter writes to it.
    private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = Storage(copying: storage) }
    }

    /// The whole request line, without its line ending (trailing whitespace kept, as Python
    /// keeps it in `requestline`).
    public internal(set) var requestLine: Range<Int> {
        @inlinable get { storage.requestLine }
        set { makeUnique(); storage.requestLine = newValue }
    }
    /// The method token, e.g. `GET`.
    public internal(set) var method: Range<Int> {
        @inlinable get { storage.method }
        set { makeUnique(); storage.method = newValue }
    }
    /// The method, when it is one of the methods RFC 9110 and RFC 5789 define.
    public internal(set) var knownMethod: KnownMethod {
        @inlinable get { storage.knownMethod }
        set { makeUnique(); storage.knownMethod = newValue }
    }
    /// The request target, e.g. `/index.html`.
    public internal(set) var target: Range<Int> {
        @inlinable get { storage.target }
        set { makeUnique(); storage.target = newValue }
    }
    /// The protocol version, e.g. `HTTP/1.1`; `nil` for an HTTP/0.9 request.
    public internal(set) var version: Range<Int>? {
        @inlinable get { storage.version }
        set { makeUnique(); storage.version = newValue }
    }
    /// The major version number; 0 for HTTP/0.9.
    public internal(set) var versionMajor: Int {
        @inlinable get { storage.versionMajor }
        set { makeUnique(); storage.versionMajor = newValue }
    }
    /// The minor version number; 9 for HTTP/0.9.
    public internal(set) var versionMinor: Int {
        @inlinable get { storage.versionMinor }
        set { makeUnique(); storage.versionMinor = newValue }
    }
    /// The field lines in the order received, repeats kept.
    public internal(set) var fields: [HeaderField] {
        get { storage.fields }
        set { makeUnique(); storage.fields = newValue }
    }
    /// How the body is delimited.
    public internal(set) var framing: BodyFraming {
        @inlinable get { storage.framing }
        set { makeUnique(); storage.framing = newValue }
    }
    /// Whether any `Connection` field lists the `close` option (any case).
    public internal(set) var connectionClose: Bool {
        @inlinable get { storage.connectionClose }
        set { makeUnique(); storage.connectionClose = newValue }
    }
    /// Whether any `Connection` field lists the `keep-alive` option (any case).
    public internal(set) var connectionKeepAlive: Bool {
        @inlinable get { storage.connectionKeepAlive }
        set { makeUnique(); storage.connectionKeepAlive = newValue }
    }
    /// What the `Expect` field asks for.
    public internal(set) var expect: ExpectValue {
        @inlinable get { storage.expect }
        set { makeUnique(); storage.expect = newValue }
    }
    /// The bytes from offset 0 through the empty line that ends the head (for HTTP/0.9, through
    /// the request line's line ending).
    public internal(set) var headLength: Int {
        @inlinable get { storage.headLength }
        set { makeUnique(); storage.headLength = newValue }
    }

    /// Whether this is a two-word HTTP/0.9 request (`GET /path`), which has no version,
    /// no fields, and is answered without a status line.
    @inlinable public var isHTTP09: Bool { storage.version == nil }

    /// Whether the version is HTTP/1.1 or a later 1.x, where persistence is the default and
    /// `Host` is required.
    @inlinable public var isHTTP11OrLater: Bool { storage.versionMajor == 1 && storage.versionMinor >= 1 }

    /// Whether a body follows the head: chunked, or a `Content-Length` above zero.
    @inlinable public var hasBody: Bool {
        switch storage.framing {
        case .none, .contentLength(0): false
        case .contentLength, .chunked: true
        }
    }

    public static func == (lhs: RequestHead, rhs: RequestHead) -> Bool {
        let (l, r) = (lhs.storage, rhs.storage)
        return l === r
            || (l.requestLine == r.requestLine && l.method == r.method
                && l.knownMethod == r.knownMethod && l.target == r.target
                && l.version == r.version && l.versionMajor == r.versionMajor
                && l.versionMinor == r.versionMinor && l.fields == r.fields
                && l.framing == r.framing && l.connectionClose == r.connectionClose
                && l.connectionKeepAlive == r.connectionKeepAlive && l.expect == r.expect
                && l.headLength == r.headLength)
    }

    /// Readies the head for the parser's next message: the same storage, emptied, when no one
    /// else holds it (so a caller that drops each head costs no allocation per request), else
    /// fresh storage.
    mutating func prepareForNextMessage() {
        guard isKnownUniquelyReferenced(&storage) else {
            storage = Storage()
            return
        }
        let s = storage
        s.requestLine = 0..<0
        s.method = 0..<0
        s.knownMethod = .other
        s.target = 0..<0
        s.version = nil
        s.versionMajor = 0
        s.versionMinor = 9
        // A few `removeLast()` calls cost less than the general `removeAll(keepingCapacity:)`,
        // and both keep the array's storage.
        if s.fields.count <= 8 {
            while !s.fields.isEmpty { s.fields.removeLast() }
        } else {
            s.fields.removeAll(keepingCapacity: true)
        }
        s.framing = .none
        s.connectionClose = false
        s.connectionKeepAlive = false
        s.expect = .none
        s.headLength = 0
    }
}
