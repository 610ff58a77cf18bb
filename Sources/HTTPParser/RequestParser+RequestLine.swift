/// The four request-target forms of RFC 9112 §3.2.
enum TargetForm: UInt8, Sendable {
    /// `/path?query`: any method but `CONNECT`.
    case origin
    /// `scheme://authority/path`: any method but `CONNECT`.
    case absolute
    /// `host:port`: `CONNECT` only.
    case authority
    /// `*`: any method but `CONNECT`. RFC 9112 §3.2.4 means it for `OPTIONS`, but Python and
    /// llhttp take it with any method, and SSDP's `M-SEARCH * HTTP/1.1` relies on that; the
    /// handler sees the path `*`.
    case asterisk
}

/// The request line: `method SP request-target SP HTTP-version`, or HTTP/0.9's `GET /path`.
extension RequestParser {
    /// `HTTP/1.1` and `HTTP/1.0` as little-endian words, for the common-case fast path.
    static let http11Word: UInt64 = 0x312E_312F_5054_5448
    static let http10Word: UInt64 = 0x302E_312F_5054_5448

    /// Runs the request-line states back to back while input lasts: each state's handler
    /// falls through to the next one's without going back to the dispatcher, and the input
    /// index stays in a register.
    mutating func parseRequestLine(
        _ p: UnsafePointer<UInt8>, _ n: Int, _ index: inout Int, _ t: UnsafePointer<UInt8>
    ) -> Step {
        var i = index
        defer { index = i }
        var step = Step.proceed
        switch state {
        case .lineStart, .lineStartCR:
            step = parseLineStart(p, n, &i)
            guard step == .proceed else { return step }
            fallthrough
        case .method:
            step = parseMethod(p, n, &i, t)
            guard step == .proceed else { return step }
            fallthrough
        case .targetStart, .target:
            step = parseTarget(p, n, &i, t)
            guard step == .proceed else { return step }
            fallthrough
        case .afterTarget:
            step = parseAfterTarget(p, n, &i)
            guard step == .proceed && state == .version else { return step }
            fallthrough
        case .version:
            step = parseVersion(p, n, &i)
            guard step == .proceed else { return step }
            fallthrough
        case .afterVersion, .requestLineCR:
            step = parseRequestLineEnd(p, n, &i)
            guard step == .proceed && state == .requestLineCR else { return step }
            return parseRequestLineEnd(p, n, &i)
        default:
            return .proceed
        }
    }

    /// Skips the empty lines a client may send before the request line (RFC 9112 §2.2).
    @inline(__always)
    mutating func parseLineStart(_ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int) -> Step {
        while i < n {
            let byte = p[i]
            if state == .lineStartCR {
                guard byte == ASCII.lf else { return fail(.bareCR) }
                state = .lineStart
            } else if byte == ASCII.cr {
                state = .lineStartCR
            } else if byte != ASCII.lf {
                lineStart = base + i
                head.storage.requestLine = lineStart..<lineStart
                limitLine(from: lineStart, length: limits.maxRequestLineLength, .requestLineTooLong)
                tokenPrefix.removeAll()
                state = .method
                return .proceed
            }
            i += 1
            if base + i > limits.maxRequestLineLength { return fail(.tooManyEmptyLines) }
        }
        return .needMore
    }

    /// The method: a token ended by exactly one SP.
    @inline(__always)
    mutating func parseMethod(
        _ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int, _ t: UnsafePointer<UInt8>
    ) -> Step {
        let start = i
        let end = stopIndex(n)
        i = ByteClass.span(p, from: i, to: end, t, ByteClass.token)
        if i == n {
            tokenPrefix.append(p + start, i - start)
            return .needMore
        }
        let byte = p[i]
        if i == end && byte != ASCII.cr && byte != ASCII.lf { return fail(stopFailure) }
        guard byte == ASCII.space else {
            let isSeparator = t[Int(byte)] & ByteClass.whitespace != 0 || byte == ASCII.cr
                || byte == ASCII.lf
            return fail(isSeparator ? .badRequestLine : .badMethod)
        }
        let length = base + i - lineStart
        guard length > 0 else { return fail(.badRequestLine) }
        if lineStart >= base {
            method = KnownMethod.classify(p + (lineStart - base), length)
        } else {
            tokenPrefix.append(p + start, i - start)
            method = tokenPrefix.withBytes(or: .other, KnownMethod.classify)
        }
        head.storage.method = lineStart..<base + i
        head.storage.knownMethod = method
        i += 1
        state = .targetStart
        return .proceed
    }

    /// The request target; its first byte decides the form, which must suit the method: the
    /// authority form for `CONNECT` and only there.
    @inline(__always)
    mutating func parseTarget(
        _ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int, _ t: UnsafePointer<UInt8>
    ) -> Step {
        let end = stopIndex(n)
        if state == .targetStart {
            guard i < n else { return .needMore }
            let byte = p[i]
            if i == end && byte != ASCII.cr && byte != ASCII.lf { return fail(stopFailure) }
            guard t[Int(byte)] & ByteClass.target != 0 else {
                return fail(t[Int(byte)] & ByteClass.fieldValue != 0 || byte == ASCII.cr
                    || byte == ASCII.lf ? .badRequestLine : .badTarget)
            }
            switch byte {
            case ASCII.slash: targetForm = .origin
            case ASCII.asterisk: targetForm = .asterisk
            default: targetForm = method == .connect ? .authority : .absolute
            }
            if (method == .connect) != (targetForm == .authority) { return fail(.badTarget) }
            head.storage.target = base + i..<base + i
            targetPhase = 0
            connectTarget = HostValidator()
            state = .target
        }
        let start = i
        i = ByteClass.span(p, from: i, to: end, t, ByteClass.target, allAbove: 0x21)
        if targetForm != .origin && !checkTargetForm(p + start, i - start, t) {
            return fail(.badTarget)
        }
        if i == n { return .needMore }
        let byte = p[i]
        if i == end && byte != ASCII.cr && byte != ASCII.lf { return fail(stopFailure) }
        guard t[Int(byte)] & ByteClass.whitespace != 0 || byte == ASCII.cr || byte == ASCII.lf
        else { return fail(.badTarget) }
        guard targetFormIsComplete else { return fail(.badTarget) }
        head.storage.target = head.storage.target.lowerBound..<base + i
        spaceRun = 0
        spaceRunIsOneSP = true
        state = .afterTarget
        return .proceed
    }

    /// Checks the next bytes of a target that is not in origin form; false once it is invalid.
    private mutating func checkTargetForm(
        _ bytes: UnsafePointer<UInt8>, _ count: Int, _ t: UnsafePointer<UInt8>
    ) -> Bool {
        switch targetForm {
        case .origin:
            return true
        case .asterisk:
            targetPhase += count
            return targetPhase <= 1
        case .authority:
            return connectTarget.feed(bytes, count, t)
        case .absolute:
            // scheme ALPHA, then *( ALPHA / DIGIT / "+" / "-" / "." ), then "://", then anything.
            for k in 0..<count where targetPhase < 4 {
                let byte = bytes[k]
                switch targetPhase {
                case 0:
                    guard (byte | 0x20) &- 0x61 < 26 else { return false }
                    targetPhase = 1
                case 1:
                    if byte == ASCII.colon {
                        targetPhase = 2
                    } else if t[Int(byte)] & ByteClass.scheme == 0 {
                        return false
                    }
                default:
                    guard byte == ASCII.slash else { return false }
                    targetPhase += 1
                }
            }
            return true
        }
    }

    /// Whether the target seen so far is a whole target of its form.
    private var targetFormIsComplete: Bool {
        switch targetForm {
        case .origin, .asterisk: true
        case .authority: connectTarget.isComplete(requiringPort: true)
        case .absolute: targetPhase == 4
        }
    }

    /// The separator after the target: one SP before the version, or (HTTP/0.9, or trailing
    /// whitespace) the line end.
    @inline(__always)
    mutating func parseAfterTarget(_ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int) -> Step {
        let end = stopIndex(n)
        while i < end {
            let byte = p[i]
            if byte == ASCII.tab {
                spaceRunIsOneSP = false
            } else if byte != ASCII.space {
                break
            }
            spaceRun += 1
            i += 1
        }
        if i == n { return .needMore }
        let byte = p[i]
        if byte == ASCII.cr || byte == ASCII.lf {
            guard method == .get else { return fail(.badHTTP09Method) }
            return endRequestLine(byte, &i)
        }
        if i == end { return fail(stopFailure) }
        guard spaceRun == 1 && spaceRunIsOneSP else { return fail(.badRequestLine) }
        head.storage.version = nil
        head.storage.versionMajor = 0
        head.storage.versionMinor = 0
        versionPhase = 0
        nameStart = base + i  // where the version begins
        state = .version
        return .proceed
    }

    /// `HTTP/` DIGIT `.` DIGIT (RFC 9112 §2.3), ended by whitespace or the line end.
    ///
    /// Stricter than Python, which takes up to ten digits on each side: `HTTP/01.1` and
    /// `HTTP/1.10` are malformed (400), not HTTP/1.1 and a tenth minor version, and
    /// `HTTP/10.0` is malformed rather than unsupported. A well-formed version whose major
    /// is 2 or more is unsupported (505): so is HTTP/2's connection preface, `PRI * HTTP/2.0`,
    /// which the verdict reaches at the byte after `2.0`, before its `SM` line.
    @inline(__always)
    mutating func parseVersion(_ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int) -> Step {
        let end = stopIndex(n)
        if versionPhase == 0 && end - i >= 8 {
            let word = UInt64(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self))
            if word == Self.http11Word || word == Self.http10Word {
                head.storage.versionMajor = 1
                head.storage.versionMinor = word == Self.http11Word ? 1 : 0
                versionPhase = 8
                i += 8
            }
        }
        while i < n {
            let byte = p[i]
            if i == end && byte != ASCII.cr && byte != ASCII.lf { return fail(stopFailure) }
            switch versionPhase {
            case 0..<5:
                guard byte == ("HTTP/" as StaticString).utf8Start[versionPhase] else {
                    return fail(.badVersion)
                }
            case 5:
                guard let digit = ASCII.digit(byte) else { return fail(.badVersion) }
                head.storage.versionMajor = digit
            case 6:
                guard byte == ASCII.dot else { return fail(.badVersion) }
            case 7:
                guard let digit = ASCII.digit(byte) else { return fail(.badVersion) }
                head.storage.versionMinor = digit
            default:
                let endsVersion = byte == ASCII.space || byte == ASCII.tab || byte == ASCII.cr
                    || byte == ASCII.lf
                guard endsVersion else { return fail(.badVersion) }
                head.storage.version = nameStart..<base + i
                if head.versionMajor >= 2 { return fail(.versionNotSupported) }
                state = .afterVersion
                return .proceed
            }
            versionPhase += 1
            i += 1
        }
        return .needMore
    }

    /// Optional trailing whitespace, then CRLF or LF.
    @inline(__always)
    mutating func parseRequestLineEnd(_ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int)
        -> Step
    {
        if state == .requestLineCR {
            guard i < n else { return .needMore }
            guard p[i] == ASCII.lf else { return fail(.bareCR) }
            i += 1
            return finishRequestLine(at: base + i)
        }
        let end = stopIndex(n)
        while i < end && (p[i] == ASCII.space || p[i] == ASCII.tab) { i += 1 }
        if i == n { return .needMore }
        let byte = p[i]
        if byte == ASCII.cr || byte == ASCII.lf { return endRequestLine(byte, &i) }
        return fail(i == end ? stopFailure : .badRequestLine)
    }

    /// Records the request line's end at the CR or LF at `i` and consumes it.
    @inline(__always)
    private mutating func endRequestLine(_ byte: UInt8, _ i: inout Int) -> Step {
        head.storage.requestLine = lineStart..<base + i
        i += 1
        if byte == ASCII.cr {
            state = .requestLineCR
            return .proceed
        }
        return finishRequestLine(at: base + i)
    }

    /// Moves on to the field lines, or, for HTTP/0.9, completes the head at once.
    @inline(__always)
    private mutating func finishRequestLine(at offset: Int) -> Step {
        if head.storage.version == nil {
            head.storage.versionMajor = 0
            head.storage.versionMinor = 9
            head.storage.headLength = offset
            state = .afterHead
            return .head
        }
        inTrailers = false
        sectionStart = offset
        sectionLimit = limits.maxHeaderSectionSize
        fieldCount = 0
        state = .fieldStart
        return .proceed
    }
}
