/// The request body, already read and decoded (chunked framing removed): Python's `rfile`,
/// positioned after the head.
///
/// The server reads the whole body before the handler's `doFOO()` runs, so reads never block.
public final class RequestBody {
    private var bytes: [UInt8] = []
    private var position = 0

    init() {}

    func reset(_ body: [UInt8]) {
        bytes = body
        position = 0
    }

    /// Bytes not read yet.
    public var remaining: Int { bytes.count - position }

    /// Reads the rest of the body.
    public func read() -> [UInt8] {
        read(remaining)
    }

    /// Reads at most `count` bytes; fewer at the end of the body, none after it.
    public func read(_ count: Int) -> [UInt8] {
        let end = position + min(max(count, 0), remaining)
        defer { position = end }
        return Array(bytes[position..<end])
    }

    /// Reads up to and including the next `\n`, or to the end of the body, or `limit` bytes.
    public func readline(_ limit: Int = .max) -> [UInt8] {
        let stop = position + min(max(limit, 0), remaining)
        var end = position
        while end < stop {
            end += 1
            if bytes[end - 1] == UInt8(ascii: "\n") { break }
        }
        defer { position = end }
        return Array(bytes[position..<end])
    }

    /// The rest of the body decoded as UTF-8 (invalid bytes replaced).
    public func readString() -> String {
        String(decoding: read(), as: UTF8.self)
    }
}

@available(*, unavailable)
extension RequestBody: Sendable {}
