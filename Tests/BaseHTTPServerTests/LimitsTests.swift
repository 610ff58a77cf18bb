import Testing
@testable import BaseHTTPServer

@Suite("Bad input gets its status code and a closed connection")
struct LimitsTests {
    /// Sends `request` and returns the response and whether the server then closed.
    private func answer(_ running: RunningServer, _ request: String) throws -> (WireResponse, Bool) {
        let client = try running.client()
        try client.send(request)
        let response = try #require(try client.readResponse())
        return (response, client.isClosedByServer())
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n", 417),
        ("GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n  folded\r\n\r\n", 400),
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GARBAGE\r\n\r\n", 400),
        ("PUT /x\r\n", 400),
    ])
    func malformedRequestsGetTheirStatusAndAClose(request: String, status: Int) throws {
        let running = try RunningServer(EchoHandler.self)
        defer { running.stop() }
        let (response, closed) = try answer(running, request)
        #expect(response.status == status)
        #expect(response.statusLine.hasPrefix("HTTP/1.1 \(status) "))
        #expect(response.header("Connection") == "close")
        #expect(closed)
    }

    @Test func requestLineOverTheLimitGets414() throws {
        let running = try RunningServer(EchoHandler.self)
        defer { running.stop() }
        let path = "/" + String(repeating: "a", count: 70_000)
        let (response, closed) = try answer(running, "GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.status == 414)
        #expect(closed)
    }

    @Test func tooManyOrTooLargeHeadersGet431() throws {
        let running = try RunningServer(EchoHandler.self)
        defer { running.stop() }
        let many = (0..<101).map { "X-\($0): v\r\n" }.joined()
        #expect(try answer(running, "GET / HTTP/1.1\r\nHost: a\r\n\(many)\r\n").0.status == 431)
        let long = "X: " + String(repeating: "v", count: 70_000) + "\r\n"
        #expect(try answer(running, "GET / HTTP/1.1\r\nHost: a\r\n\(long)\r\n").0.status == 431)
        let total = (0..<40).map { "X-\($0): \(String(repeating: "v", count: 2000))\r\n" }.joined()
        #expect(try answer(running, "GET / HTTP/1.1\r\nHost: a\r\n\(total)\r\n").0.status == 431)
    }

    @Test func bodyOverTheLimitGets413InsteadOf100Continue() throws {
        let running = try RunningServer(EchoHandler.self) { $0.maxBodySize = 1000 }
        defer { running.stop() }
        let (declared, _) = try answer(running,
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        #expect(declared.status == 413)
        let chunk = String(repeating: "z", count: 600)
        let (chunked, closed) = try answer(running,
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n\(chunk)\r\n258\r\n\(chunk)\r\n0\r\n\r\n")
        #expect(chunked.status == 413)
        #expect(closed)
    }

    @Test func limitsComeFromTheServerConfiguration() throws {
        let running = try RunningServer(EchoHandler.self) { $0.parserLimits.maxHeaderCount = 3 }
        defer { running.stop() }
        let three = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n"
        #expect(try exchange(running.port, three).status == 200)
        let four = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
        #expect(try answer(running, four).0.status == 431)
    }

    @Test func badRequestDoesNotDisturbOtherConnections() throws {
        let running = try RunningServer(EchoHandler.self)
        defer { running.stop() }
        let good = try running.client()
        try good.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try good.readResponse()?.status == 200)
        #expect(try answer(running, "\u{0}\u{1}\u{2} nonsense\r\n\r\n").0.status == 400)
        try good.send("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try good.readResponse()?.status == 200)
    }
}
