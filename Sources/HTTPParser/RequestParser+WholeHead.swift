/// The fast path for the common case: a whole, plain head at the start of one read.
///
/// Most requests arrive with their head complete in a single read. For those, this path parses
/// the request line and every field line in one pass with the positions in registers, instead
/// of stepping the resumable state machine through a dozen states per line. It accepts only a
/// subset of what the state machine accepts — `token SP /origin SP HTTP/1.0|1.1 CRLF`, then
/// `token ":" OWS value OWS CRLF` lines within every limit — and on anything else (a line cut
/// by the end of the read, bare LF, leading empty lines, HTTP/0.9, another target form, any
/// error) it gives up before consuming a byte and leaves the read to the state machine, which
/// then decides exactly as it always does. So the verdict never depends on which path ran (the
/// fuzzer checks whole input against byte-by-byte input, which never takes this path), and a
/// byte is scanned at most twice: once here, once by the state machine after a give-up, and
/// only in the first read of a message.
extension RequestParser {
    /// Parses a whole plain head at the start of `p[0..<n]`; returns the step (`.head`, or the
    /// `.error` the head-wide rules found) and sets `i` past the head, or returns nil, having
    /// changed nothing a later parse depends on, to leave the input to the state machine.
    mutating func parseWholeHead(
        _ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int, _ t: UnsafePointer<UInt8>
    ) -> Step? {
        // Request line: method SP.
        let methodEnd = ByteClass.span(p, from: 0, to: n, t, ByteClass.token)
        guard methodEnd > 0, methodEnd + 1 < n, p[methodEnd] == ASCII.space,
            p[methodEnd + 1] == ASCII.slash
        else { return nil }
        let knownMethod = KnownMethod.classify(p, methodEnd)
        guard knownMethod != .connect else { return nil }
        // Origin-form target SP.
        let targetStart = methodEnd + 1
        let targetEnd = ByteClass.span(
            p, from: targetStart, to: n, t, ByteClass.target, allAbove: 0x21)
        guard targetEnd + 11 <= n, p[targetEnd] == ASCII.space else { return nil }
        // HTTP/1.1 or HTTP/1.0, CRLF.
        let versionStart = targetEnd + 1
        let word = UInt64(
            littleEndian: UnsafeRawPointer(p + versionStart).loadUnaligned(as: UInt64.self))
        let minor: Int
        switch word {
        case Self.http11Word: minor = 1
        case Self.http10Word: minor = 0
        default: return nil
        }
        let lineEnd = versionStart + 8
        guard p[lineEnd] == ASCII.cr, p[lineEnd + 1] == ASCII.lf,
            lineEnd <= limits.maxRequestLineLength
        else { return nil }

        // Field lines, into a copy of the interpreter so that giving up leaves no trace.
        var fields = interpreter
        let storage = head.storage
        let sectionStart = lineEnd + 2
        let sectionEnd = Self.offset(sectionStart, plus: limits.maxHeaderSectionSize)
        var count = 0
        var k = sectionStart
        while true {
            guard k + 1 < n else { return giveUp(storage) }
            if p[k] == ASCII.cr {
                guard p[k + 1] == ASCII.lf else { return giveUp(storage) }
                k += 2
                break
            }
            let nameEnd = ByteClass.span(p, from: k, to: n, t, ByteClass.token)
            guard nameEnd > k, nameEnd < n, p[nameEnd] == ASCII.colon else {
                return giveUp(storage)
            }
            count += 1
            var valueStart = nameEnd + 1
            while valueStart < n && t[Int(p[valueStart])] & ByteClass.whitespace != 0 {
                valueStart += 1
            }
            let cr = ByteClass.span(p, from: valueStart, to: n, t, ByteClass.fieldValue, allAbove: 0x20)
            guard cr + 1 < n, p[cr] == ASCII.cr, p[cr + 1] == ASCII.lf,
                cr - k <= limits.maxHeaderLineLength, cr + 2 <= sectionEnd,
                count <= limits.maxHeaderCount
            else { return giveUp(storage) }
            var valueEnd = cr
            while valueEnd > valueStart && t[Int(p[valueEnd - 1])] & ByteClass.whitespace != 0 {
                valueEnd -= 1
            }
            let kind = FieldKind.classify(p + k, nameEnd - k)
            if kind != .other {
                fields.beginValue(kind)
                guard fields.feed(kind, p + valueStart, cr - valueStart, t) == nil,
                    fields.finishValue(kind) == nil
                else { return giveUp(storage) }
            }
            storage.fields.append(HeaderField(name: k..<nameEnd, value: valueStart..<valueEnd))
            k = cr + 2
        }

        // The whole head is plain: record it as the state machine would have.
        storage.requestLine = 0..<lineEnd
        storage.method = 0..<methodEnd
        storage.knownMethod = knownMethod
        storage.target = targetStart..<targetEnd
        storage.version = versionStart..<lineEnd
        storage.versionMajor = 1
        storage.versionMinor = minor
        method = knownMethod
        interpreter = fields
        i = k
        return completeHead(at: k)
    }

    /// Undoes the fields appended so far and hands the read to the state machine.
    private func giveUp(_ storage: RequestHead.Storage) -> Step? {
        storage.fields.removeAll(keepingCapacity: true)
        return nil
    }
}
