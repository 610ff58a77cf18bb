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
        line.append(contentsOf: String(code).utf8)  // made once per code, not per request
        line.append(UInt8(ascii: " "))
        // A reason phrase is HTAB, SP, VCHAR and obs-text only (RFC 9112 §4): any other
        // control character becomes a space, so a message cannot start a header line.
        var replaced = false
        for byte in message.utf8 {
            if (byte < 0x20 && byte != 0x09) || byte == 0x7F {
                line.append(UInt8(ascii: " "))
                replaced = true
            } else {
                line.append(byte)
            }
        }
        line.append(13)
        line.append(10)
        if replaced { logError("control characters in the reason phrase for \(code) were replaced") }
        return line
    }

    /// Hands body bytes to the response framing (from `wfile`).
    func writeBody(_ bytes: UnsafeRawBufferPointer) {
        withResponse { exchange in
            let context = responseContext(exchange)
            if exchange.appendBody(bytes, context) {
                closeConnection = exchange.startStreaming(context, closeConnection: closeConnection)
            }
        }
    }

    /// `"request line" code size`, Python's access-log message, built in one allocation:
    /// from the request's bytes (ISO-8859-1, as `requestline` decodes them) unless
    /// `requestline` was already made.
    func requestLogLine(code: Int?, size: Int?) -> String {
        let fromHead = withRequest(String?.none) { request -> String? in
            guard request.requestLine == nil, let line = request.head?.requestLine else { return nil }
            return request.headBytes.withUnsafeBufferPointer { bytes in
                logLine(UnsafeBufferPointer(rebasing: bytes[line]), isLatin1: true,
                        code: code, size: size)
            }
        }
        if let fromHead { return fromHead }
        return withUTF8(of: requestline) { logLine($0, isLatin1: false, code: code, size: size) }
    }

    /// Sends what is buffered now (from `wfile.flush()`).
    /// Sends what is buffered now (from `wfile.flush()`).
    func flushBody() {
        guard let connection else { return }
        let exchange = connection.work
        if exchange.response.stage == .held {
            closeConnection = exchange.startStreaming(responseContext(exchange), closeConnection: closeConnection)
        }
        connection.flushOutput()
    }
}

/// `"line" code size`; `line` is UTF-8, or ISO-8859-1 bytes to convert when `isLatin1`.
private func logLine(_ line: UnsafeBufferPointer<UInt8>, isLatin1: Bool, code: Int?, size: Int?) -> String {
    String(unsafeUninitializedCapacity: 2 * line.count + 48) { buffer in
        buffer[0] = UInt8(ascii: "\"")
        var index = 1
        for byte in line {
            if byte < 0x80 || !isLatin1 {
                buffer[index] = byte
                index += 1
            } else {
                buffer[index] = 0xC0 | byte >> 6
                buffer[index + 1] = 0x80 | byte & 0x3F
                index += 2
            }
        }
        buffer[index] = UInt8(ascii: "\"")
        buffer[index + 1] = UInt8(ascii: " ")
        index = writeLogNumber(code, into: buffer, at: index + 2)
        buffer[index] = UInt8(ascii: " ")
        return writeLogNumber(size, into: buffer, at: index + 1)
    }
}

/// Writes `number` in decimal (or `-` for nil) at `index`; returns the index after it.
private func writeLogNumber(_ number: Int?, into buffer: UnsafeMutableBufferPointer<UInt8>, at index: Int) -> Int {
    guard let number else {
        buffer[index] = UInt8(ascii: "-")
        return index + 1
    }
    var index = index
    if number < 0 {
        buffer[index] = UInt8(ascii: "-")
        index += 1
    }
    let magnitude = number.magnitude
    var digitCount = 1
    var rest = magnitude / 10
    while rest > 0 {
        digitCount += 1
        rest /= 10
    }
    rest = magnitude
    for offset in stride(from: digitCount - 1, through: 0, by: -1) {
        buffer[index + offset] = UInt8(ascii: "0") + UInt8(rest % 10)
        rest /= 10
    }
    return index + digitCount
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
