/// Where a handler writes its response body: Python's `wfile`.
///
/// Output is buffered and leaves when the handler returns (everything answered from one read
/// goes out in one write). Writing never throws: once the client has gone, bytes are dropped.
public struct ResponseWriter {
    /// The handler whose response this writes (a writer is made each time `wfile` is read).
    let handler: BaseHTTPRequestHandler

    init(handler: BaseHTTPRequestHandler) {
        self.handler = handler
    }

    /// Writes bytes.
    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { handler.writeBody($0) }
    }

    /// Writes a sequence of bytes.
    public func write(_ bytes: some Sequence<UInt8>) {
        write(Array(bytes))
    }

    /// Writes a string as UTF-8.
    public func write(_ string: String) {
        withUTF8(of: string) { handler.writeBody(UnsafeRawBufferPointer($0)) }
    }

    /// Sends what is buffered now, rather than when the handler returns. A response whose
    /// length is not yet known is then sent chunked (HTTP/1.1) or until close (HTTP/1.0).
    /// Within a handler that returns right after, there is no need to call it.
    public func flush() {
        handler.flushBody()
    }
}

@available(*, unavailable)
extension ResponseWriter: Sendable {}
