import HTTPParser

/// How far the current response has got, and how its body is framed on the wire.
///
/// Python's handler writes its head into a buffer and its body straight to the socket; here
/// the head is held until the body's length is known, so that the server can add
/// `Content-Length` itself, or switch to chunked encoding when the body outgrows the buffer.
struct ResponseState: ~Copyable {
    enum Stage {
        /// Nothing sent for this request yet.
        case none
        /// A status line (and maybe headers) collected; `endHeaders()` not called yet.
        case collecting
        /// Headers ended without a length: the head and body are held to measure the body.
        case held
        /// The handler gave `Content-Length` or `Transfer-Encoding` itself: bytes pass through.
        case passthrough
        /// The server chose chunked encoding: each write becomes a chunk.
        case chunked
        /// The server chose to delimit the body by closing the connection (HTTP/1.0).
        case untilClose
        /// The handler wrote bytes outside a head we understand: they pass through and the
        /// connection closes afterwards.
        case raw
    }

    var stage = Stage.none
    /// The status line and header lines not yet sent.
    var head = ByteBuffer()
    var status = 0
    var declaredLength: Int?
    var sentTransferEncoding = false
    var sentConnection = false
    /// Body bytes held while the length is unknown.
    var held = ByteBuffer()
    /// Body bytes the handler wrote (counted even where they are not sent, as for HEAD).
    var bodyCount = 0
    /// HEAD, 204 and 304 responses carry no body bytes on the wire.
    var suppressBody = false

    /// Back to "nothing sent", keeping the buffers' capacity for the next response.
    mutating func reset() {
        stage = .none
        head.removeAll(keepingAtMost: 1 << 16)
        status = 0
        declaredLength = nil
        sentTransferEncoding = false
        sentConnection = false
        held.removeAll(keepingAtMost: 1 << 16)
        bodyCount = 0
        suppressBody = false
    }

    /// The header fields whose presence decides the framing.
    enum NotableField { case other, connection, contentLength, transferEncoding }

    /// Whether a status with this code never has a body.
    static func isBodiless(_ status: Int) -> Bool {
        status < 200 || status == 204 || status == 304
    }
}

/// What the response framing needs to know about the request it answers.
struct ResponseContext {
    var isHEAD: Bool
    /// The request line had no version: the response is the body alone.
    var isHTTP09: Bool
    /// Chunked encoding can be used: an HTTP/1.1 client and `protocolVersion` HTTP/1.1.
    var canChunk: Bool
    /// An HTTP/1.0 client asked to keep the connection open and may: echo `keep-alive`.
    var echoKeepAlive: Bool
    var bufferSize: Int
}

extension Exchange {
    /// Adds a status line to the head (Python's `send_response_only`).
    func appendStatusLine(_ line: UnsafeRawBufferPointer, status: Int) {
        response.head.append(line)
        response.status = status
        if response.stage == .none { response.stage = .collecting }
    }

    /// Adds a header line to the head and notes the fields that decide the framing. Inlined
    /// into `sendHeader`, its one user: 230 instructions fewer per F1 request, of seven header
    /// lines (Scripts/callgrind --f1).
    /// - Returns: which notable field it was, or nil when the name or value holds CR, LF or
    ///   NUL: then nothing is added (no header injection).
    @inline(__always)
    func appendHeaderLine(name: String, value: String) -> ResponseState.NotableField? {
        var declaredLength: Int?
        let field = withUTF8(of: name) { name in
            withUTF8(of: value) { value -> ResponseState.NotableField? in
                if isSafeHeaderText(name) && isSafeHeaderText(value) {
                    response.head.appendHeaderLine(UnsafeRawBufferPointer(name), UnsafeRawBufferPointer(value))
                } else {
                    // Not plain ASCII, or not safe at all: ISO-8859-1, as Python encodes heads.
                    guard let name = latin1HeaderText(name), let value = latin1HeaderText(value) else { return nil }
                    name.withUnsafeBytes { name in
                        value.withUnsafeBytes { value in response.head.appendHeaderLine(name, value) }
                    }
                }
                switch name.count {
                case 10 where ASCII.equalsIgnoringCase(name, "connection"): return .connection
                case 14 where ASCII.equalsIgnoringCase(name, "content-length"):
                    declaredLength = decimalValue(value)
                    return .contentLength
                case 17 where ASCII.equalsIgnoringCase(name, "transfer-encoding"): return .transferEncoding
                default: return .other
                }
            }
        }
        switch field {
        case nil: return nil
        case .connection: response.sentConnection = true
        case .contentLength: response.declaredLength = declaredLength
        case .transferEncoding: response.sentTransferEncoding = true
        case .other: break
        }
        if response.stage == .none { response.stage = .collecting }
        return field
    }

    /// Ends the head (Python's `end_headers`): interim (1xx) heads leave at once; a head that
    /// declares its framing is sent; any other is held until the body's length is known.
    func endHead(_ context: ResponseContext, closeConnection: Bool) {
        if response.stage == .collecting && response.status >= 100 && response.status < 200 {
            output.append(response.head)
            output.append(crlf)
            response.reset()
            return
        }
        guard response.stage == .collecting else {
            // No status line (or a second head): Python writes the lines as they are.
            output.append(response.head)
            output.append(crlf)
            response.head.removeAll()
            response.stage = .raw
            return
        }
        response.suppressBody = context.isHEAD || ResponseState.isBodiless(response.status)
        if response.declaredLength != nil || response.sentTransferEncoding {
            commitHead(context, closeConnection: closeConnection)
            response.stage = .passthrough
        } else {
            response.stage = .held
        }
    }

    /// Sends the head as collected so far, without ending it (Python's `flush_headers`): the
    /// handler is framing the response by hand.
    func flushHead() {
        output.append(response.head)
        response.head.removeAll()
        if response.stage == .collecting { response.stage = .raw }
    }

    /// Adds body bytes according to the framing chosen.
    func appendBody(_ bytes: UnsafeRawBufferPointer, _ context: ResponseContext) -> Bool {
        switch response.stage {
        case .none, .collecting, .raw:
            output.append(bytes)
            response.stage = .raw
        case .held:
            response.bodyCount += bytes.count
            guard !response.suppressBody else { return false }
            response.held.append(bytes)
            if response.held.count > context.bufferSize { return true }
        case .passthrough:
            response.bodyCount += bytes.count
            if !response.suppressBody { output.append(bytes) }
        case .chunked:
            response.bodyCount += bytes.count
            if !response.suppressBody { appendChunk(bytes) }
        case .untilClose:
            response.bodyCount += bytes.count
            output.append(bytes)
        }
        return false
    }

    /// Commits a held response to streaming: chunked for HTTP/1.1 clients, otherwise a body
    /// delimited by closing the connection. Returns whether the connection must close.
    func startStreaming(_ context: ResponseContext, closeConnection: Bool) -> Bool {
        guard response.stage == .held else { return closeConnection }
        if context.canChunk {
            response.head.append(transferEncodingChunkedLine)
            commitHead(context, closeConnection: closeConnection)
            response.stage = .chunked
            appendChunk(response.held.bytes)
            response.held.removeAll(keepingAtMost: 1 << 16)
            return closeConnection
        }
        commitHead(context, closeConnection: true)
        response.stage = .untilClose
        output.append(response.held)
        response.held.removeAll(keepingAtMost: 1 << 16)
        return true
    }

    /// Ends the response: adds `Content-Length` to a held head, or the last chunk. Returns
    /// whether the connection must close (the framing ends with the connection, or the
    /// handler's own framing does not add up).
    func completeResponseFraming(_ context: ResponseContext, closeConnection: Bool) -> (close: Bool, problem: String?) {
        var close = closeConnection
        var problem: String?
        switch response.stage {
        case .none:
            close = true
            if !context.isHTTP09 { problem = "the handler sent no response" }
        case .collecting:
            endHead(context, closeConnection: close)
            return completeResponseFraming(context, closeConnection: close)
        case .held:
            let status = response.status
            if !ResponseState.isBodiless(status) && !(context.isHEAD && response.bodyCount == 0) {
                response.head.append(contentLengthPrefix)
                response.head.appendDecimal(response.bodyCount)
                response.head.append(crlf)
            }
            commitHead(context, closeConnection: close)
            output.append(response.held)
        case .passthrough:
            if let declared = response.declaredLength, !response.suppressBody,
               declared != response.bodyCount {
                close = true
                problem = "Content-Length \(declared) but \(response.bodyCount) body bytes written"
            }
        case .chunked:
            output.append(lastChunk)
        case .untilClose, .raw:
            close = true
        }
        response.reset()
        return (close, problem)
    }

    private func commitHead(_ context: ResponseContext, closeConnection: Bool) {
        output.append(response.head)
        if !response.sentConnection {
            if closeConnection {
                output.append(connectionCloseLine)
            } else if context.echoKeepAlive {
                output.append(connectionKeepAliveLine)
            }
        }
        output.append(crlf)
        response.head.removeAll()
    }

    private func appendChunk(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        output.appendHexadecimal(bytes.count)
        output.append(crlf)
        output.append(bytes)
        output.append(crlf)
    }
}

private let crlf: [UInt8] = [13, 10]
private let contentLengthPrefix = Array("Content-Length: ".utf8)
private let connectionCloseLine = Array("Connection: close\r\n".utf8)
private let connectionKeepAliveLine = Array("Connection: keep-alive\r\n".utf8)
private let transferEncodingChunkedLine = Array("Transfer-Encoding: chunked\r\n".utf8)
private let lastChunk = Array("0\r\n\r\n".utf8)

/// Calls `body` with the string's UTF-8 bytes, without copying a native string.
@inline(__always)
func withUTF8<T>(of string: String, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
    if let result = string.utf8.withContiguousStorageIfAvailable(body) { return result }
    var copy = string
    return copy.withUTF8(body)
}

/// Whether header bytes (UTF-8) can be written as they are: ASCII with no CR, LF or NUL.
/// Other text goes through `latin1HeaderText`. Inlined into its one caller, which checks a
/// name and a value per header line: 140 instructions fewer per F1 request (Scripts/callgrind
/// --f1).
@inline(__always)
func isSafeHeaderText(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    // Eight bytes at a time, the last word overlapping the one before it (a run of four to
    // seven bytes: two overlapping halves; a shorter one: padded with spaces). A word with no
    // byte below 14 and none from 0x80 up has none of the three and is ASCII; only a run with
    // such a byte (a tab, say) is looked at byte by byte. The unaligned word loads buy 315
    // instructions per request: 6,217 against 6,532 with a loop over the bytes
    // (Scripts/callgrind, S2's shape, at 4aa5a87).
    let raw = UnsafeRawBufferPointer(bytes)
    let count = raw.count
    if count < 8 {
        var word: UInt64 = 0x2020_2020_2020_2020
        if count >= 4 {
            word = UInt64(raw.loadUnaligned(as: UInt32.self))
                | UInt64(raw.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self)) << 32
        } else {
            for byte in raw { word = word << 8 | UInt64(byte) }
        }
        return !needsALook(word) || isPlainASCII(raw)
    }
    var offset = 0
    while true {
        if needsALook(raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) {
            return isPlainASCII(raw)
        }
        if offset == count - 8 { return true }
        offset = min(offset + 8, count - 8)
    }
}

/// Whether some byte of `word` is below 14. (A byte from 0x80 up is ruled out by `~word`;
/// borrows run only from a byte that is below 14 already.)
@inline(__always)
private func hasByteBelow14(_ word: UInt64) -> Bool {
    (word &- 0x0E0E_0E0E_0E0E_0E0E) & ~word & 0x8080_8080_8080_8080 != 0
}

/// Whether some byte of `word` is below 14 or from 0x80 up.
@inline(__always)
private func needsALook(_ word: UInt64) -> Bool {
    hasByteBelow14(word) || word & 0x8080_8080_8080_8080 != 0
}

private func isPlainASCII(_ raw: UnsafeRawBufferPointer) -> Bool {
    for byte in raw where byte == 13 || byte == 10 || byte == 0 || byte >= 0x80 { return false }
    return true
}

/// The integer a header value states, read as `Int(value.trimmingASCIIWhitespace())` reads
/// it (spaces and tabs around it, an optional sign, decimal digits; nil on anything else or
/// on overflow), from the value's UTF-8 bytes: 1,000 instructions a request less than
/// trimming the String by its characters (Scripts/callgrind --f1, `Content-Length`).
func decimalValue(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
    var start = 0
    var end = bytes.count
    while start < end && (bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t")) { start += 1 }
    while end > start && (bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t")) { end -= 1 }
    let negative = start < end && bytes[start] == UInt8(ascii: "-")
    if negative || start < end && bytes[start] == UInt8(ascii: "+") { start += 1 }
    guard start < end else { return nil }
    // Accumulated towards the sign, so that Int.min is read as Int's parser reads it.
    var result = 0
    for byte in bytes[start..<end] {
        guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
        let digit = Int(byte - UInt8(ascii: "0"))
        let (scaled, overflow) = result.multipliedReportingOverflow(by: 10)
        let (next, overflowAgain) = negative ? scaled.subtractingReportingOverflow(digit)
                                             : scaled.addingReportingOverflow(digit)
        guard !overflow && !overflowAgain else { return nil }
        result = next
    }
    return result
}

/// UTF-8 header text as the ISO-8859-1 bytes Python writes (`str.encode('latin-1')`); nil when
/// it holds CR, LF or NUL, or a character ISO-8859-1 cannot carry (above U+00FF).
func latin1HeaderText(_ utf8: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(utf8.count)
    for scalar in String(decoding: utf8, as: UTF8.self).unicodeScalars {
        guard scalar.value <= 0xFF, scalar != "\r", scalar != "\n", scalar != "\0" else { return nil }
        bytes.append(UInt8(scalar.value))
    }
    return bytes
}

extension StringProtocol {
    /// The string without leading and trailing spaces and tabs.
    func trimmingASCIIWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return Substring() }
        let end = lastIndex(where: { !isSpace($0) })!
        return Substring(self[start...end])
    }
}
