/// The first bytes of a method or field name that arrived split across several reads.
///
/// The parser must know whether a field is `Host`, `Content-Length`, … the moment its colon
/// arrives, but it may no longer see the bytes before the current read (the caller keeps them,
/// the parser does not). When a token is cut by the end of a read, its bytes so far are copied
/// here, up to ``capacity``; a longer token is no name the parser cares about. A token that
/// arrives whole is classified straight from the input and never touches this buffer.
struct TokenPrefix: Sendable {
    /// How many bytes are kept: the longest interesting token is `transfer-encoding` (17).
    static let capacity = 24

    /// The kept bytes, inline so a parser value owns no heap memory for them.
    private var storage: (UInt64, UInt64, UInt64) = (0, 0, 0)
    /// How many bytes the token has so far, including any beyond ``capacity``.
    private(set) var count = 0

    /// Forgets the token.
    mutating func removeAll() { count = 0 }

    /// Adds `length` bytes from `bytes` to the token.
    mutating func append(_ bytes: UnsafePointer<UInt8>, _ length: Int) {
        let kept = min(length, max(0, Self.capacity - count))
        if kept > 0 {
            let start = count
            withUnsafeMutableBytes(of: &storage) { raw in
                for k in 0..<kept { raw[start + k] = bytes[k] }
            }
        }
        count += length
    }

    /// Calls `body` with the kept bytes and the token's full length, or returns `fallback` when
    /// the token is longer than what was kept.
    func withBytes<Result>(
        or fallback: Result, _ body: (UnsafePointer<UInt8>, Int) -> Result
    ) -> Result {
        guard count <= Self.capacity else { return fallback }
        return withUnsafeBytes(of: storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), count)
        }
    }
}

/// The methods whose request-target form the parser checks.
enum KnownMethod: UInt8, Sendable {
    /// Any other method.
    case other
    /// `GET`: the only method HTTP/0.9 has.
    case get
    /// `CONNECT`: takes the authority form (`host:port`) and only that.
    case connect
    /// `OPTIONS`: the only method that may take the asterisk form (`*`).
    case options

    /// Classifies a method token (methods are case-sensitive).
    static func classify(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> KnownMethod {
        switch count {
        case 3: ASCII.equals(bytes, count, "GET") ? .get : .other
        case 7:
            ASCII.equals(bytes, count, "CONNECT")
                ? .connect : ASCII.equals(bytes, count, "OPTIONS") ? .options : .other
        default: .other
        }
    }
}

/// The fields whose values the parser interprets while they stream past.
enum FieldKind: UInt8, Sendable {
    case other, host, contentLength, transferEncoding, connection, expect

    /// Classifies a field name (names are case-insensitive). Only a length match costs a
    /// comparison, so ordinary fields are dismissed with one switch.
    static func classify(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> FieldKind {
        switch count {
        case 4: ASCII.equalsIgnoringCase(bytes, count, "host") ? .host : .other
        case 6: ASCII.equalsIgnoringCase(bytes, count, "expect") ? .expect : .other
        case 10: ASCII.equalsIgnoringCase(bytes, count, "connection") ? .connection : .other
        case 14: ASCII.equalsIgnoringCase(bytes, count, "content-length") ? .contentLength : .other
        case 17:
            ASCII.equalsIgnoringCase(bytes, count, "transfer-encoding") ? .transferEncoding : .other
        default: .other
        }
    }
}
