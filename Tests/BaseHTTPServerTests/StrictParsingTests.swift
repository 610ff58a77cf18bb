import Testing
@testable import BaseHTTPServer

/// Answers any method, `M-SEARCH` included, with its command and path.
final class AnyMethodHandler: EchoHandler {
    override func doMethod(_ command: String) throws { try answer() }
}

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

    @Test(arguments: ["OPTIONS", "GET", "M-SEARCH", "NOTIFY"])
    func asteriskFormReachesTheHandlerAsPathAsteriskForAnyMethod(_ method: String) throws {
        let running = try RunningServer(AnyMethodHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("\(method) * HTTP/1.1\r\nHost: a\r\nMan: \"ssdp:discover\"\r\n\r\n" + Self.second)
        let response = try #require(try client.readResponse())
        #expect(response.status == 200)
        #expect(response.bodyText.hasPrefix("\(method) * HTTP/1.1\n"))
        let next = try #require(try client.readResponse(), "the connection stays open")
        #expect(next.bodyText.hasPrefix("GET /second HTTP/1.1\n"))
    }

    @Test func asteriskFormWithoutAHandlerMethodGetsPythons501() throws {
        let running = try RunningServer(EchoHandler.self)
        defer { running.stop() }
        let response = try exchange(running.port, "M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.status == 501)
        #expect(response.statusLine == "HTTP/1.1 501 Unsupported method ('M-SEARCH')")
    }

    /// `*` names no file: `SimpleHTTPRequestHandler` answers 404 (Python would look for a file
    /// called `*` in its directory).
    @Test func asteriskFormIsNoFileForSimpleHTTPRequestHandler() throws {
        let running = try RunningServer(FixtureFileHandler.self)
        defer { running.stop() }
        let response = try exchange(running.port, "GET * HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.status == 404)
        #expect(try exchange(running.port, "HEAD * HTTP/1.1\r\nHost: a\r\n\r\n",
                             headRequest: true).status == 404)
    }

    @Test func asteriskFormIsRefusedForCONNECT() throws {
        let running = try RunningServer(AnyMethodHandler.self)
        defer { running.stop() }
        let (response, closed) = try refusal(running, "CONNECT * HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.status == 400)
        #expect(closed)
    }

    /// HTTP/2's preface and a SETTINGS frame, as a prior-knowledge h2 client sends them: the
    /// answer is an HTTP/1.1 505, then the connection closes.
    @Test func http2PrefaceGets505AndAClose() throws {
        let running = try RunningServer(AnyMethodHandler.self)
        defer { running.stop() }
        let client = try running.client()
        let settings: [UInt8] = [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]
        try client.send(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + settings)
        let response = try #require(try client.readResponse())
        #expect(response.status == 505)
        #expect(response.statusLine.hasPrefix("HTTP/1.1 505 "))
        #expect(response.header("Connection") == "close")
        #expect(client.isClosedByServer())
    }

    @Test(arguments: ["5, 5", " 5 , 5", "5,5", "5, 6"])
    func contentLengthListIs400AndTheBodyIsNeverARequest(_ value: String) throws {
        let running = try RunningServer(EchoHandler.self)
        defer { running.stop() }
        let request = "POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: \(value)\r\n\r\nhello"
        let (response, closed) = try refusal(running, request)
        #expect(response.status == 400)
        #expect(response.statusLine == "HTTP/1.1 400 Invalid Content-Length")
        #expect(response.header("Connection") == "close")
        #expect(closed, "the connection closes and /second is not answered")
    }

    /// Documents the choice: two equal `Content-Length` fields frame one body (RFC 9112 §6.3).
    @Test func equalRepeatedContentLengthFieldsFrameOneBody() throws {
        let running = try RunningServer(EchoHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
            + Self.second)
        let first = try #require(try client.readResponse())
        #expect(first.status == 200)
        #expect(first.bodyText.hasSuffix("body 5: hello\n"))
        let next = try #require(try client.readResponse())
        #expect(next.bodyText.hasPrefix("GET /second HTTP/1.1\n"))
    }
}
