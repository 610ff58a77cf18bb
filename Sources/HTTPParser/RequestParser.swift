/// An incremental HTTP/1.1 request parser (RFC 9112) that reports what it found instead of
/// calling back.
///
/// Feed it bytes as they arrive; each call returns one ``ParseEvent`` and how many bytes it
/// consumed. State is a small enum plus counters, so input split anywhere — one byte at a time
/// included — resumes exactly where it stopped, and no consumed byte is ever scanned again.
/// The parser copies nothing: the head is spans into the caller's bytes, body events are
/// ranges of the current input. It allocates only the head's storage and field array, and
/// reuses both for the next request when the caller has dropped the previous head by the time
/// that request's first byte arrives.
///
/// ```swift
/// var parser = RequestParser()
/// let (event, consumed) = parser.parse(buffer)   // call again with buffer[consumed...]
/// ```
public struct RequestParser: Sendable {
    /// Where the next byte lands.
    enum State: UInt8, Sendable {
        case lineStart, lineStartCR
        case method, targetStart, target, afterTarget, version, afterVersion, requestLineCR
        case fieldStart, fieldName, valueStart, value, fieldCR, headCR
        case afterHead, fixedBody, chunkLine, chunkData, chunkDataCR, chunkDataLF, messageEnd
    }

    /// The limits this parser enforces; change them between messages.
    public var limits: ParserLimits

    /// The byte-class table, held here so `parse` need not check a lazy global on every call.
    let table = ByteTable.shared

    var state = State.lineStart
    var failure: ParseError?
    /// The offset, counted from the start of the message, of this call's first input byte.
    var base = 0
    /// The offset where the current line began.
    var lineStart = 0
    /// The first offset at which a byte other than CR or LF breaks a limit, and which limit.
    var stop = 0
    var stopFailure = ParseError.Kind.requestLineTooLong
    /// The head under construction.
    var head = RequestHead()
    /// Whether `head` still holds the previous message, to be emptied (or replaced, if the
    /// caller still holds it) when the next message's first byte arrives — not at `.end`, when
    /// a server is typically still using the head it was just given.
    var headIsStale = false

    // Request line.
    var tokenPrefix = TokenPrefix()
    var method = KnownMethod.other
    var targetForm = TargetForm.origin
    var targetPhase = 0
    var connectTarget = HostValidator()
    var spaceRun = 0
    var spaceRunIsOneSP = true
    /// The next byte of `HTTP/` DIGIT `.` DIGIT to check; 8 once the version is whole.
    var versionPhase = 0

    // Field lines (the head's, then a chunked body's trailers).
    var inTrailers = false
    var sectionStart = 0
    var sectionLimit = 0
    var fieldCount = 0
    var nameStart = 0
    var nameEnd = 0
    var valueStart = 0
    var valueEnd = 0
    var fieldKind = FieldKind.other
    var interpreter = FieldInterpreter()

    // Body.
    var bodyRange = 0..<0
    var remaining = 0
    var bodyTotal = 0
    var chunkPhase = ChunkPhase.size
    var chunkSize = 0
    var chunkDigits = 0

    /// What a state handler achieved; the payload of an event waits in the parser's properties.
    enum Step: UInt8, Sendable {
        /// The state changed; dispatch again.
        case proceed
        /// Every byte was consumed.
        case needMore
        /// The head is complete (in ``head``).
        case head
        /// Body bytes are ready (in ``bodyRange``).
        case body
        /// The message is complete.
        case end
        /// The request failed (in ``failure``).
        case error
    }

    /// Creates a parser at the start of a message.
    public init(limits: ParserLimits = ParserLimits()) {
        self.limits = limits
    }

    /// Returns to the start of a message, dropping any partial message and any error.
    public mutating func reset() {
        failure = nil
        startNextMessage()
    }

    /// Prepares for the next message. Only what a message start assumes is cleared; every
    /// other property is set by the state that begins using it.
    private mutating func startNextMessage() {
        state = .lineStart
        base = 0
        headIsStale = true
        interpreter = FieldInterpreter()
        inTrailers = false
        bodyTotal = 0
    }

    /// Parses as much of `input` as makes one event and returns it with the number of bytes
    /// consumed. Call again with `input[consumed...]` (plus any later bytes) until `.needMore`.
    ///
    /// After `.head`, call again even with no bytes left: a bodiless message then returns
    /// `.end` with `consumed == 0`.
    public mutating func parse(_ input: UnsafeRawBufferPointer) -> (event: ParseEvent, consumed: Int) {
        if let failure { return (.error(failure), 0) }
        guard let start = input.baseAddress, input.count > 0 else {
            // No byte is read when the count is zero; any valid pointer will do.
            return run(table.pointer, 0)
        }
        return run(start.assumingMemoryBound(to: UInt8.self), input.count)
    }

    /// Dispatches on the state until a handler has an event, then builds it.
    private mutating func run(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> (ParseEvent, Int) {
        let t = table.pointer
        var i = 0
        if headIsStale && count > 0 {
            head.prepareForNextMessage()
            headIsStale = false
        }
        if state == .lineStart && base == 0 && count > 0,
            let step = parseWholeHead(bytes, count, &i, t)
        {
            return finish(step, i)
        }
        while true {
            let step: Step
            switch state {
            case .lineStart, .lineStartCR, .method, .targetStart, .target, .afterTarget, .version,
                .afterVersion, .requestLineCR:
                step = parseRequestLine(bytes, count, &i, t)
            case .fieldStart, .fieldName, .valueStart, .value, .fieldCR, .headCR:
                step = parseFieldLines(bytes, count, &i, t)
            case .afterHead: step = startBody(at: i)
            case .fixedBody: step = parseFixedBody(count, &i)
            case .chunkLine: step = parseChunkLine(bytes, count, &i, t)
            case .chunkData: step = parseChunkData(count, &i)
            case .chunkDataCR, .chunkDataLF: step = parseChunkDataEnd(bytes, count, &i)
            case .messageEnd: step = .end
            }
            if step != .proceed { return finish(step, i) }
        }
    }

    /// Builds the event for a handler's step and records its effect on the offsets.
    @inline(__always)
    private mutating func finish(_ step: Step, _ i: Int) -> (ParseEvent, Int) {
        switch step {
        case .proceed, .needMore:
            base += i
            return (.needMore, i)
        case .head:
            base += i
            return (.head(head), i)
        case .body:
            base += i
            return (.body(bodyRange), i)
        case .end:
            startNextMessage()
            return (.end, i)
        case .error:
            return (.error(failure ?? ParseError(.badRequestLine)), 0)
            }
    }

    // MARK: Helpers shared by the state handlers.

    /// Records the error `kind` (sticky from now on) and says so. Kept out of line: errors are
    /// the cold path, and inlining them would crowd the hot loops.
    @inline(never)
    mutating func fail(_ kind: ParseError.Kind) -> Step {
        failure = ParseError(kind)
        return .error
    }

    /// The index in this call's input at which the current limit is reached, at most `count`.
    @inline(__always)
    func stopIndex(_ count: Int) -> Int {
        let relative = stop &- base
        return relative < count ? relative : count
    }

    /// Sets the limit for the line starting at offset `start`: content may not reach offset
    /// `start + length` (saturating), nor `sectionEnd` when given.
    @inline(__always)
    mutating func limitLine(
        from start: Int, length: Int, _ kind: ParseError.Kind, sectionEnd: Int = .max,
        _ sectionKind: ParseError.Kind = .headerSectionTooLarge
    ) {
        let (sum, overflow) = start.addingReportingOverflow(max(0, length))
        let lineEnd = overflow ? Int.max : sum
        if sectionEnd < lineEnd {
            stop = sectionEnd
            stopFailure = sectionKind
        } else {
            stop = lineEnd
            stopFailure = kind
        }
    }

    /// `start + length`, saturating at `Int.max`.
    @inline(__always)
    static func offset(_ start: Int, plus length: Int) -> Int {
        let (sum, overflow) = start.addingReportingOverflow(max(0, length))
        return overflow ? Int.max : sum
    }
}
