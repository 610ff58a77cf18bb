import Glibc
import UVLoop

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
        // control character becomes a space, so a message cannot start a header line. It is
        // written ISO-8859-1, as Python writes it; a character beyond that becomes `?`.
        var replaced = false
        for scalar in message.unicodeScalars {
            let value = scalar.value
            if (value < 0x20 && value != 0x09) || value == 0x7F {
                line.append(UInt8(ascii: " "))
                replaced = true
            } else {
                line.append(value <= 0xFF ? UInt8(value) : UInt8(ascii: "?"))
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
    func flushBody() {
        guard let exchange, let connection else { return }
        if exchange.response.stage == .held {
            closeConnection = exchange.startStreaming(responseContext(exchange), closeConnection: closeConnection)
        }
        connection.flushOutput()
    }
}

/// `"line" code size`; `line` is UTF-8, or ISO-8859-1 bytes to convert when `isLatin1`.
///
/// Written straight into the string's storage, with one allocation: 6,217 instructions per
/// request against 8,173 for the same line made by string interpolation (ASCII decoded as
/// UTF-8, other lines mapped by scalar; Scripts/callgrind, S2's shape, at 4aa5a87).
private func logLine(_ line: UnsafeBufferPointer<UInt8>, isLatin1: Bool, code: Int?, size: Int?) -> String {
    String(unsafeUninitializedCapacity: 2 * line.count + 48) { buffer in
        let output = buffer.baseAddress!
        output[0] = UInt8(ascii: "\"")
        var index = 1
        if !isLatin1 || isASCII(line) {
            // The common case: the bytes are already UTF-8.
            if let source = line.baseAddress { (output + 1).update(from: source, count: line.count) }
            index += line.count
        } else {
            for byte in line {
                if byte < 0x80 {
                    output[index] = byte
                    index += 1
                } else {
                    output[index] = 0xC0 | byte >> 6
                    output[index + 1] = 0x80 | byte & 0x3F
                    index += 2
                }
            }
        }
        output[index] = UInt8(ascii: "\"")
        output[index + 1] = UInt8(ascii: " ")
        let codeEnd = writeLogNumber(code, to: output + index + 2)
        codeEnd.pointee = UInt8(ascii: " ")
        return writeLogNumber(size, to: codeEnd + 1) - output
    }
}

/// Whether every byte is below 0x80 (eight at a time).
private func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    let raw = UnsafeRawBufferPointer(bytes)
    var index = 0
    var high: UInt64 = 0
    while index + 8 <= raw.count {
        high |= raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        index += 8
    }
    while index < raw.count {
        high |= UInt64(raw[index])
        index += 1
    }
    return high & 0x8080_8080_8080_8080 == 0
}

/// Writes `number` in decimal (or `-` for nil) at `output`; returns the address after it.
private func writeLogNumber(_ number: Int?, to output: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
    guard let number else {
        output.pointee = UInt8(ascii: "-")
        return output + 1
    }
    var output = output
    if number < 0 {
        output.pointee = UInt8(ascii: "-")
        output += 1
    }
    return output + writeDecimal(number.magnitude, digits: decimalDigitCount(number.magnitude), to: output)
}

/// Writes `text` to `descriptor` at once, unbuffered (stdio's streams are not concurrency-safe
/// in Swift 6, and a piped stdout would hold a line back): see the bytes version. For the
/// package's executables too.
package func writeAll(to descriptor: Int32, _ text: String) {
    var text = text
    text.withUTF8 { writeAll(to: descriptor, UnsafeRawBufferPointer($0)) }
}

/// Writes `bytes` to `descriptor`, in one `write(2)` unless interrupted (`EINTR`, retried) or
/// taken only in part (a full pipe: the rest follows), until all is written or the write
/// fails. One thread at a time in the process writes here, so that whole lines (a log
/// line, a server's batch of them) leave whole: a batch that goes in pieces is not cut by
/// another server's lines.
func writeAll(to descriptor: Int32, _ bytes: UnsafeRawBufferPointer) {
    guard let base = bytes.baseAddress else { return }
    writeLock.withLock {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, base + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }
}

/// Held by `writeAll` while it writes, by whichever thread.
private let writeLock = PthreadLock()
