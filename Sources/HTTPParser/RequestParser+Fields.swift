/// Field lines: `field-name ":" OWS field-value OWS`, ended by CRLF or (in the head) LF.
///
/// The same states parse a chunked body's trailer section; there the lines are checked by the
/// same rules, must end with CRLF, and are then discarded.
extension RequestParser {
    /// Runs the field-line states back to back, line after line, while input lasts: each
    /// state's handler falls through to the next one's without going back to the dispatcher,
    /// and the input index stays in a register.
    mutating func parseFieldLines(
        _ p: UnsafePointer<UInt8>, _ n: Int, _ index: inout Int, _ t: UnsafePointer<UInt8>
    ) -> Step {
        var i = index
        defer { index = i }
        var step = Step.proceed
        while true {
            switch state {
            case .fieldStart:
                step = parseFieldStart(p, n, &i)
                guard step == .proceed else { return step }
                if state != .fieldName { continue }
                fallthrough
            case .fieldName:
                step = parseFieldName(p, n, &i, t)
                guard step == .proceed else { return step }
                fallthrough
            case .valueStart:
                step = parseValueStart(p, n, &i, t)
                guard step == .proceed else { return step }
                fallthrough
            case .value:
                step = parseValue(p, n, &i, t)
                guard step == .proceed else { return step }
                if state != .fieldCR { continue }
                fallthrough
            case .fieldCR, .headCR:
                step = parseFieldLineEnd(p, n, &i)
                guard step == .proceed else { return step }
            default:
                return .proceed
            }
        }
    }

    /// The first byte of a line: a field name, or the empty line that ends the section.
    @inline(__always)
    mutating func parseFieldStart(_ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int) -> Step {
        guard i < n else { return .needMore }
        let byte = p[i]
        if byte == ASCII.cr {
            state = .headCR
            i += 1
            return .proceed
        }
        if byte == ASCII.lf {
            if inTrailers { return fail(.bareLF) }
            i += 1
            return completeHead(at: base + i)
        }
        if byte == ASCII.space || byte == ASCII.tab { return fail(.obsoleteLineFolding) }
        fieldCount += 1
        if fieldCount > limits.maxHeaderCount { return fail(.tooManyFields) }
        lineStart = base + i
        nameStart = lineStart
        limitLine(
            from: lineStart, length: limits.maxHeaderLineLength, .fieldLineTooLong,
            sectionEnd: Self.offset(sectionStart, plus: sectionLimit),
            inTrailers ? .trailerSectionTooLarge : .headerSectionTooLarge)
        tokenPrefix.removeAll()
        state = .fieldName
        return .proceed
    }

    /// The field name: a token ended by the colon, with no whitespace before it.
    @inline(__always)
    mutating func parseFieldName(
        _ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int, _ t: UnsafePointer<UInt8>
    ) -> Step {
        let start = i
        let end = stopIndex(n)
        i = ByteClass.span(p, from: i, to: end, t, ByteClass.token)
        if i == n {
            if !inTrailers { tokenPrefix.append(p + start, i - start) }
            return .needMore
        }
        let byte = p[i]
        if i == end && byte != ASCII.cr && byte != ASCII.lf { return fail(stopFailure) }
        guard byte == ASCII.colon else {
            if byte == ASCII.space || byte == ASCII.tab { return fail(.whitespaceBeforeColon) }
            return fail(byte == ASCII.cr || byte == ASCII.lf ? .missingColon : .badFieldName)
        }
        nameEnd = base + i
        let length = nameEnd - nameStart
        guard length > 0 else { return fail(.badFieldName) }
        if inTrailers {
            fieldKind = .other
        } else if nameStart >= base {
            fieldKind = FieldKind.classify(p + (nameStart - base), length)
        } else {
            tokenPrefix.append(p + start, i - start)
            fieldKind = tokenPrefix.withBytes(or: .other, FieldKind.classify)
        }
        i += 1
        state = .valueStart
        return .proceed
    }

    /// The optional whitespace between the colon and the value.
    @inline(__always)
    mutating func parseValueStart(
        _ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int, _ t: UnsafePointer<UInt8>
    ) -> Step {
        let end = stopIndex(n)
        while i < end && t[Int(p[i])] & ByteClass.whitespace != 0 { i += 1 }
        if i == n { return .needMore }
        if i == end && p[i] != ASCII.cr && p[i] != ASCII.lf { return fail(stopFailure) }
        valueStart = base + i
        valueEnd = valueStart
        interpreter.beginValue(fieldKind)
        state = .value
        return .proceed
    }

    /// The value up to the line end. Trailing whitespace is found by looking back over only
    /// the bytes of this call, so each byte is visited at most twice however the value is split.
    @inline(__always)
    mutating func parseValue(
        _ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int, _ t: UnsafePointer<UInt8>
    ) -> Step {
        let start = i
        let end = stopIndex(n)
        i = ByteClass.span(p, from: i, to: end, t, ByteClass.fieldValue, allAbove: 0x20)
        var last = i
        while last > start && t[Int(p[last - 1])] & ByteClass.whitespace != 0 { last -= 1 }
        if last > start { valueEnd = base + last }
        if fieldKind != .other, let failure = interpreter.feed(fieldKind, p + start, i - start, t) {
            return fail(failure)
        }
        if i == n { return .needMore }
        let byte = p[i]
        if byte == ASCII.cr {
            state = .fieldCR
            i += 1
            return .proceed
        }
        if byte == ASCII.lf {
            if inTrailers { return fail(.bareLF) }
            i += 1
            return endFieldLine(at: base + i)
        }
        return fail(i == end ? stopFailure : .badFieldValue)
    }

    /// The LF after a CR that ended a field line or the section.
    @inline(__always)
    mutating func parseFieldLineEnd(_ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int)
        -> Step
    {
        guard i < n else { return .needMore }
        guard p[i] == ASCII.lf else { return fail(.bareCR) }
        i += 1
        if state == .fieldCR { return endFieldLine(at: base + i) }
        return inTrailers ? .end : completeHead(at: base + i)
    }

    /// Stores the field that ended at `offset` and concludes its value.
    @inline(__always)
    private mutating func endFieldLine(at offset: Int) -> Step {
        if offset - sectionStart > sectionLimit {
            return fail(inTrailers ? .trailerSectionTooLarge : .headerSectionTooLarge)
        }
        state = .fieldStart
        if inTrailers { return .proceed }
        head.storage.fields.append(HeaderField(name: nameStart..<nameEnd, value: valueStart..<valueEnd))
        if fieldKind != .other, let failure = interpreter.finishValue(fieldKind) {
            return fail(failure)
        }
        return .proceed
    }

    /// Applies the head-wide rules (RFC 9112 §3.2, §6.1, §6.3) and hands out the head.
    @inline(__always)
    mutating func completeHead(at offset: Int) -> Step {
        head.storage.headLength = offset
        let fields = interpreter
        if head.isHTTP11OrLater && fields.hostCount == 0 { return fail(.missingHost) }
        if fields.hostCount > 1 { return fail(.multipleHost) }
        if fields.hasTransferEncoding {
            if fields.contentLength >= 0 { return fail(.contentLengthWithTransferEncoding) }
            if !head.isHTTP11OrLater { return fail(.transferEncodingInHTTP10) }
            if fields.hasOtherCoding { return fail(.unsupportedTransferCoding) }
            if !fields.isChunked { return fail(.badTransferEncoding) }
            head.storage.framing = .chunked
        } else if fields.contentLength >= 0 {
            if fields.contentLength > limits.maxBodySize { return fail(.bodyTooLarge) }
            head.storage.framing = .contentLength(fields.contentLength)
        }
        head.storage.connectionClose = fields.connectionClose
        head.storage.connectionKeepAlive = fields.connectionKeepAlive
        head.storage.expect = fields.expect
        state = .afterHead
        return .head
    }
}
