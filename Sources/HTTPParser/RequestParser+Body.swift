/// Where in a chunk-size line (RFC 9112 §7.1) the next byte lands:
/// `chunk-size *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] ) CRLF`.
enum ChunkPhase: UInt8, Sendable {
    case size, spaceAfterSize
    case extensionNameStart, extensionName, spaceAfterName
    case extensionValueStart, extensionToken, quotedString, quotedPair, afterQuotedString
    case spaceAfterValue, lineFeed
}

/// The body: `Content-Length` bytes passed through, or a chunked body decoded in place.
extension RequestParser {
    /// Chooses the body states for the head just handed out.
    @inline(__always)
    mutating func startBody(at i: Int) -> Step {
        switch head.framing {
        case .none, .contentLength(0):
            return .end
        case .contentLength(let length):
            remaining = length
            state = .fixedBody
        case .chunked:
            beginChunkLine(at: base + i)
        }
        return .proceed
    }

    /// Passes through as much of the declared length as this input holds.
    @inline(__always)
    mutating func parseFixedBody(_ n: Int, _ i: inout Int) -> Step {
        guard i < n else { return .needMore }
        let take = min(remaining, n - i)
        let range = i..<i + take
        i += take
        remaining -= take
        if remaining == 0 { state = .messageEnd }
        bodyRange = range
        return .body
    }

    /// Passes through as much of the current chunk's data as this input holds.
    @inline(__always)
    mutating func parseChunkData(_ n: Int, _ i: inout Int) -> Step {
        guard i < n else { return .needMore }
        let take = min(remaining, n - i)
        let range = i..<i + take
        i += take
        remaining -= take
        if remaining == 0 { state = .chunkDataCR }
        bodyRange = range
        return .body
    }

    /// The CRLF that must follow chunk data exactly; anything else is a smuggling attempt.
    @inline(__always)
    mutating func parseChunkDataEnd(_ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int)
        -> Step
    {
        while i < n {
            let expected = state == .chunkDataCR ? ASCII.cr : ASCII.lf
            guard p[i] == expected else { return fail(.badChunkDataEnd) }
            i += 1
            if state == .chunkDataLF {
                beginChunkLine(at: base + i)
                return .proceed
            }
            state = .chunkDataLF
        }
        return .needMore
    }

    /// Prepares for a chunk-size line starting at `offset`.
    private mutating func beginChunkLine(at offset: Int) {
        lineStart = offset
        chunkPhase = .size
        chunkSize = 0
        chunkDigits = 0
        state = .chunkLine
    }

    /// The chunk-size line, one byte at a time (it is short); it must end with CRLF exactly.
    @inline(__always)
    mutating func parseChunkLine(
        _ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int, _ t: UnsafePointer<UInt8>
    ) -> Step {
        while i < n {
            let byte = p[i]
            if chunkPhase == .lineFeed {
                guard byte == ASCII.lf else { return fail(.badChunkLineEnd) }
                i += 1
                return endChunkLine(at: base + i)
            }
            if byte != ASCII.cr && base + i - lineStart >= limits.maxChunkLineLength {
                return fail(.chunkLineTooLong)
            }
            if let failure = stepChunkLine(byte, t[Int(byte)]) { return fail(failure) }
            i += 1
        }
        return .needMore
    }

    /// Advances the chunk-line phase over one byte that is not the final LF.
    private mutating func stepChunkLine(_ byte: UInt8, _ classes: UInt8) -> ParseError.Kind? {
        let isSpace = classes & ByteClass.whitespace != 0
        let isToken = classes & ByteClass.token != 0
        let badByte: ParseError.Kind = byte == ASCII.lf ? .badChunkLineEnd : .badChunkExtension
        switch chunkPhase {
        case .size:
            if let digit = ASCII.hexDigit(byte) {
                guard chunkSize <= Int.max >> 4 else { return .chunkSizeOverflow }
                chunkSize = chunkSize << 4 | digit
                chunkDigits += 1
                return nil
            }
            guard chunkDigits > 0 else { return byte == ASCII.lf ? .badChunkLineEnd : .badChunkSize }
            if chunkSize > limits.maxBodySize - bodyTotal { return .bodyTooLarge }
            if byte == ASCII.cr {
                chunkPhase = .lineFeed
            } else if byte == ASCII.semicolon {
                chunkPhase = .extensionNameStart
            } else if isSpace {
                chunkPhase = .spaceAfterSize
            } else {
                return byte == ASCII.lf ? .badChunkLineEnd : .badChunkSize
            }
        case .spaceAfterSize, .spaceAfterName, .spaceAfterValue:
            if byte == ASCII.semicolon {
                chunkPhase = .extensionNameStart
            } else if byte == ASCII.equals && chunkPhase == .spaceAfterName {
                chunkPhase = .extensionValueStart
            } else if !isSpace {
                return chunkPhase == .spaceAfterSize && byte != ASCII.lf ? .badChunkSize : badByte
            }
        case .extensionNameStart, .extensionValueStart:
            if isToken {
                chunkPhase = chunkPhase == .extensionNameStart ? .extensionName : .extensionToken
            } else if byte == ASCII.quote && chunkPhase == .extensionValueStart {
                chunkPhase = .quotedString
            } else if !isSpace {
                return badByte
            }
        case .extensionName, .extensionToken, .afterQuotedString:
            if isToken && chunkPhase != .afterQuotedString { return nil }
            if byte == ASCII.cr {
                chunkPhase = .lineFeed
            } else if byte == ASCII.semicolon {
                chunkPhase = .extensionNameStart
            } else if byte == ASCII.equals && chunkPhase == .extensionName {
                chunkPhase = .extensionValueStart
            } else if isSpace {
                chunkPhase = chunkPhase == .extensionName ? .spaceAfterName : .spaceAfterValue
            } else {
                return badByte
            }
        case .quotedString:
            if byte == ASCII.quote {
                chunkPhase = .afterQuotedString
            } else if byte == ASCII.backslash {
                chunkPhase = .quotedPair
            } else if classes & ByteClass.quotedText == 0 {
                return badByte
            }
        case .quotedPair:
            guard classes & ByteClass.fieldValue != 0 else { return badByte }
            chunkPhase = .quotedString
        case .lineFeed:
            return .badChunkLineEnd
        }
        return nil
    }

    /// Starts the chunk's data, or after the last chunk (size 0) the trailer section.
    private mutating func endChunkLine(at offset: Int) -> Step {
        if chunkSize == 0 {
            inTrailers = true
            sectionStart = offset
            sectionLimit = limits.maxTrailerSectionSize
            fieldCount = 0
            state = .fieldStart
            return .proceed
        }
        bodyTotal += chunkSize
        remaining = chunkSize
        state = .chunkData
        return .proceed
    }
}
