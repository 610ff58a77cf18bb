import Testing
@testable import BaseHTTPServer

/// One part as the tests reassemble it from the parser's events.
struct ParsedPart: Equatable, Sendable, CustomStringConvertible {
    var name: String?
    var filename: String?
    var contentType: String?
    var content: [UInt8] = []
    /// Whether `partEnd` was reported.
    var isComplete = true

    init(name: String?, filename: String? = nil, contentType: String? = nil, _ content: String = "",
         isComplete: Bool = true) {
        self.name = name
        self.filename = filename
        self.contentType = contentType
        self.content = Array(content.utf8)
        self.isComplete = isComplete
    }

    var description: String {
        "(\(name ?? "nil"), \(filename ?? "nil"), \(contentType ?? "nil"), \(String(decoding: content, as: UTF8.self).debugDescription)\(isComplete ? "" : ", incomplete"))"
    }
}

/// Everything a body parsed into.
struct MultipartOutcome: Equatable, Sendable {
    var parts: [ParsedPart] = []
    var isFinished = false
    var failure: MultipartParser.Failure?
}

/// Feeds `body` to a parser in pieces that end at each of `cuts` and at the end of the body, and
/// reassembles the events, checking on the way that they come in a valid order.
/// - Returns: The outcome and how many bytes came as `heldData`.
func parseMultipart(
    _ body: [UInt8], boundary: String, cuts: [Int] = [], maxHeaderSectionSize: Int = 16 * 1024
) -> (outcome: MultipartOutcome, heldBytes: Int) {
    var parser = MultipartParser(boundary: Array(boundary.utf8), maxHeaderSectionSize: maxHeaderSectionSize)
    var outcome = MultipartOutcome()
    var heldBytes = 0
    var pieceStart = 0
    for pieceEnd in cuts + [body.count] {
        let piece = Array(body[pieceStart..<pieceEnd])
        pieceStart = pieceEnd
        do {
            try piece.withUnsafeBytes { input in
                try parser.feed(input) { event in
                    #expect(!outcome.isFinished, "no event after end")
                    let inPart = outcome.parts.last.map { !$0.isComplete } ?? false
                    switch event {
                    case .partBegin(let name, let filename, let contentType):
                        #expect(!inPart)
                        outcome.parts.append(ParsedPart(name: name, filename: filename, contentType: contentType,
                                                        isComplete: false))
                    case .data(let range):
                        #expect(inPart && !range.isEmpty && range.upperBound <= input.count)
                        if inPart { outcome.parts[outcome.parts.count - 1].content += input[range] }
                    case .heldData(let bytes):
                        #expect(inPart && !bytes.isEmpty && bytes.count <= boundary.utf8.count + 4)
                        heldBytes += bytes.count
                        if inPart { outcome.parts[outcome.parts.count - 1].content += bytes }
                    case .partEnd:
                        #expect(inPart)
                        if inPart { outcome.parts[outcome.parts.count - 1].isComplete = true }
                    case .end:
                        #expect(!inPart)
                        outcome.isFinished = true
                    }
                }
            }
        } catch let failure as MultipartParser.Failure {
            outcome.failure = failure
            break
        } catch {
            Issue.record(error)
        }
    }
    #expect(parser.isFinished == outcome.isFinished)
    return (outcome, heldBytes)
}

/// A body of the table, with what it must parse into however it is split.
struct MultipartCase: Sendable, CustomTestStringConvertible {
    var label: String
    var body: String
    var parts: [ParsedPart]
    /// Whether the close delimiter is seen; by default, when the body is well formed.
    var isFinished: Bool?
    var failure: MultipartParser.Failure?
    var boundary = "AaB03x"
    var maxHeaderSectionSize = 16 * 1024

    var testDescription: String { label }
    var expected: MultipartOutcome {
        MultipartOutcome(parts: parts, isFinished: isFinished ?? (failure == nil), failure: failure)
    }
}

private let disposition = "Content-Disposition: form-data; name="

private let wellFormedCases: [MultipartCase] = [
    MultipartCase(
        label: "the RFC 7578 example",
        body: "--AaB03x\r\n\(disposition)\"field1\"\r\n\r\nJoe Blow\r\n--AaB03x\r\n"
            + "\(disposition)\"pics\"; filename=\"file1.txt\"\r\nContent-Type: text/plain\r\n\r\n"
            + "... contents of file1.txt ...\r\n--AaB03x--\r\n",
        parts: [ParsedPart(name: "field1", "Joe Blow"),
                ParsedPart(name: "pics", filename: "file1.txt", contentType: "text/plain",
                           "... contents of file1.txt ...")]
    ),
    MultipartCase(
        label: "content with line breaks, dashes and delimiter prefixes",
        body: "--AaB03x\r\n\(disposition)\"a\"\r\n\r\n"
            + "l1\r\n--\r\n\r\n--AaB03\r\n--AaB0\r\r\n--A\n--AaB03x\r--AaB03x\r\n-AaB03x x--AaB03x AaB03x\r\n"
            + "\r\n--AaB03x--\r\n",
        parts: [ParsedPart(name: "a",
                           "l1\r\n--\r\n\r\n--AaB03\r\n--AaB0\r\r\n--A\n--AaB03x\r--AaB03x\r\n-AaB03x x--AaB03x AaB03x\r\n")]
    ),
    MultipartCase(
        label: "content that ends in a CR, a delimiter prefix or dashes",
        body: "--AaB03x\r\n\(disposition)\"cr\"\r\n\r\nabc\r\r\n--AaB03x\r\n"
            + "\(disposition)\"prefix\"\r\n\r\n\r\n--AaB03\r\n--AaB03x\r\n"
            + "\(disposition)\"dashes\"\r\n\r\n--\r\n--AaB03x\r\n"
            + "\(disposition)\"crlfcrlf\"\r\n\r\n\r\n\r\n\r\n--AaB03x--",
        parts: [ParsedPart(name: "cr", "abc\r"), ParsedPart(name: "prefix", "\r\n--AaB03"),
                ParsedPart(name: "dashes", "--"), ParsedPart(name: "crlfcrlf", "\r\n\r\n")]
    ),
    MultipartCase(
        label: "content that starts with a delimiter prefix",
        body: "--AaB03x\r\n\(disposition)\"a\"\r\n\r\n--AaB03 not it\r\n--AaB03x\r\n"
            + "\(disposition)\"b\"\r\n\r\n-\r\n--AaB03x\r\n\(disposition)\"c\"\r\n\r\nAaB03x\r\n--AaB03x--",
        parts: [ParsedPart(name: "a", "--AaB03 not it"), ParsedPart(name: "b", "-"), ParsedPart(name: "c", "AaB03x")]
    ),
    MultipartCase(
        label: "empty parts",
        body: "--AaB03x\r\n\(disposition)\"e\"\r\n\r\n\r\n--AaB03x\r\n"
            + "\(disposition)\"f\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n--AaB03x--",
        parts: [ParsedPart(name: "e"), ParsedPart(name: "f", filename: "", contentType: "application/octet-stream")]
    ),
    MultipartCase(
        label: "a delimiter right after the header section, without its own CRLF",
        body: "--AaB03x\r\n\(disposition)\"a\"\r\n\r\n--AaB03x\r\n\(disposition)\"b\"\r\n\r\nB\r\n--AaB03x--",
        parts: [ParsedPart(name: "a"), ParsedPart(name: "b", "B")]
    ),
    MultipartCase(
        label: "a part without headers",
        body: "--AaB03x\r\n\r\nno headers\r\n--AaB03x--",
        parts: [ParsedPart(name: nil, "no headers")]
    ),
    MultipartCase(
        label: "a body of only the close delimiter",
        body: "--AaB03x--",
        parts: []
    ),
    MultipartCase(
        label: "preamble and epilogue",
        body: "This is the preamble. --AaB03x\r\n-AaB03x\r\n--AaB0\r\n\r\n--AaB03x\r\n\(disposition)\"a\"\r\n\r\n1"
            + "\r\n--AaB03x--\r\nThis is the epilogue.\r\n--AaB03x\r\n\(disposition)\"b\"\r\n\r\n2\r\n--AaB03x--\r\n",
        parts: [ParsedPart(name: "a", "1")]
    ),
    MultipartCase(
        label: "a preamble that starts like the first boundary",
        body: "--AaB03 \r\n--AaB03x\r\n\(disposition)\"a\"\r\n\r\n1\r\n--AaB03x--",
        parts: [ParsedPart(name: "a", "1")]
    ),
    MultipartCase(
        label: "transport padding after boundaries",
        body: "--AaB03x \t \r\n\(disposition)\"a\"\r\n\r\n1\r\n--AaB03x\t\r\n\(disposition)\"b\"\r\n\r\n2"
            + "\r\n--AaB03x-- \t\r\nepilogue",
        parts: [ParsedPart(name: "a", "1"), ParsedPart(name: "b", "2")]
    ),
    MultipartCase(
        label: "LF-only line breaks in headers and after boundaries",
        body: "--AaB03x\n\(disposition)\"a\"\nContent-Type: text/plain\n\nvalue\r\n--AaB03x \n"
            + "\(disposition)\"b\"\r\n\nB\r\n--AaB03x--",
        parts: [ParsedPart(name: "a", contentType: "text/plain", "value"), ParsedPart(name: "b", "B")]
    ),
    MultipartCase(
        label: "Content-Disposition parameters",
        body: "--AaB03x\r\n\(disposition)\"a\\\"b\\\\c\"; filename=\"C:\\Users\\me\\x.txt\"\r\n\r\n\r\n--AaB03x\r\n"
            + "Content-Disposition: form-data; name=plain ; filename = \"sp aced;semi\"\r\n\r\n\r\n--AaB03x\r\n"
            + "CONTENT-DISPOSITION: FORM-DATA; NAME=\"up\"; FileName=\"F.TXT\"\r\ncontent-type:text/html;charset=utf-8\r\n\r\n"
            + "\r\n--AaB03x\r\n"
            + "\(disposition)\"star\"; filename*=UTF-8''%C3%A9.txt; ignored; name=\"second\"\r\n\r\n\r\n--AaB03x\r\n"
            + "\(disposition)\"naïve ☃\"; filename=\"naïve ☃.txt\"\r\n\r\n\r\n--AaB03x\r\n"
            + "X-Other: 1\r\nContent-Disposition: form-data;\r\n \tname=\"folded\"\r\n\r\n\r\n--AaB03x\r\n"
            + "Content-Disposition: attachment\r\nContent-Type:   \r\n\r\n\r\n--AaB03x--",
        parts: [ParsedPart(name: "a\"b\\c", filename: "C:\\Users\\me\\x.txt"),
                ParsedPart(name: "plain", filename: "sp aced;semi"),
                ParsedPart(name: "up", filename: "F.TXT", contentType: "text/html;charset=utf-8"),
                ParsedPart(name: "star"),
                ParsedPart(name: "naïve ☃", filename: "naïve ☃.txt"),
                ParsedPart(name: "folded"),
                ParsedPart(name: nil, contentType: "")]
    ),
    MultipartCase(
        label: "a boundary that is mostly dashes",
        body: "-----\r\n\(disposition)\"a\"\r\n\r\n---\r\n----\r\n-----\r\n\(disposition)\"b\"\r\n\r\n-\r\n-------",
        parts: [ParsedPart(name: "a", "---\r\n----"), ParsedPart(name: "b", "-")],
        boundary: "---"
    ),
    MultipartCase(
        label: "a missing close delimiter in content",
        body: "--AaB03x\r\n\(disposition)\"a\"\r\n\r\nunfinished\r\n--AaB0",
        parts: [ParsedPart(name: "a", "unfinished", isComplete: false)],
        isFinished: false
    ),
    MultipartCase(
        label: "a missing close delimiter after a boundary",
        body: "--AaB03x\r\n\(disposition)\"a\"\r\n\r\nA\r\n--AaB03x-",
        parts: [ParsedPart(name: "a", "A")],
        isFinished: false
    ),
    MultipartCase(
        label: "a body that ends in a header section",
        body: "--AaB03x\r\n\(disposition)\"a\"\r\n",
        parts: [],
        isFinished: false
    ),
    MultipartCase(
        label: "a body without any delimiter",
        body: "just text\r\n--AaB03",
        parts: [],
        isFinished: false
    ),
    MultipartCase(
        label: "a header section exactly at the limit",
        body: "--AaB03x\r\nX: 0123456789\r\n\(disposition)\"a\"\r\n\r\n1\r\n--AaB03x--",
        parts: [ParsedPart(name: "a", "1")],
        maxHeaderSectionSize: 59
    ),
]

private let malformedCases: [MultipartCase] = [
    MultipartCase(
        label: "a header section one byte over the limit",
        body: "--AaB03x\r\nX: 01234567890\r\n\(disposition)\"a\"\r\n\r\n1\r\n--AaB03x--",
        parts: [], failure: .headerTooLarge, maxHeaderSectionSize: 59
    ),
    MultipartCase(
        label: "a header line without a colon",
        body: "--AaB03x\r\nno colon here\r\n\r\n1\r\n--AaB03x--", parts: [], failure: .malformed("")
    ),
    MultipartCase(
        label: "a header line with an empty name",
        body: "--AaB03x\r\n: empty\r\n\r\n1\r\n--AaB03x--", parts: [], failure: .malformed("")
    ),
    MultipartCase(
        label: "a header line with a space before its colon",
        body: "--AaB03x\r\nContent-Type : text/plain\r\n\r\n1\r\n--AaB03x--", parts: [], failure: .malformed("")
    ),
    MultipartCase(
        label: "a header section that starts with a continuation line",
        body: "--AaB03x\r\n name=\"a\"\r\n\r\n1\r\n--AaB03x--", parts: [], failure: .malformed("")
    ),
    MultipartCase(
        label: "a header line with a bare CR",
        body: "--AaB03x\r\nX: a\rb\r\n\r\n1\r\n--AaB03x--", parts: [], failure: .malformed("")
    ),
    MultipartCase(
        label: "a boundary followed by other text",
        body: "--AaB03xjunk\r\n\r\n1\r\n--AaB03x--", parts: [], failure: .malformed("")
    ),
    MultipartCase(
        label: "a boundary followed by one dash",
        body: "--AaB03x-x", parts: [], failure: .malformed("")
    ),
    MultipartCase(
        label: "a boundary followed by padding and text",
        body: "--AaB03x \tx\r\n", parts: [], failure: .malformed("")
    ),
    MultipartCase(
        label: "a boundary followed by padding and dashes",
        body: "--AaB03x --\r\n", parts: [], failure: .malformed("")
    ),
    MultipartCase(
        label: "a boundary line ending in a bare CR",
        body: "--AaB03x\rX: 1\r\n\r\n", parts: [], failure: .malformed("")
    ),
    MultipartCase(
        label: "a delimiter inside content",
        body: "--AaB03x\r\n\(disposition)\"a\"\r\n\r\nx\r\n--AaB03xy\r\n--AaB03x--",
        parts: [ParsedPart(name: "a", "x")], failure: .malformed("")
    ),
]

/// Fails with its message blanked, so table rows need not spell messages out.
private func withoutMessage(_ outcome: MultipartOutcome) -> MultipartOutcome {
    var outcome = outcome
    if case .malformed = outcome.failure { outcome.failure = .malformed("") }
    return outcome
}

@Suite struct MultipartParserTests {
    @Test(arguments: wellFormedCases + malformedCases)
    func bodySplitAtEveryOffsetParsesIdentically(_ row: MultipartCase) {
        let body = Array(row.body.utf8)
        let parse = { (cuts: [Int]) in
            withoutMessage(parseMultipart(body, boundary: row.boundary, cuts: cuts,
                                          maxHeaderSectionSize: row.maxHeaderSectionSize).outcome)
        }
        let whole = parse([])
        #expect(whole == row.expected)
        #expect(parse(Array(1..<Swift.max(body.count, 1))) == whole, "one byte at a time")
        for cut in 0...body.count {
            #expect(parse([cut]) == whole, "split at \(cut)")
        }
    }

    @Test(arguments: wellFormedCases.filter { $0.body.utf8.count < 200 })
    func bodySplitAtEveryPairOfOffsetsParsesIdentically(_ row: MultipartCase) {
        let body = Array(row.body.utf8)
        let whole = parseMultipart(body, boundary: row.boundary).outcome
        for first in 0...body.count {
            for second in first...body.count {
                let outcome = parseMultipart(body, boundary: row.boundary, cuts: [first, second]).outcome
                #expect(outcome == whole, "split at \(first) and \(second)")
            }
        }
    }

    /// Captured from `curl -F 'a=1' -F 'note=hello world' -F 'f=@notes.txt'
    /// -F 'g=@notes.txt;type=text/x-notes;filename=weird name.txt'` (curl 7.88.1), where notes.txt
    /// is `line one\r\nline two\n--not a boundary\r\n--\r\n`.
    static let curlBody = """
        --------------------------c7fa5600e5139bcd\r
        Content-Disposition: form-data; name="a"\r
        \r
        1\r
        --------------------------c7fa5600e5139bcd\r
        Content-Disposition: form-data; name="note"\r
        \r
        hello world\r
        --------------------------c7fa5600e5139bcd\r
        Content-Disposition: form-data; name="f"; filename="notes.txt"\r
        Content-Type: text/plain\r
        \r
        line one\r
        line two
        --not a boundary\r
        --\r
        \r
        --------------------------c7fa5600e5139bcd\r
        Content-Disposition: form-data; name="g"; filename="weird name.txt"\r
        Content-Type: text/x-notes\r
        \r
        line one\r
        line two
        --not a boundary\r
        --\r
        \r
        --------------------------c7fa5600e5139bcd--\r

        """

    @Test func bodyFromCurlParses() throws {
        let body = Array(Self.curlBody.utf8)
        #expect(body.count == 606)
        let contentType = "multipart/form-data; boundary=------------------------c7fa5600e5139bcd"
        let boundary = try #require(multipartBoundary(contentType: contentType))
        let notes = "line one\r\nline two\n--not a boundary\r\n--\r\n"
        let expected = MultipartOutcome(parts: [
            ParsedPart(name: "a", "1"),
            ParsedPart(name: "note", "hello world"),
            ParsedPart(name: "f", filename: "notes.txt", contentType: "text/plain", notes),
            ParsedPart(name: "g", filename: "weird name.txt", contentType: "text/x-notes", notes),
        ], isFinished: true)
        let (whole, heldBytes) = parseMultipart(body, boundary: String(decoding: boundary, as: UTF8.self))
        #expect(whole == expected)
        #expect(heldBytes == 0, "a body fed whole is reported as ranges only")
        for cut in 0...body.count {
            #expect(parseMultipart(body, boundary: String(decoding: boundary, as: UTF8.self), cuts: [cut]).outcome
                == expected, "split at \(cut)")
        }
    }

    @Test func randomBodiesParseIntoWhatTheyEncodeHoweverTheyAreSplit() {
        var random = SplitMix64(seed: 0x6D75_6C74_6970_6172)
        let boundaries = ["AaB03x", "-", "x--", "----WebKitFormBoundary7MA4YWxkTrZu0gW"]
        var bodiesChecked = 0
        while bodiesChecked < 300 {
            let boundary = boundaries.randomElement(using: &random)!
            let delimiter = Array("\r\n--\(boundary)".utf8)
            let alphabet = [[13], [10], [13, 10], [45], [45, 45], Array(boundary.utf8), Array(boundary.utf8.prefix(2)),
                            [65], [120], [32], [0], [255]] as [[UInt8]]
            func randomBytes(maxPieces: Int) -> [UInt8] {
                (0..<Int.random(in: 0...maxPieces, using: &random))
                    .flatMap { _ in alphabet.randomElement(using: &random)! }
            }
            func isFree(_ bytes: [UInt8]) -> Bool { !contains([13, 10] + bytes, delimiter) }

            let preamble = randomBytes(maxPieces: 4)
            var body = preamble.isEmpty ? [] : preamble + [13, 10]
            var expected = MultipartOutcome(isFinished: Bool.random(using: &random))
            for index in 0..<Int.random(in: 0...4, using: &random) {
                let content = randomBytes(maxPieces: 12)
                let padding = Array(" \t".utf8.prefix(Int.random(in: 0...2, using: &random)))
                let newline: [UInt8] = Bool.random(using: &random) ? [13, 10] : [10]
                let filename = Bool.random(using: &random) ? "f\(index).bin" : nil
                body += Array("--\(boundary)".utf8) + padding + [13, 10]
                body += Array("Content-Disposition: form-data; name=\"p\(index)\"".utf8)
                body += filename.map { Array("; filename=\"\($0)\"".utf8) } ?? []
                body += newline + newline + content + [13, 10]
                var part = ParsedPart(name: "p\(index)", filename: filename)
                part.content = content
                expected.parts.append(part)
            }
            body += Array("--\(boundary)".utf8)
            if expected.isFinished {
                body += Array("--\r\n".utf8) + randomBytes(maxPieces: 4)
            }
            guard isFree(preamble), expected.parts.allSatisfy({ isFree($0.content) }) else { continue }
            bodiesChecked += 1

            #expect(parseMultipart(body, boundary: boundary).outcome == expected)
            #expect(parseMultipart(body, boundary: boundary, cuts: Array(1..<Swift.max(body.count, 1))).outcome
                == expected)
            for _ in 0..<10 {
                let cuts = (0..<Int.random(in: 1...8, using: &random))
                    .map { _ in Int.random(in: 0...body.count, using: &random) }.sorted()
                #expect(parseMultipart(body, boundary: boundary, cuts: cuts).outcome == expected, "cuts \(cuts)")
            }
        }
    }

    @Test func largeContentIsReportedAsRangesOfTheInput() {
        var random = SplitMix64(seed: 42)
        var content: [UInt8] = []
        while content.count < 3 << 20 {
            // No "x", so the delimiter prefixes never complete.
            content += (0..<Int.random(in: 0...600, using: &random)).map { _ in
                let byte = UInt8.random(in: 0...254, using: &random)
                return byte < UInt8(ascii: "x") ? byte : byte + 1
            }
            content += Array("\r\n--AaB03".utf8.prefix(Int.random(in: 1...9, using: &random)))
        }
        let body = Array("--AaB03x\r\n\(disposition)\"big\"; filename=\"big.bin\"\r\n\r\n".utf8) + content
            + Array("\r\n--AaB03x--\r\n".utf8)
        let cuts = Array(stride(from: 65536, to: body.count, by: 65536))
        let (outcome, heldBytes) = parseMultipart(body, boundary: "AaB03x", cuts: cuts)
        #expect(outcome.isFinished && outcome.failure == nil && outcome.parts.count == 1)
        #expect(outcome.parts.first?.content == content)
        #expect(heldBytes <= cuts.count * 9, "only a possible delimiter at the end of a piece is held back")
    }

    @Test func headerSectionOfSixteenKiBIsTheDefaultLimit() {
        let fits = "--AaB03x\r\nX: \(String(repeating: "a", count: 16 * 1024 - 7))\r\n\r\n\r\n--AaB03x--"
        let tooLarge = "--AaB03x\r\nX: \(String(repeating: "a", count: 16 * 1024 - 6))\r\n\r\n\r\n--AaB03x--"
        for body in [fits, tooLarge] {
            let bytes = Array(body.utf8)
            let whole = parseMultipart(bytes, boundary: "AaB03x").outcome
            #expect(parseMultipart(bytes, boundary: "AaB03x", cuts: Array(1..<bytes.count)).outcome == whole)
        }
        #expect(parseMultipart(Array(fits.utf8), boundary: "AaB03x").outcome.parts == [ParsedPart(name: nil)])
        #expect(parseMultipart(Array(tooLarge.utf8), boundary: "AaB03x").outcome.failure == .headerTooLarge)
    }

    @Test func endlessHeaderLineFailsWithoutBufferingIt() throws {
        var parser = MultipartParser(boundary: Array("AaB03x".utf8))
        let start = Array("--AaB03x\r\nX: ".utf8)
        try start.withUnsafeBytes { try parser.feed($0) { _ in } }
        let filler = [UInt8](repeating: UInt8(ascii: "a"), count: 4096)
        var fed = start.count
        let error = #expect(throws: MultipartParser.Failure.self) {
            while fed < 1 << 20 {
                try filler.withUnsafeBytes { try parser.feed($0) { _ in } }
                fed += filler.count
            }
        }
        #expect(error == .headerTooLarge)
        #expect(fed <= 16 * 1024)
    }

    @Test func failedParserStaysFailed() throws {
        var parser = MultipartParser(boundary: Array("AaB03x".utf8))
        let bad = Array("--AaB03x\r\nno colon\r\n\r\n".utf8)
        let first = #expect(throws: MultipartParser.Failure.self) {
            try bad.withUnsafeBytes { try parser.feed($0) { _ in } }
        }
        let good = Array("--AaB03x\r\n\(disposition)\"a\"\r\n\r\n1\r\n--AaB03x--".utf8)
        var events: [MultipartParser.Event] = []
        let second = #expect(throws: MultipartParser.Failure.self) {
            try good.withUnsafeBytes { try parser.feed($0) { events.append($0) } }
        }
        #expect(first == second && events.isEmpty && !parser.isFinished)
    }

    @Test func errorFromTheEventHandlerIsRethrownAndFailsTheParser() throws {
        struct Stop: Error {}
        var parser = MultipartParser(boundary: Array("AaB03x".utf8))
        let body = Array("--AaB03x\r\n\(disposition)\"a\"\r\n\r\n1\r\n--AaB03x--".utf8)
        #expect(throws: Stop.self) {
            try body.withUnsafeBytes { try parser.feed($0) { if case .data = $0 { throw Stop() } } }
        }
        #expect(throws: MultipartParser.Failure.self) {
            try body.withUnsafeBytes { try parser.feed($0) { _ in } }
        }
    }

    @Test func eventsOfASimpleBodyInOrder() throws {
        var parser = MultipartParser(boundary: Array("AaB03x".utf8))
        var events: [MultipartParser.Event] = []
        let first = Array("--AaB03x\r\n\(disposition)\"a\"\r\n\r\nhello\r\n--Aa".utf8)
        try first.withUnsafeBytes { try parser.feed($0) { events.append($0) } }
        #expect(events == [.partBegin(name: "a", filename: nil, contentType: nil), .data(54..<59)])
        events = []
        let second = Array("B0x\r\n--AaB03x--\r\nepilogue".utf8)
        try second.withUnsafeBytes { try parser.feed($0) { events.append($0) } }
        #expect(events == [.heldData(Array("\r\n--Aa".utf8)), .data(0..<3), .partEnd, .end])
        #expect(parser.isFinished)
    }

    @Test func invalidUTF8InNamesBecomesReplacementCharacters() {
        let body = Array("--AaB03x\r\nContent-Disposition: form-data; name=\"a".utf8) + [0xFF]
            + Array("b\"; filename=\"".utf8) + [0xC3] + Array("\"\r\n\r\nx\r\n--AaB03x--".utf8)
        let outcome = parseMultipart(body, boundary: "AaB03x").outcome
        #expect(outcome.parts == [ParsedPart(name: "a\u{FFFD}b", filename: "\u{FFFD}", "x")])
    }

    @Test(arguments: [
        ("multipart/form-data; boundary=AaB03x", "AaB03x"),
        ("multipart/form-data; boundary=\"AaB03x\"", "AaB03x"),
        ("Multipart/Form-Data; BOUNDARY=AaB03x", "AaB03x"),
        ("multipart/form-data;boundary=AaB03x;charset=utf-8", "AaB03x"),
        ("multipart/form-data; charset=utf-8; Boundary=\"a b:c?d\"", "a b:c?d"),
        (" multipart/form-data ; boundary = xyz ", "xyz"),
        ("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW", "----WebKitFormBoundary7MA4YWxkTrZu0gW"),
        ("multipart/form-data; boundary=a; boundary=b", "a"),
        ("multipart/form-data; boundary=" + String(repeating: "x", count: 70), String(repeating: "x", count: 70)),
        ("multipart/form-data; boundary=\"'()+_,-./:=?\"", "'()+_,-./:=?"),
    ])
    func boundaryIsReadFromTheContentType(contentType: String, boundary: String) {
        #expect(multipartBoundary(contentType: contentType) == Array(boundary.utf8))
    }

    @Test(arguments: [
        "",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=\"\"",
        "multipart/form-data; boundary",
        "multipart/form-data; xboundary=a",
        "multipart/form-data; boundary=" + String(repeating: "x", count: 71),
        "multipart/form-data; boundary=a b",
        "multipart/form-data; boundary=\"a \"",
        "multipart/form-data; boundary=\"a\\\"b\"",
        "multipart/form-data; boundary=a\tb",
        "multipart/form-data; boundary=a@b",
        "multipart/form-data; boundary=é",
        "multipart/mixed; boundary=AaB03x",
        "multipart/form-datax; boundary=AaB03x",
        "text/plain; boundary=AaB03x",
        "application/x-www-form-urlencoded",
    ])
    func unusableContentTypesHaveNoBoundary(contentType: String) {
        #expect(multipartBoundary(contentType: contentType) == nil)
    }
}

/// Whether `needle` occurs in `haystack`.
private func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard haystack.count >= needle.count else { return false }
    return (0...(haystack.count - needle.count)).contains { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
}

/// A seeded generator, so a failing random body can be reproduced.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
