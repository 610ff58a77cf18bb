import Glibc

extension BaseHTTPRequestHandler {
    /// Sends a status line and the `Server` and `Date` headers for an `HTTPStatus`.
    public func sendResponse(_ status: HTTPStatus, message: String? = nil) {
        sendResponse(status.rawValue, message: message)
    }

    /// Sends only the status line for an `HTTPStatus`.
    public func sendResponseOnly(_ status: HTTPStatus, message: String? = nil) {
        sendResponseOnly(status.rawValue, message: message)
    }

    /// Sends a complete error response for an `HTTPStatus`.
    public func sendError(_ status: HTTPStatus, message: String? = nil, explain: String? = nil) {
        sendError(status.rawValue, message: message, explain: explain)
    }

    /// `protocolVersion code message\r\n` as bytes.
    func statusLine(_ code: Int, _ message: String) -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(32 + message.utf8.count)
        line.append(contentsOf: Self.protocolVersion.utf8)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: String(code).utf8)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: message.utf8)
        line.append(13)
        line.append(10)
        return line
    }

    /// Hands body bytes to the response framing (from `wfile`).
    func writeBody(_ bytes: UnsafeRawBufferPointer) {
        guard let connection else { return }
        let context = responseContext
        if connection.appendBody(bytes, context) {
            closeConnection = connection.startStreaming(context, closeConnection: closeConnection)
        }
    }

    /// Sends what is buffered now (from `wfile.flush()`).
    func flushBody() {
        guard let connection else { return }
        if connection.response.stage == .held {
            closeConnection = connection.startStreaming(responseContext, closeConnection: closeConnection)
        }
        connection.flushOutput()
    }
}

/// Whether a header name or value can be written as it is: no CR, LF or NUL.
func isSafeHeaderText(_ text: String) -> Bool {
    !text.utf8.contains { $0 == 13 || $0 == 10 || $0 == 0 }
}

/// Writes a whole line to standard error with one system call, so that lines from several
/// servers in one process do not interleave.
func writeToStandardError(_ line: String) {
    var line = line
    line.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 { return }
            offset += written
        }
    }
}
