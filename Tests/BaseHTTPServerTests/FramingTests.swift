import Testing
@testable import BaseHTTPServer

/// Writes a body whose size the path gives, in pieces, for framing tests.
final class SizedBodyHandler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) { LogBook.shared.add("sized \(message)") }

    override func doGET() throws { try answer() }
    override func doHEAD() throws { try answer() }

    private func answer() throws {
        let parts = path.split(separator: "/")
        let size = Int(parts.first ?? "0") ?? 0
        if parts.contains("throw-before") { throw ClientError(description: "boom before") }
        sendResponse(200)
        if parts.contains("own-length") { sendHeader("Content-Length", String(size)) }
        endHeaders()
        var left = size
        var byte: UInt8 = 0
        while left > 0 {
            let piece = min(left, 7000)
            wfile.write((0..<piece).map { _ in byte &+= 1; return byte })
            left -= piece
        }
        if parts.contains("flush") { wfile.flush() }
        if parts.contains("throw-after") { throw ClientError(description: "boom after") }
    }
}

private func expectedBody(_ size: Int) -> [UInt8] {
    var byte: UInt8 = 0
    return (0..<size).map { _ in byte &+= 1; return byte }
}

@Suite("Response framing")
struct FramingTests {
    @Test func smallBodyGetsContentLengthFromTheServer() throws {
        let running = try RunningServer(SizedBodyHandler.self)
        defer { running.stop() }
        let response = try exchange(running.port, "GET /1000 HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.header("Content-Length") == "1000")
        #expect(response.header("Transfer-Encoding") == nil)
        #expect(response.body == expectedBody(1000))
    }

    @Test func bodyOutgrowingTheBufferIsChunkedForHTTP11AndKeepsTheConnection() throws {
        let running = try RunningServer(SizedBodyHandler.self)
        defer { running.stop() }
        let client = try running.client()
        for _ in 0..<2 {
            try client.send("GET /300000 HTTP/1.1\r\nHost: a\r\n\r\n")
            let response = try #require(try client.readResponse())
            #expect(response.header("Transfer-Encoding") == "chunked")
            #expect(response.header("Content-Length") == nil)
            #expect(response.body == expectedBody(300_000))
        }
    }

    @Test func bodyOutgrowingTheBufferClosesForHTTP10() throws {
        let running = try RunningServer(SizedBodyHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET /300000 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        let response = try #require(try client.readResponse())
        #expect(response.header("Connection") == "close")
        #expect(response.header("Transfer-Encoding") == nil)
        #expect(response.body == expectedBody(300_000))
    }

    @Test func handlersOwnContentLengthPassesThrough() throws {
        let running = try RunningServer(SizedBodyHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET /200000/own-length HTTP/1.1\r\nHost: a\r\n\r\nGET /5 HTTP/1.1\r\nHost: a\r\n\r\n")
        let first = try #require(try client.readResponse())
        #expect(first.header("Content-Length") == "200000")
        #expect(first.body == expectedBody(200_000))
        let second = try #require(try client.readResponse())
        #expect(second.body == expectedBody(5))
    }

    @Test func headNeverPutsBodyBytesOnTheWire() throws {
        let running = try RunningServer(SizedBodyHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("HEAD /1000 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /300000 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
        let small = try #require(try client.readResponse(headRequest: true))
        #expect(small.header("Content-Length") == "1000")
        let large = try #require(try client.readResponse(headRequest: true))
        #expect(large.status == 200)
        let after = try #require(try client.readResponse())
        #expect(after.body == expectedBody(3))  // no stray body bytes before it
    }

    @Test func errorThrownBeforeAnythingLeftBecomesALogged500AndClose() throws {
        let running = try RunningServer(SizedBodyHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET /10/throw-after HTTP/1.1\r\nHost: a\r\n\r\n")
        let response = try #require(try client.readResponse())
        #expect(response.status == 500)
        #expect(response.header("Connection") == "close")
        #expect(client.isClosedByServer())
        #expect(LogBook.shared.contains("boom after"))
    }

    @Test func errorThrownAfterBytesLeftJustClosesTheConnection() throws {
        let running = try RunningServer(SizedBodyHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET /100000/own-length/flush/throw-after HTTP/1.1\r\nHost: a\r\n\r\n")
        let bytes = try client.readToEOF()
        let text = String(decoding: bytes.prefix(20), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK"))
        #expect(!String(decoding: bytes, as: UTF8.self).contains("500"))
        #expect(bytes.count > 100_000)  // the head and the whole body written before the error
    }
}
