import HTTPParser

/// What a caller of ``RequestParser`` observes, with spans resolved to text so that outcomes of
/// different splits of the same input can be compared.
enum Outcome: Equatable, CustomStringConvertible {
    /// A head, rendered with every span resolved against the stream.
    case head(HeadSummary)
    /// Body bytes; consecutive body events are merged, since splits cut them differently.
    case body([UInt8])
    case end
    case error(ParseError)

    var description: String {
        switch self {
        case .head(let head): "head(\(head))"
        case .body(let bytes): "body(\(String(decoding: bytes, as: UTF8.self)))"
        case .end: "end"
        case .error(let error): "error(\(error))"
        }
    }
}

/// A head with its spans turned into strings.
struct HeadSummary: Equatable, CustomStringConvertible {
    var requestLine: String
    var method: String
    var knownMethod: KnownMethod
    var target: String
    var version: String?
    var major: Int
    var minor: Int
    var fields: [String]
    var framing: BodyFraming
    var close: Bool
    var keepAlive: Bool
    var expect: ExpectValue
    var headLength: Int

    var description: String {
        "\(requestLine) [\(method)|\(target)|\(version ?? "0.9")] \(fields) \(framing) "
            + "close=\(close) keepAlive=\(keepAlive) \(expect) len=\(headLength)"
    }
}

/// Feeds a byte stream to a parser the way a server does and records the outcomes.
struct ParserDriver {
    var limits = ParserLimits()

    /// Parses `stream` delivered in reads of the given sizes (the rest in one last read).
    /// Checks the protocol invariants on the way: `consumed` never exceeds the input,
    /// `.needMore` consumes everything, and every byte is accounted for.
    func run(_ stream: [UInt8], reads: [Int] = []) -> [Outcome] {
        var parser = RequestParser(limits: limits)
        var outcomes: [Outcome] = []
        var messageStart = 0  // stream offset of the current message's first byte
        var position = 0  // stream offset of the next byte to feed
        var delivered = 0  // bytes "received" so far
        var readSizes = reads.makeIterator()
        var wantsMore = true  // the last event was .needMore; else call again, even with nothing
        while true {
            if wantsMore && position == delivered {
                guard delivered < stream.count else { break }
                delivered = min(stream.count, delivered + (readSizes.next() ?? stream.count))
            }
            let (event, consumed) = stream[position..<delivered].withUnsafeBytes {
                parser.parse($0)
            }
            precondition(consumed >= 0 && consumed <= delivered - position, "consumed out of range")
            let inputStart = position
            position += consumed
            wantsMore = event == .needMore
            switch event {
            case .needMore:
                precondition(position == delivered, "needMore must consume everything")
            case .head(let head):
                outcomes.append(.head(summarize(head, stream, from: messageStart)))
            case .body(let range):
                let bytes = Array(stream[inputStart + range.lowerBound..<inputStart + range.upperBound])
                if case .body(let earlier) = outcomes.last {
                    outcomes[outcomes.count - 1] = .body(earlier + bytes)
                } else {
                    outcomes.append(.body(bytes))
                }
            case .end:
                outcomes.append(.end)
                messageStart = position
            case .error(let error):
                precondition(consumed == 0, "an error consumes nothing")
                outcomes.append(.error(error))
                let again = stream[position..<delivered].withUnsafeBytes { parser.parse($0) }
                precondition(again.event == event && again.consumed == 0, "errors are sticky")
                return outcomes
            }
        }
        return outcomes
    }

    /// Runs `stream` whole, split at every offset, and one byte at a time; returns the whole
    /// run's outcomes and the first split (if any) whose outcomes differ.
    func runEverySplit(_ stream: [UInt8]) -> (whole: [Outcome], mismatch: String?) {
        let whole = run(stream)
        let byteByByte = run(stream, reads: Array(repeating: 1, count: stream.count))
        if byteByByte != whole { return (whole, "byte by byte: \(byteByByte)") }
        for split in 0...stream.count {
            let parts = run(stream, reads: [split])
            if parts != whole { return (whole, "split at \(split): \(parts)") }
        }
        return (whole, nil)
    }

    private func summarize(_ head: RequestHead, _ stream: [UInt8], from start: Int) -> HeadSummary {
        func text(_ range: Range<Int>) -> String {
            String(decoding: stream[start + range.lowerBound..<start + range.upperBound], as: UTF8.self)
        }
        return HeadSummary(
            requestLine: text(head.requestLine), method: text(head.method),
            knownMethod: head.knownMethod, target: text(head.target), version: head.version.map(text),
            major: head.versionMajor, minor: head.versionMinor,
            fields: head.fields.map { "\(text($0.name)): \(text($0.value))" },
            framing: head.framing, close: head.connectionClose,
            keepAlive: head.connectionKeepAlive, expect: head.expect, headLength: head.headLength)
    }
}

extension [Outcome] {
    /// A compact form for tables: `H` head, `B:<text>` body, `E` end, `!<status>` error.
    var brief: String {
        map { outcome in
            switch outcome {
            case .head: "H"
            case .body(let bytes): "B:" + String(decoding: bytes, as: UTF8.self)
            case .end: "E"
            case .error(let error): "!\(error.status)"
            }
        }.joined(separator: " ")
    }
}
