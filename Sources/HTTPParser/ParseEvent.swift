/// What one call of ``RequestParser/parse(_:)`` found.
public enum ParseEvent: Sendable, Equatable {
    /// Every byte given was consumed (`consumed == input.count`) without completing an event;
    /// call again with more bytes.
    case needMore
    /// The request head is complete. Its ranges count from the first byte of the message, so
    /// the caller must still hold every byte fed since the previous message ended.
    case head(RequestHead)
    /// Decoded body bytes: a range of the input given to *this* call. Nothing is copied.
    case body(Range<Int>)
    /// The message is complete and the parser is ready for the next one, whose offsets count
    /// from the first byte after this call's `consumed`.
    case end
    /// The request is malformed or over a limit. The error is sticky: every later call
    /// returns it again with `consumed == 0`, until ``RequestParser/reset()``.
    case error(ParseError)
}

/// Why a request was rejected, with the status code the server should answer.
///
/// The status and reason follow from the ``kind``, so errors compare by kind.
public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The precise fault. Several kinds share a status; the kind lets tests and logs tell them
    /// apart.
    public enum Kind: Sendable, Equatable, CaseIterable {
        /// The request line is not `method SP target SP version` (400).
        case badRequestLine
        /// The method is not a token (400).
        case badMethod
        /// The request target has a byte a target may not have, or is not in a form the method takes (400).
        case badTarget
        /// The version is not `HTTP/d.d` (400).
        case badVersion
        /// An HTTP/0.9 request (no version) with a method other than `GET` (400).
        case badHTTP09Method
        /// A version this server does not speak, such as HTTP/2.0 in a request line (505).
        case versionNotSupported
        /// The request line is longer than `ParserLimits.maxRequestLineLength` (414).
        case requestLineTooLong
        /// Empty lines before the request line (RFC 9112 lets a server skip some) longer than the request line's limit (400).
        case tooManyEmptyLines
        /// A CR not followed by LF in the head (400).
        case bareCR
        /// A bare LF ending a trailer line, where CRLF is required (400).
        case bareLF
        /// A header field name that is not a token (400).
        case badFieldName
        /// Whitespace between a field name and its colon, which RFC 9112 forbids (400).
        case whitespaceBeforeColon
        /// A header line without a colon (400).
        case missingColon
        /// A header line that starts with whitespace: obsolete line folding (400).
        case obsoleteLineFolding
        /// A control character in a field value (400).
        case badFieldValue
        /// A header line longer than `ParserLimits.maxHeaderLineLength` (431).
        case fieldLineTooLong
        /// More header fields than `ParserLimits.maxHeaderCount` (431).
        case tooManyFields
        /// A header section larger than `ParserLimits.maxHeaderSectionSize` (431).
        case headerSectionTooLarge
        /// An HTTP/1.1 request without a `Host` field (400).
        case missingHost
        /// More than one `Host` field (400).
        case multipleHost
        /// A `Host` value that is not a host and optional port (400).
        case badHost
        /// A `Content-Length` that is not a decimal number in range (400).
        case badContentLength
        /// `Content-Length` fields or list members with different values (400).
        case conflictingContentLength
        /// Both `Content-Length` and `Transfer-Encoding`: a request smuggling vector (400).
        case contentLengthWithTransferEncoding
        /// `Transfer-Encoding` in an HTTP/1.0 request (400).
        case transferEncodingInHTTP10
        /// A `Transfer-Encoding` whose last coding is not `chunked` (400).
        case badTransferEncoding
        /// A transfer coding other than `chunked` (501).
        case unsupportedTransferCoding
        /// A body longer than `ParserLimits.maxBodySize` (413).
        case bodyTooLarge
        /// A chunk size line that does not start with hexadecimal digits (400).
        case badChunkSize
        /// A chunk size too large to represent (400).
        case chunkSizeOverflow
        /// A malformed chunk extension (400).
        case badChunkExtension
        /// A chunk size line longer than `ParserLimits.maxChunkLineLength` (400).
        case chunkLineTooLong
        /// A chunk size line not ended by CRLF (400).
        case badChunkLineEnd
        /// Chunk data not followed by CRLF (400).
        case badChunkDataEnd
        /// A trailer section larger than `ParserLimits.maxTrailerSectionSize` (431).
        case trailerSectionTooLarge
    }

    /// The precise fault; the only stored value, so an error is one byte.
    public var kind: Kind
    /// The HTTP status the fault implies: 400, 413, 414, 431, 501 or 505.
    public var status: Int { Self.statusAndReason(of: kind).0 }
    /// A short English reason for the error page and the log, e.g. "Bad request version".
    public var reason: StaticString { Self.statusAndReason(of: kind).1 }

    /// Creates the error for `kind`.
    public init(_ kind: Kind) { self.kind = kind }

    public var description: String { "\(status) \(reason) (\(kind))" }

    /// The status and reason of each kind; Python's wording where Python has the error.
    private static func statusAndReason(of kind: Kind) -> (Int, StaticString) {
        switch kind {
        case .badRequestLine: (400, "Bad request syntax")
        case .badMethod: (400, "Bad request method")
        case .badTarget: (400, "Bad request target")
        case .badVersion: (400, "Bad request version")
        case .badHTTP09Method: (400, "Bad HTTP/0.9 request type")
        case .versionNotSupported: (505, "Invalid HTTP version")
        case .requestLineTooLong: (414, "URI Too Long")
        case .tooManyEmptyLines: (400, "Too many empty lines before the request line")
        case .bareCR: (400, "Bare CR in message head")
        case .bareLF: (400, "Bare LF where CRLF is required")
        case .badFieldName: (400, "Invalid header name")
        case .whitespaceBeforeColon: (400, "Whitespace between header name and colon")
        case .missingColon: (400, "Header line without colon")
        case .obsoleteLineFolding: (400, "Obsolete line folding")
        case .badFieldValue: (400, "Invalid character in header value")
        case .fieldLineTooLong: (431, "Line too long")
        case .tooManyFields: (431, "Too many headers")
        case .headerSectionTooLarge: (431, "Header section too large")
        case .missingHost: (400, "Missing Host header")
        case .multipleHost: (400, "Multiple Host headers")
        case .badHost: (400, "Invalid Host header")
        case .badContentLength: (400, "Invalid Content-Length")
        case .conflictingContentLength: (400, "Conflicting Content-Length values")
        case .contentLengthWithTransferEncoding: (400, "Content-Length with Transfer-Encoding")
        case .transferEncodingInHTTP10: (400, "Transfer-Encoding in an HTTP/1.0 request")
        case .badTransferEncoding: (400, "Chunked is not the final transfer coding")
        case .unsupportedTransferCoding: (501, "Unsupported transfer coding")
        case .bodyTooLarge: (413, "Content Too Large")
        case .badChunkSize: (400, "Invalid chunk size")
        case .chunkSizeOverflow: (400, "Chunk size overflow")
        case .badChunkExtension: (400, "Invalid chunk extension")
        case .chunkLineTooLong: (400, "Chunk line too long")
        case .badChunkLineEnd: (400, "Chunk line must end with CRLF")
        case .badChunkDataEnd: (400, "Missing CRLF after chunk data")
        case .trailerSectionTooLarge: (431, "Trailer section too large")
        }
    }
}

/// The caller-chosen bounds a ``RequestParser`` enforces, each mapped to the status it implies.
///
/// Every limit is checked at the byte that first exceeds it, so the verdict does not depend on
/// how the input was split into reads, and a slow client cannot make the parser buffer or scan
/// more than the limit allows.
public struct ParserLimits: Sendable, Equatable {
    /// The longest request line, without its line ending; a longer one fails with 414 as soon
    /// as the first byte past the limit arrives.
    public var maxRequestLineLength: Int = 65536
    /// The longest single field line, without its line ending; a longer one fails with 431.
    public var maxHeaderLineLength: Int = 65536
    /// The most field lines in the head; one more fails with 431.
    public var maxHeaderCount: Int = 100
    /// The most bytes all field lines of the head may take together, line endings included and
    /// the request line not counted; more fails with 431.
    public var maxHeaderSectionSize: Int = 65536
    /// The largest body: a declared `Content-Length` above it fails with 413 instead of `.head`,
    /// and a chunked body fails with 413 when a chunk size would take it past the limit.
    public var maxBodySize: Int = 64 << 20
    /// The longest chunk-size line, extensions included, line ending excluded; longer fails
    /// with 400.
    public var maxChunkLineLength: Int = 4096
    /// The most bytes the trailer section of a chunked body may take; more fails with 431.
    public var maxTrailerSectionSize: Int = 65536

    /// Creates the default limits, the ones `DESIGN.md` lists.
    public init() {}
}
