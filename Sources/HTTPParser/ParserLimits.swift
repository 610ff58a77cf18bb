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
