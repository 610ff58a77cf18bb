/// Interprets the values of the fields that decide framing and connection handling —
/// `Host`, `Content-Length`, `Transfer-Encoding`, `Connection`, `Expect` — while their bytes
/// stream past, because by the time the head is complete the parser may no longer see them.
///
/// The parser feeds each value in segments (leading whitespace already skipped, trailing
/// whitespace included) and calls ``finishValue(_:)`` at its line end. Every verdict is reached
/// at a fixed byte of the value, so a split never changes which error wins.
struct FieldInterpreter: Sendable {
    // MARK: Conclusions, read when the head is complete.

    /// The declared `Content-Length`, or -1 when none was sent.
    private(set) var contentLength = -1
    /// How many `Host` field lines were seen.
    private(set) var hostCount = 0
    /// Whether any `Transfer-Encoding` field line was seen.
    private(set) var hasTransferEncoding = false
    /// Whether `chunked` was among the transfer codings (it is then the final one).
    private(set) var isChunked = false
    /// Whether a transfer coding other than `chunked` was listed.
    private(set) var hasOtherCoding = false
    /// Whether a `Connection` field listed `close`.
    private(set) var connectionClose = false
    /// Whether a `Connection` field listed `keep-alive`.
    private(set) var connectionKeepAlive = false
    /// What `Expect` asked for.
    private(set) var expect = ExpectValue.none

    // MARK: Progress inside the current value.

    /// `Content-Length`: the current list element's value, digits, and whether OWS followed them.
    private var number = 0
    private var numberDigits = 0
    private var spaceAfterNumber = false
    /// List elements (`Transfer-Encoding`, `Connection`, `Expect`): the element's length, which
    /// candidate literals it still matches (bit per candidate), and pending whitespace.
    private var elementLength = 0
    private var candidates: UInt8 = 0
    private var spaceInElement = false
    /// `Host`: the grammar check.
    private var host = HostValidator()

    /// Prepares for the value of a field of `kind`.
    @inline(__always)
    mutating func beginValue(_ kind: FieldKind) {
        switch kind {
        case .host:
            hostCount += 1
            host = HostValidator()
        case .contentLength:
            number = 0
            numberDigits = 0
            spaceAfterNumber = false
        case .transferEncoding:
            hasTransferEncoding = true
            beginElement()
        case .connection, .expect:
            beginElement()
        case .other:
            break
        }
    }

    /// Interprets the next `count` bytes of the current value; returns the error they prove.
    @inline(__always)
    mutating func feed(
        _ kind: FieldKind, _ bytes: UnsafePointer<UInt8>, _ count: Int, _ table: UnsafePointer<UInt8>
    ) -> ParseError.Kind? {
        switch kind {
        case .host:
            return host.feed(bytes, count, table) ? nil : .badHost
        case .contentLength:
            for k in 0..<count {
                if let failure = feedContentLength(bytes[k]) { return failure }
            }
            return nil
        case .transferEncoding, .connection, .expect:
            for k in 0..<count {
                let byte = bytes[k]
                if byte == ASCII.comma && kind != .expect {
                    if let failure = finishElement(kind) { return failure }
                    beginElement()
                } else {
                    feedElement(byte, kind, isSpace: table[Int(byte)] & ByteClass.whitespace != 0)
                }
            }
            return nil
        case .other:
            return nil
        }
    }

    /// Concludes the current value at its line end; returns the error it proves.
    @inline(__always)
    mutating func finishValue(_ kind: FieldKind) -> ParseError.Kind? {
        switch kind {
        case .host:
            return host.isComplete(requiringPort: false) ? nil : .badHost
        case .contentLength:
            return finishNumber()
        case .transferEncoding, .connection, .expect:
            return finishElement(kind)
        case .other:
            return nil
        }
    }

    // MARK: Content-Length: 1*DIGIT, nothing else.
    //
    // A comma list is refused even when its values agree (`5, 5`): RFC 9110 §8.6 and RFC 9112
    // §6.3 let a recipient read it as the one value, but a list is not a number (DESIGN.md: a
    // non-numeric length is 400), and a refusal leaves nothing for a front end to read otherwise.
    // Separate fields with equal values still count as one length (RFC 9112 §6.3); differing
    // ones are refused. llhttp refuses a second field whatever its value; Python checks none.

    private mutating func feedContentLength(_ byte: UInt8) -> ParseError.Kind? {
        if let digit = ASCII.digit(byte) {
            guard !spaceAfterNumber else { return .badContentLength }
            guard number <= (Int.max - digit) / 10 else { return .badContentLength }
            number = number * 10 + digit
            numberDigits += 1
        } else if byte == ASCII.space || byte == ASCII.tab {
            spaceAfterNumber = numberDigits > 0
        } else {
            return .badContentLength  // a comma, a sign, a letter: not 1*DIGIT
        }
        return nil
    }

    private mutating func finishNumber() -> ParseError.Kind? {
        guard numberDigits > 0 else { return .badContentLength }
        if contentLength >= 0 && contentLength != number { return .conflictingContentLength }
        contentLength = number
        return nil
    }

    // MARK: Token lists matched against known literals, case-insensitively.

    /// The literals a list element of `kind` is matched against, one bit each.
    private static func literals(_ kind: FieldKind) -> (StaticString, StaticString?) {
        switch kind {
        case .transferEncoding: ("chunked", nil)
        case .connection: ("close", "keep-alive")
        default: ("100-continue", nil)
        }
    }

    private mutating func beginElement() {
        elementLength = 0
        candidates = 0b11
        spaceInElement = false
    }

    private mutating func feedElement(_ byte: UInt8, _ kind: FieldKind, isSpace: Bool) {
        if isSpace {
            spaceInElement = elementLength > 0
            return
        }
        if spaceInElement { candidates = 0 }  // "chunked x" is no coding we know
        let (first, second) = Self.literals(kind)
        let folded = byte | 0x20
        if candidates & 1 != 0
            && (elementLength >= first.utf8CodeUnitCount || first.utf8Start[elementLength] != folded)
        {
            candidates &= ~1
        }
        let matchesSecond =
            second.map {
                elementLength < $0.utf8CodeUnitCount && $0.utf8Start[elementLength] == folded
            } ?? false
        if !matchesSecond { candidates &= ~2 }
        elementLength += 1
    }

    private mutating func finishElement(_ kind: FieldKind) -> ParseError.Kind? {
        guard elementLength > 0 else { return nil }  // empty list elements are ignored
        let (first, second) = Self.literals(kind)
        let matchesFirst = candidates & 1 != 0 && elementLength == first.utf8CodeUnitCount
        let matchesSecond =
            candidates & 2 != 0 && elementLength == (second?.utf8CodeUnitCount ?? -1)
        switch kind {
        case .transferEncoding:
            // After `chunked` nothing may follow: neither a second `chunked` nor another coding.
            if isChunked { return .badTransferEncoding }
            if matchesFirst { isChunked = true } else { hasOtherCoding = true }
        case .connection:
            if matchesFirst { connectionClose = true }
            if matchesSecond { connectionKeepAlive = true }
        default:
            if !matchesFirst { expect = .other } else if expect == .none { expect = .continue100 }
        }
        return nil
    }
}
