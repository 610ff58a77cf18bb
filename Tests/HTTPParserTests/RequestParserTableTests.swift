import HTTPParser
import Testing

/// One line per case: the input and what a caller sees (`H` head, `B:x` body, `E` end,
/// `!status` error). Every row also runs split at every offset and one byte at a time.
struct Row: CustomTestStringConvertible, Sendable {
    let input: String
    let expected: String
    init(_ input: String, _ expected: String) {
        self.input = input
        self.expected = expected
    }
    var testDescription: String { input.debugDescription }
}

@Suite struct RequestParserTableTests {
    static let valid: [Row] = [
        Row("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "H E"),
        Row("GET / HTTP/1.0\r\n\r\n", "H E"),
        Row("GET /\r\n", "H E"),
        Row("GET /index.html \r\n", "H E"),
        Row("\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "H E"),
        Row("GET / HTTP/1.1\nHost: a\n\n", "H E"),
        Row("GET / HTTP/1.1 \t\r\nHost: a\r\n\r\n", "H E"),
        Row("GET / HTTP/1.1\r\nHost:a\r\nX:\r\nY: \t \r\n\r\n", "H E"),
        Row("GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n", "H E"),
        Row("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "H E"),
        Row("CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n", "H E"),
        Row("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "H E"),
        Row("GET /caf\u{E9} HTTP/1.1\r\nHost: a\r\nX: caf\u{E9}\r\n\r\n", "H E"),
        Row("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", "H E"),
        Row("GET / HTTP/1.1\r\nHost: \r\n\r\n", "H E"),
        Row("GET / HTTP/1.1\r\nHost: a%20b\r\n\r\n", "H E"),
        Row("GET / HTTP/1.2\r\nHost: a\r\n\r\n", "H E"),
        Row("GET / HTTP/0.9\r\n\r\n", "H E"),
        Row("M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n", "H E"),
        Row("GET * HTTP/1.1\r\nHost: a\r\n\r\n", "H E"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "H B:hello E"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", "H E"),
        Row("POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabcGET", "H B:abc E"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", "H B:abc E"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n1234567", "H B:1234567 E"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "H B:hello E"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n", "H E"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b;c=\"x\\\"y\"\r\nabc\r\nA ; d\r\n0123456789\r\n0\r\nT: v\r\n\r\n", "H B:abc0123456789 E"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n", "H B:abcd E"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n", "H E"),
        Row("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n", "H E H E"),
        Row("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHo", "H E"),
        Row("GET / HTTP/1.1\r\nHost: a\r\n", ""),
    ]

    static let invalid: [Row] = [
        // Request line.
        Row("GET\r\n\r\n", "!400"),
        Row(" GET / HTTP/1.1\r\n\r\n", "!400"),
        Row("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "!400"),
        Row("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", "!400"),
        Row("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", "!400"),
        Row("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n", "!400"),
        Row("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "!400"),
        Row("GET /a\u{7F}b HTTP/1.1\r\nHost: a\r\n\r\n", "!400"),
        Row("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\rHost: a\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1 x\r\nHost: a\r\n\r\n", "!400"),
        Row("GET / http/1.1\r\nHost: a\r\n\r\n", "!400"),
        Row("GET / HTTP/1\r\nHost: a\r\n\r\n", "!400"),
        Row("GET / HTTP/1.\r\nHost: a\r\n\r\n", "!400"),
        Row("GET / HTTP/.1\r\nHost: a\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1.1\r\nHost: a\r\n\r\n", "!400"),
        Row("GET / HTTP/12345678901.1\r\nHost: a\r\n\r\n", "!400"),
        Row("GET / HTTP/2.0\r\nHost: a\r\n\r\n", "!505"),
        Row("GET / HTTP/10.0\r\n\r\n", "!400"),
        Row("GET / HTTP/01.01\r\nHost: a\r\n\r\n", "!400"),
        Row("POST /\r\n", "!400"),
        Row("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", "!400"),
        Row("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", "!400"),
        Row("GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n", "!400"),
        Row("CONNECT * HTTP/1.1\r\nHost: a\r\n\r\n", "!400"),
        Row("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n", "!400"),
        Row("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", "!400"),
        // Field lines.
        Row("GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost : a\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\n X: 1\r\nHost: a\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{1}b\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7F}\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: a\r\nX(: a\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: a\r\n\rX\r\n", "!400"),
        // Host.
        Row("GET / HTTP/1.1\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", "!400"),
        Row("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", "!400"),
        Row("GET / HTTP/1.1\r\nHost: a%2\r\n\r\n", "!400"),
        // Framing (RFC 9112 §6.3, §11.2: request smuggling).
        Row("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3 4\r\n\r\n", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "!501"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", "!501"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", "!501"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked x\r\n\r\n", "!501"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", "!400"),
        Row("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "!400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\u{B}chunked\r\n\r\n", "!400"),
        // Chunked body.
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", "H !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", "H B:hello !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", "H B:hello !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n", "H !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: v\n\r\n", "H !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT v\r\n\r\n", "H !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n T: v\r\n\r\n", "H !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", "H !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n100000000\r\n", "H !413"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "H !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", "H !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1x\r\n", "H !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\n", "H !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;\r\n", "H !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a=\"x\r\n", "H !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a=\0\r\n", "H !400"),
        Row("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\r\n", "H !400"),
    ]

    @Test(arguments: valid + invalid)
    func rowParsesAsExpectedAndIdenticallyAtEverySplit(_ row: Row) {
        let (whole, mismatch) = ParserDriver().runEverySplit(Array(row.input.utf8))
        #expect(whole.brief == row.expected, "\(whole)")
        #expect(mismatch == nil)
    }
}
