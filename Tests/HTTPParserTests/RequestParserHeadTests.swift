@testable import HTTPParser
import Testing

/// What the head reports: spans, version, framing and connection flags, and the offsets a
/// server relies on when it reads a request across several reads or pipelines several.
@Suite struct RequestParserHeadTests {
    /// Parses `text` whole and returns the first head.
    func head(_ text: String, limits: ParserLimits = ParserLimits()) -> HeadSummary? {
        let outcomes = ParserDriver(limits: limits).run(Array(text.utf8))
        for case .head(let head) in outcomes { return head }
        return nil
    }

    @Test func requestLinePartsAreSpansWithoutTheLineEnding() throws {
        let parsed = try #require(head("\r\nGET /a?b=c HTTP/1.1 \r\nHost: x\r\n\r\n"))
        #expect(parsed.requestLine == "GET /a?b=c HTTP/1.1 ")
        #expect(parsed.method == "GET")
        #expect(parsed.target == "/a?b=c")
        #expect(parsed.version == "HTTP/1.1")
        #expect(parsed.major == 1 && parsed.minor == 1)
        #expect(parsed.headLength == 2 + 22 + 9 + 2)
    }

    @Test func offsetsCountTheSkippedEmptyLines() throws {
        var parser = RequestParser()
        let bytes = Array("\r\n\nGET / HTTP/1.0\r\n\r\n".utf8)
        let (event, consumed) = bytes.withUnsafeBytes { parser.parse($0) }
        guard case .head(let head) = event else { Issue.record("\(event)"); return }
        #expect(head.requestLine == 3..<17)
        #expect(head.method == 3..<6)
        #expect(consumed == bytes.count && head.headLength == bytes.count)
    }

    @Test func fieldValuesAreTrimmedAndOrderCaseAndRepeatsKept() throws {
        let parsed = try #require(
            head("GET / HTTP/1.1\r\nHost: x\r\nX-A:  one two \t\r\nx-a:\t2\r\nEmpty:\r\nSp:   \r\n\r\n"))
        #expect(parsed.fields == ["Host: x", "X-A: one two", "x-a: 2", "Empty: ", "Sp: "])
    }

    @Test func http09RequestHasNoVersionNoFieldsAndNoBody() throws {
        let parsed = try #require(head("GET /index.html\r\n"))
        #expect(parsed.version == nil && parsed.major == 0 && parsed.minor == 9)
        #expect(parsed.fields.isEmpty && parsed.framing == .none)
        var parser = RequestParser()
        let event = Array("GET /x\n".utf8).withUnsafeBytes { parser.parse($0).event }
        guard case .head(let raw) = event else { Issue.record("\(event)"); return }
        #expect(raw.isHTTP09)
    }

    @Test func framingFollowsContentLengthAndTransferEncoding() {
        #expect(head("GET / HTTP/1.1\r\nHost: x\r\n\r\n")?.framing == BodyFraming.none)
        #expect(head("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n")?.framing
            == .contentLength(12))
        #expect(head("PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")?.framing
            == .chunked)
    }

    @Test func connectionTokensAreFoundInListsAcrossRepeatedFields() throws {
        let parsed = try #require(
            head("GET / HTTP/1.0\r\nConnection: Upgrade, Keep-Alive\r\nConnection: x,CLOSE \r\n\r\n"))
        #expect(parsed.close && parsed.keepAlive)
        let neither = try #require(head("GET / HTTP/1.0\r\nConnection: closed, keep-alive2\r\n\r\n"))
        #expect(!neither.close && !neither.keepAlive)
    }

    @Test func expectIsContinueOnlyForExactly100Continue() {
        #expect(head("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n\r\n")?.expect == .continue100)
        #expect(head("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, x\r\n\r\n")?.expect == .other)
        #expect(head("GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n")?.expect == .other)
        #expect(head("GET / HTTP/1.1\r\nHost: x\r\n\r\n")?.expect == ExpectValue.none)
    }

    @Test func pipelinedRequestsReportConsumedCountsThatAddUp() {
        let first = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        let second = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
        let third = "PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n"
        let bytes = Array((first + second + third).utf8)
        var parser = RequestParser()
        var position = 0
        var log: [String] = []
        while true {
            let (event, consumed) = bytes[position...].withUnsafeBytes { parser.parse($0) }
            switch event {
            case .head(let head): log.append("head \(consumed) \(head.headLength)")
            case .body(let range): log.append("body \(range) \(consumed)")
            case .end: log.append("end \(consumed)")
            case .needMore: log.append("more \(consumed)")
            case .error(let error): log.append("error \(error)")
            }
            position += consumed
            if event == .needMore || log.count > 20 { break }
        }
        #expect(log == [
            "head 48 48", "body 0..<3 3", "end 0",
            "head 28 28", "end 0",
            // The chunk-size line is consumed with the data it announces; `end` takes the
            // CRLF after the data, the last chunk and the empty trailer section.
            "head 56 56", "body 3..<4 4", "end 7",
            "more 0",
        ])
        #expect(position == bytes.count)
    }

    @Test func headsKeptByTheCallerSurviveLaterRequestsAndHaveValueSemantics() {
        var parser = RequestParser()
        let bytes = Array(
            ("GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
                + "GET /second HTTP/1.1\r\nHost: bb\r\nX: y\r\n\r\n").utf8)
        var heads: [RequestHead] = []
        var position = 0
        while true {
            let (event, consumed) = bytes[position...].withUnsafeBytes { parser.parse($0) }
            position += consumed
            if case .head(let head) = event { heads.append(head) }
            if event == .needMore { break }
        }
        #expect(heads.count == 2)
        #expect(heads[0].target == 4..<10 && heads[0].fields.count == 1)
        #expect(heads[1].target == 4..<11 && heads[1].fields.count == 2)
        var copy = heads[0]
        copy.headLength = 99
        copy.fields.append(HeaderField(name: 0..<1, value: 1..<2))
        #expect(heads[0].headLength == 32 && heads[0].fields.count == 1)
        #expect(copy != heads[0])
    }

    @Test func bodylessMessageEndsOnAnEmptyCall() {
        var parser = RequestParser()
        let bytes = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = bytes.withUnsafeBytes { parser.parse($0) }
        let (event, consumed) = parser.parse(UnsafeRawBufferPointer(start: nil, count: 0))
        #expect(event == .end && consumed == 0)
    }

    @Test func errorsAreStickyUntilReset() {
        var parser = RequestParser()
        let bad = Array("GET / HTTP/3.0\r\n".utf8)
        let first = bad.withUnsafeBytes { parser.parse($0) }
        #expect(first.event == .error(ParseError(.versionNotSupported)) && first.consumed == 0)
        let good = Array("GET / HTTP/1.0\r\n\r\n".utf8)
        #expect(good.withUnsafeBytes { parser.parse($0) }.event == first.event)
        parser.reset()
        #expect(good.withUnsafeBytes { parser.parse($0) }.consumed == good.count)
    }

    static let smuggling: [(String, ParseError.Kind)] = [
        ("Content-Length: 1\r\nTransfer-Encoding: chunked", .contentLengthWithTransferEncoding),
        ("Content-Length: 1\r\nContent-Length: 2", .conflictingContentLength),
        ("Content-Length: 1, 2", .badContentLength),
        ("Content-Length: 1 2", .badContentLength),
        ("Content-Length: 99999999999999999999", .badContentLength),
        ("Transfer-Encoding: chunked, identity", .badTransferEncoding),
        ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", .badTransferEncoding),
        ("Transfer-Encoding: identity", .unsupportedTransferCoding),
        ("X: a\r\n b", .obsoleteLineFolding),
        ("Transfer-Encoding : chunked", .whitespaceBeforeColon),
        ("X: a\0b", .badFieldValue),
        ("X: a\rb", .bareCR),
        ("Host: y", .multipleHost),
    ]

    @Test(arguments: smuggling)
    func smugglingAttemptIsRejectedWithItsReason(_ fields: String, _ kind: ParseError.Kind) {
        let text = "POST / HTTP/1.1\r\nHost: x\r\n\(fields)\r\n\r\n"
        let (whole, mismatch) = ParserDriver().runEverySplit(Array(text.utf8))
        #expect(whole == [.error(ParseError(kind))])
        #expect(mismatch == nil)
    }

    @Test func chunkLineSmugglingIsRejectedWithItsReason() {
        let head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        let cases: [(String, ParseError.Kind)] = [
            ("5\nhello\r\n", .badChunkLineEnd),
            ("5\r\nhello\n", .badChunkDataEnd),
            ("10000000000000000\r\n", .chunkSizeOverflow),
            ("0x5\r\n", .badChunkSize),
        ]
        for (body, kind) in cases {
            let outcomes = ParserDriver().run(Array((head + body).utf8))
            #expect(outcomes.last == .error(ParseError(kind)), "\(body.debugDescription)")
        }
    }
}
