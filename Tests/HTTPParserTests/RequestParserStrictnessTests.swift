import HTTPParser
import Testing

/// Where RFC 9112 and Python's `http.server` or llhttp part ways, the parser's choice, one row
/// each: strict where a leniency would let two parsers read one request differently, lenient
/// where the leniency is harmless and clients rely on it. Every row also runs split at every
/// offset and one byte at a time.
@Suite struct RequestParserStrictnessTests {
    /// Parses `text` at every split; the outcomes of the whole run, checked to be split-proof.
    private func outcomes(_ text: String, sourceLocation: SourceLocation = #_sourceLocation)
        -> [Outcome]
    {
        let (whole, mismatch) = ParserDriver().runEverySplit(Array(text.utf8))
        #expect(mismatch == nil, sourceLocation: sourceLocation)
        return whole
    }

    /// The first head of `text`, parsed at every split.
    private func head(_ text: String, sourceLocation: SourceLocation = #_sourceLocation)
        -> HeadSummary?
    {
        for case .head(let head) in outcomes(text, sourceLocation: sourceLocation) { return head }
        return nil
    }

    // MARK: HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3)

    /// Python takes up to ten digits on each side, so `HTTP/01.1` is its HTTP/1.1 and
    /// `HTTP/1.10` a tenth minor version; the grammar has one digit each, and so does the parser.
    static let malformedVersions = [
        "HTTP/1.10", "HTTP/01.1", "HTTP/1.", "HTTP/1.1.1", "HTTP/10.0", "HTTP/1.01", "HTTP/",
        "HTTP/1", "HTTP/.1", "HTTP/1.x", "HTTP/1,1", "HTTP/١.١", "http/1.1", "HTTP/1.1x",
    ]

    @Test(arguments: malformedVersions)
    func malformedVersionIsABadVersion(_ version: String) {
        #expect(outcomes("GET / \(version)\r\nHost: a\r\n\r\n") == [.error(ParseError(.badVersion))])
        #expect(outcomes("GET / \(version)\n\n") == [.error(ParseError(.badVersion))])
    }

    /// Well-formed, but a major version this server does not speak: 505, as Python answers.
    @Test(arguments: ["HTTP/2.0", "HTTP/3.0", "HTTP/9.9", "HTTP/2.1"])
    func wellFormedVersionFromTwoOnIsNotSupported(_ version: String) {
        let error = ParseError(.versionNotSupported)
        #expect(outcomes("GET / \(version)\r\nHost: a\r\n\r\n") == [.error(error)])
        #expect(error.status == 505)
    }

    /// Any well-formed 0.x or 1.x version is read as such; the server answers as 1.x.
    @Test(arguments: [("HTTP/1.1", 1, 1), ("HTTP/1.0", 1, 0), ("HTTP/1.2", 1, 2),
                      ("HTTP/1.9", 1, 9), ("HTTP/0.9", 0, 9), ("HTTP/0.0", 0, 0)])
    func wellFormedVersionBelowTwoIsRead(_ version: String, _ major: Int, _ minor: Int) throws {
        let parsed = try #require(head("GET / \(version) \r\nHost: a\r\n\r\n"))
        #expect(parsed.version == version)
        #expect(parsed.major == major && parsed.minor == minor)
    }

    // MARK: The asterisk form with any method

    /// RFC 9112 §3.2.4 means `*` for server-wide `OPTIONS`, but Python and llhttp take it with
    /// any method and SSDP's `M-SEARCH` relies on that. Only `CONNECT`, whose target must be an
    /// authority, refuses it.
    @Test(arguments: ["OPTIONS", "GET", "HEAD", "M-SEARCH", "NOTIFY", "DELETE", "PRI"])
    func asteriskFormIsAcceptedForAnyMethod(_ method: String) throws {
        let parsed = try #require(head("\(method) * HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(parsed.method == method)
        #expect(parsed.target == "*")
        #expect(parsed.major == 1 && parsed.minor == 1)
    }

    @Test func asteriskFormTakesABodyLikeAnyOtherTarget() {
        let text = "POST * HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
        #expect(outcomes(text).brief == "H B:hi E")
    }

    @Test func asteriskFormIsOneAsteriskAndNeverForConnect() {
        let badTarget = [Outcome.error(ParseError(.badTarget))]
        #expect(outcomes("GET *x HTTP/1.1\r\nHost: a\r\n\r\n") == badTarget)
        #expect(outcomes("GET ** HTTP/1.1\r\nHost: a\r\n\r\n") == badTarget)
        #expect(outcomes("GET */ HTTP/1.1\r\nHost: a\r\n\r\n") == badTarget)
        #expect(outcomes("CONNECT * HTTP/1.1\r\nHost: a\r\n\r\n") == badTarget)
    }

    /// HTTP/0.9 is `GET` only, whatever the target: `GET *` is Python's two-word request.
    @Test func asteriskFormInHTTP09IsGETOnly() throws {
        let parsed = try #require(head("GET *\r\n"))
        #expect(parsed.target == "*" && parsed.version == nil)
        #expect(outcomes("M-SEARCH *\r\n") == [.error(ParseError(.badHTTP09Method))])
    }

    // MARK: HTTP/2's connection preface

    /// RFC 9113 §3.4: a client that assumes HTTP/2 opens with this; an HTTP/1 server answers
    /// 505, as Python does, not 400: the request line is well-formed, the version unsupported.
    static let preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    @Test func http2PrefaceIsVersionNotSupported() {
        #expect(outcomes(Self.preface) == [.error(ParseError(.versionNotSupported))])
        #expect(outcomes("PRI * HTTP/2.0\r") == [.error(ParseError(.versionNotSupported))])
        #expect(outcomes("PRI * HTTP/2.0") == [], "the version may go on: not yet a verdict")
        #expect(ParseError(.versionNotSupported).status == 505)
    }

    // MARK: Content-Length is 1*DIGIT (RFC 9112 §6.3)

    /// RFC 9110 §8.6 lets a recipient read `5, 5` as 5; the parser refuses any list, equal
    /// values included, at the comma.
    static let listLengths = ["5, 5", " 5 , 5", "5,5", "5 ,5", "5,", ",5", "5, 6", "5,\t5"]

    @Test(arguments: listLengths)
    func contentLengthListIsABadContentLength(_ value: String) {
        let text = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(value)\r\n\r\nhello"
        #expect(outcomes(text) == [.error(ParseError(.badContentLength))])
        #expect(ParseError(.badContentLength).status == 400)
    }

    /// Optional whitespace around the one number is field syntax, not part of the value.
    @Test func contentLengthWithWhitespaceAroundIsAccepted() {
        let text = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \t 5 \t\r\n\r\nhello"
        #expect(outcomes(text).brief == "H B:hello E")
    }

    /// Two fields with the same value count as one length, as RFC 9112 §6.3 allows (llhttp
    /// refuses them); two different values are refused. Documents the parser's choice.
    @Test func repeatedContentLengthFieldsCountOnceWhenEqualAndAreRefusedWhenNot() throws {
        let equal = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
        #expect(outcomes(equal).brief == "H B:hello E")
        #expect(try #require(head(equal)).framing == .contentLength(5))
        let leadingZero = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\nhello"
        #expect(outcomes(leadingZero).brief == "H B:hello E", "equal as numbers")
        let differing = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
        #expect(outcomes(differing) == [.error(ParseError(.conflictingContentLength))])
        let listAfterField = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\n"
        #expect(outcomes(listAfterField) == [.error(ParseError(.badContentLength))])
    }
}
