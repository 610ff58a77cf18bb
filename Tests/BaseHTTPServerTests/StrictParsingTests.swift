import Testing
@testable import BaseHTTPServer

/// What a client sees where the parser follows RFC 9112 rather than Python or llhttp.
@Suite("RFC 9112 where Python and llhttp are lenient, leniency where they are right")
struct StrictParsingTests {
    static let second = "GET /second HTTP/1.1\r\nHost: a\r\n\r\n"

    /// Sends `request` followed by `GET /second` on one connection; returns the first response
    /// and whether the server then closed without answering `/second`.
    private func refusal(_ running: RunningServer, _ request: String) throws -> (WireResponse, Bool) {
        let client = try running.client()
        try client.send(request + Self.second)
        let response = try #require(try client.readResponse())
        return (response, client.isClosedByServer())
    }

    @Test(arguments: [
        ("HTTP/1.10", 400), ("HTTP/01.1", 400), ("HTTP/1.", 400), ("HTTP/1.1.1", 400),
        ("HTTP/10.0", 400), ("HTTP/2.0", 505), ("HTTP/3.0", 505), ("HTTP/9.9", 505),
    ])
    func versionOtherThanOneDigitDotOneDigitIs400AndFromTwoOn505(_ version: String, _ status: Int)
        throws
    {
        let running = try RunningServer(EchoHandler.self)
        defer { running.stop() }
        let (response, closed) = try refusal(running, "GET /first \(version)\r\nHost: a\r\n\r\n")
        #expect(response.status == status)
        #expect(response.statusLine.hasPrefix("HTTP/1.1 \(status) "))
        #expect(response.header("Connection") == "close")
        #expect(closed, "the connection closes and /second is not answered")
    }

    @Test func wellFormedMinorVersionAboveOneIsServedAsHTTP11() throws {
        let running = try RunningServer(EchoHandler.self)
        defer { running.stop() }
        let response = try exchange(running.port, "GET /x HTTP/1.2\r\nHost: a\r\n\r\n")
        #expect(response.status == 200)
        #expect(response.bodyText.hasPrefix("GET /x HTTP/1.2\n"))
    }
}
