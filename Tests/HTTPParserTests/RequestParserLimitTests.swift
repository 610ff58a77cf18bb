import HTTPParser
import Testing

/// Each limit maps to its status, holds exactly at its boundary, and is enforced at the byte
/// that breaks it rather than at the next line end; feeding a large head one byte at a time
/// costs time linear in its size.
@Suite struct RequestParserLimitTests {
    /// The outcomes of `text` under `limits`, also checked at every split.
    func outcomes(_ text: String, _ limits: ParserLimits) -> [Outcome] {
        let (whole, mismatch) = ParserDriver(limits: limits).runEverySplit(Array(text.utf8))
        #expect(mismatch == nil)
        return whole
    }

    func limits(_ change: (inout ParserLimits) -> Void) -> ParserLimits {
        var limits = ParserLimits()
        change(&limits)
        return limits
    }

    @Test func requestLineLimitIs414AndHoldsAtTheBoundary() {
        let text = "GET / HTTP/1.0\r\n\r\n"  // the line is 14 bytes
        #expect(outcomes(text, limits { $0.maxRequestLineLength = 14 }).brief == "H E")
        #expect(outcomes(text, limits { $0.maxRequestLineLength = 13 }).brief == "!414")
    }

    @Test func requestLineLimitFailsBeforeTheLineEndArrives() {
        let text = "GET /" + String(repeating: "a", count: 100)
        #expect(outcomes(text, limits { $0.maxRequestLineLength = 50 }).brief == "!414")
    }

    @Test func fieldLineLimitIs431AndHoldsAtTheBoundary() {
        let text = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"  // the field line is 7 bytes
        #expect(outcomes(text, limits { $0.maxHeaderLineLength = 7 }).brief == "H E")
        #expect(outcomes(text, limits { $0.maxHeaderLineLength = 6 }).brief == "!431")
        let long = "GET / HTTP/1.1\r\nX: " + String(repeating: "v", count: 200)
        #expect(outcomes(long, limits { $0.maxHeaderLineLength = 100 }).brief == "!431")
    }

    @Test func fieldCountLimitIs431() {
        let text = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n"
        #expect(outcomes(text, limits { $0.maxHeaderCount = 3 }).brief == "H E")
        #expect(outcomes(text, limits { $0.maxHeaderCount = 2 }).brief == "!431")
    }

    @Test func headerSectionLimitIs431AndHoldsAtTheBoundary() {
        let text = "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\r\n"  // 9 + 6 bytes of field lines
        #expect(outcomes(text, limits { $0.maxHeaderSectionSize = 15 }).brief == "H E")
        #expect(outcomes(text, limits { $0.maxHeaderSectionSize = 14 }).brief == "!431")
        #expect(outcomes(text, limits { $0.maxHeaderSectionSize = 10 }).brief == "!431")
    }

    @Test func declaredBodyAboveTheLimitIs413InsteadOfTheHead() {
        let text = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
        #expect(outcomes(text, limits { $0.maxBodySize = 11 }).brief == "H")
        #expect(outcomes(text, limits { $0.maxBodySize = 10 }).brief == "!413")
    }

    @Test func chunkedBodyAboveTheLimitIs413() {
        let text = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n"
        #expect(outcomes(text, limits { $0.maxBodySize = 8 }).brief == "H B:abcdefgh E")
        #expect(outcomes(text, limits { $0.maxBodySize = 7 }).brief == "H B:abcd !413")
    }

    @Test func chunkLineLimitIs400() {
        let text = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "1;ext=val\r\nz\r\n0\r\n\r\n"  // the chunk line is 9 bytes
        #expect(outcomes(text, limits { $0.maxChunkLineLength = 9 }).brief == "H B:z E")
        #expect(outcomes(text, limits { $0.maxChunkLineLength = 8 }).brief == "H !400")
    }

    @Test func trailerSectionLimitIs431() {
        let text = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "0\r\nT: 1\r\nU: 2\r\n\r\n"  // 12 bytes of trailer lines
        #expect(outcomes(text, limits { $0.maxTrailerSectionSize = 12 }).brief == "H E")
        #expect(outcomes(text, limits { $0.maxTrailerSectionSize = 11 }).brief == "H !431")
    }

    @Test func tooManyEmptyLinesBeforeTheRequestLineIs400() {
        let text = String(repeating: "\r\n", count: 40) + "GET / HTTP/1.0\r\n\r\n"
        #expect(outcomes(text, limits { $0.maxRequestLineLength = 64 }).brief == "!400")
    }

    /// A head whose field section is `kilobytes` KiB: one long value, then many short fields.
    func bigHead(kilobytes: Int) -> [UInt8] {
        var text = "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + String(repeating: "v", count: kilobytes * 512)
            + "\r\n"
        while text.utf8.count < kilobytes * 1024 { text += "X-Field: some value here\r\n" }
        return Array((text + "\r\n").utf8)
    }

    /// Never rescanning is a property of the protocol, checked here without a clock: fed a
    /// 64 KiB head one byte at a time, every call consumes exactly the byte it is given, so no
    /// byte is ever handed back to be seen again, and the head comes out as when fed whole.
    /// (How the cost compares is measured by Scripts/bench-parser, not asserted by a test.)
    @Test func aHeadFedByteByByteIsConsumedOnceAndParsesAsWhole() {
        var limits = ParserLimits()
        limits.maxHeaderCount = 10_000
        limits.maxHeaderSectionSize = 1 << 20
        let head = bigHead(kilobytes: 64)
        var whole = RequestParser(limits: limits)
        let wholeEvent = head.withUnsafeBytes { whole.parse($0).event }
        var parser = RequestParser(limits: limits)
        var calls = 0
        var byteEvent: ParseEvent?
        head.withUnsafeBytes { all in
            for position in 0..<all.count {
                let (event, consumed) = parser.parse(UnsafeRawBufferPointer(rebasing: all[position..<position + 1]))
                calls += 1
                guard consumed == 1 else {
                    Issue.record("call \(calls) consumed \(consumed) of 1 byte")
                    return
                }
                if case .needMore = event { continue }
                byteEvent = event
                break
            }
        }
        #expect(calls == head.count)
        #expect(byteEvent == wholeEvent)
        if case .head(let parsed) = wholeEvent {
            #expect(parsed.headLength == head.count)
        } else {
            Issue.record("the whole head did not parse: \(wholeEvent)")
        }
    }
}
