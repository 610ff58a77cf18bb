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

/// The methods RFC 9110 and RFC 5789 define, found once by the parser for everyone above it:
/// the parser checks the target form of `CONNECT` and that HTTP/0.9 is `GET`; a server
/// dispatches on it. Methods are case-sensitive: `get` is `.other`.
public enum KnownMethod: UInt8, Sendable {
    /// Any other method (the token itself is in the head's `method` span).
    case other
    /// `GET`.
    case get
    /// `HEAD`.
    case head
    /// `POST`.
    case post
    /// `PUT`.
    case put
    /// `DELETE`.
    case delete
    /// `PATCH`.
    case patch
    /// Takes the authority form (`host:port`) and only that.
    case connect
    /// `OPTIONS`.
    case options
    /// `TRACE`.
    case trace

    /// Classifies a method token of `count` bytes at `bytes`.
    static func classify(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> KnownMethod {
        // The known methods are 3 to 7 bytes: compare them as one little-endian integer.
        guard count >= 3 && count <= 7 else { return .other }
        var word: UInt64 = 0
        for index in 0..<count { word |= UInt64(bytes[index]) << UInt64(8 * index) }
        switch word {
        case 0x54_45_47: return .get  // "GET", the last byte highest
        case 0x54_55_50: return .put
        case 0x44_41_45_48: return .head
        case 0x54_53_4F_50: return .post
        case 0x48_43_54_41_50: return .patch
        case 0x45_43_41_52_54: return .trace
        case 0x45_54_45_4C_45_44: return .delete
        case 0x53_4E_4F_49_54_50_4F: return .options
        case 0x54_43_45_4E_4E_4F_43: return .connect
        default: return .other
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
