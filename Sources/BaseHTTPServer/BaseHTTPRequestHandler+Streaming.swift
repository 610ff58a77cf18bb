/// A piece of a request body taken as it arrives (`readBody(_:)`).
public enum BodyPart: Sendable, Equatable {
    /// The next bytes of the decoded body (a chunked body arrives without its framing).
    case data([UInt8])
    /// The body is complete; every later read is told the same.
    case end
    /// The body stopped short and never will be complete. The server has already answered
    /// (or closed the connection) when the client was at fault; the handler only cleans up.
    case failed(RequestBodyError)
}

/// Why a streamed request body stopped short.
public enum RequestBodyError: Error, Sendable, Equatable {
    /// The connection closed, or the client stopped sending and half-closed.
    case clientGone
    /// The client sent nothing for `configuration.bodyTimeout` while the handler waited:
    /// the server answered 408.
    case timedOut
    /// The body passed `maxBodySize`: the server answered 413.
    case tooLarge
    /// The body's framing was malformed (a bad chunk): the server answered 400.
    case malformed
    /// `handleExpect100()` refused the body: its answer is the response.
    case refused
    /// The response was finished before the body was read to its end (the handler did not
    /// call `deferResponse()`, or finished early): the rest of the body is never read.
    case responseFinished
}

extension BaseHTTPRequestHandler {
    /// Takes the next piece of the request body: `reader` is called once, on the loop thread,
    /// with the bytes that have arrived since the last read (all of them, so a slow reader
    /// gets larger pieces), or `.end`, or `.failed`. Call it again from `reader` for the next
    /// piece. Until then the server buffers at most `configuration.inputHighWaterMark`
    /// bytes and then stops reading from the client: a handler that takes its time slows the
    /// sender down, not the server's memory up.
    ///
    /// For a handler class with `streamsRequestBodies`, `doFOO()` runs when the head has
    /// arrived; it defers its response (`deferResponse()`), reads, and answers when the body
    /// is done. The first read sends `100 Continue` when the client asked for it (through
    /// `handleExpect100()`), so a handler that answers without reading (401, 413) spares the
    /// client the upload. A response finished before the body's end closes the connection.
    /// For other handlers the body was read whole: the first read gives what `rfile` has not
    /// read yet, the next `.end`.
    ///
    /// `reader` may run before this call returns (when bytes wait already).
    public func readBody(_ reader: @escaping (BodyPart) -> Void) {
        guard let connection, let exchange else {
            reader(.failed(.clientGone))
            return
        }
        // A body that failed is told as such (after its bytes), even once the server answered.
        var failed = false
        if case .failed = exchange.bodyState { failed = true }
        guard exchange.isResponding || failed else {
            reader(.failed(.responseFinished))
            return
        }
        connection.readBody(reader, exchange)
    }

    /// Sends what the response has buffered, and calls `then` once the connection's unsent
    /// output is at most half `configuration.outputHighWaterMark`: with true on the loop's
    /// next turn if it is already, else when the client has read enough; with false if the
    /// client has gone first (stop producing). How a handler writes a large or endless
    /// response in pieces with bounded memory (`SimpleHTTPRequestHandler` streams files so).
    public func waitForDrain(_ then: @escaping (_ clientIsThere: Bool) -> Void) {
        guard let connection, let exchange, exchange.isResponding else {
            server.onNextTurn { then(false) }
            return
        }
        flushBody()
        connection.waitForDrain(then, exchange)
    }

    /// Sends up to `count` bytes of the open file `descriptor` from `offset` as body bytes,
    /// straight from the page cache (`sendfile`), after what the response has buffered:
    /// when the head declared the body's length and the transport can. Returns the bytes
    /// sent now (0: the client is not keeping up, see `waitForEmptyOutput`), or nil when
    /// they must be read and written instead (nothing was sent).
    func sendFileBody(_ descriptor: Int32, offset: Int, count: Int) -> Int? {
        guard let connection, let exchange, exchange.isResponding,
              exchange.response.stage == .passthrough, !exchange.response.suppressBody,
              let sent = connection.sendFile(descriptor, offset: offset, count: count, exchange)
        else { return nil }
        exchange.response.bodyCount += sent
        return sent
    }

    /// Calls `then` once every queued byte has left (with true; false if the client has
    /// gone first): what `sendFileBody` waits for, since a file's bytes go only behind an
    /// empty queue.
    func waitForEmptyOutput(_ then: @escaping (_ clientIsThere: Bool) -> Void) {
        guard let connection, let exchange, exchange.isResponding else {
            server.onNextTurn { then(false) }
            return
        }
        flushBody()
        connection.waitForDrain(then, exchange, emptied: true)
    }

    /// Reads up to `count` bytes of `file` at `offset` straight into the response as body
    /// bytes, when the head declared the body's length (the usual small file): the bytes
    /// read (0 at the end of the file), or nil when the read failed or the response is framed
    /// otherwise (then nothing was read: read into an array and `writeBody` it). Against an
    /// array zeroed, read into and copied, this saves 5,800 of 38,500 instructions per 4 KiB
    /// file (callgrind, `wrk -c16` on http-server).
    func writeBody(reading file: OpenFile, at offset: Int, count: Int) -> Int? {
        guard let exchange, exchange.isResponding, exchange.response.stage == .passthrough,
              !exchange.response.suppressBody
        else { return nil }
        let read = exchange.output.append(upTo: count) { file.read(into: $0, at: offset) }
        if let read { exchange.response.bodyCount += read }
        return read
    }
}
