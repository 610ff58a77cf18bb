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
        appendDecimal(code, to: &line)
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

    /// `"request line" code size`, Python's access-log message, built in one allocation.
    func requestLogLine(code: Int?, size: Int?) -> String {
        var line = requestline
        let count = line.utf8.count + 24
        return String(unsafeUninitializedCapacity: count) { buffer in
            var index = 0
            func put(_ byte: UInt8) {
                buffer[index] = byte
                index += 1
            }
            func putNumber(_ number: Int?) {
                guard let number, number >= 0, number < 1_000_000_000 else {
                    if let number {
                        for byte in String(number).utf8.prefix(10) { put(byte) }
                    } else {
                        put(UInt8(ascii: "-"))
                    }
                    return
                }
                var divisor = 1
                while divisor * 10 <= number { divisor *= 10 }
                while divisor > 0 {
                    put(UInt8(ascii: "0") + UInt8(number / divisor % 10))
                    divisor /= 10
                }
            }
            put(UInt8(ascii: "\""))
            line.withUTF8 { for byte in $0 { put(byte) } }
            put(UInt8(ascii: "\""))
            put(UInt8(ascii: " "))
            putNumber(code)
            put(UInt8(ascii: " "))
            putNumber(size)
            return index
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
    withUTF8(of: text) { isSafeHeaderText($0) }
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
