import Glibc
import Testing
@testable import BaseHTTPServer

/// Serves the fixture with extra response headers: two with one name, in order, and one that
/// tries to inject a header line.
final class ExtraHeadersFileHandler: SimpleHTTPRequestHandler {
    override class var directory: String { FileFixture.shared.root }
    override class var responseHeaders: [(String, String)] {
        [("Access-Control-Allow-Origin", "*"), ("X-Extra", "one"), ("X-Extra", "two"),
         ("X-Evil", "x\r\nInjected: yes")]
    }
    override func logMessage(_ message: String) {}
}

/// Serves the fixture with its own type for unknown extensions.
final class TextDefaultFileHandler: SimpleHTTPRequestHandler {
    override class var directory: String { FileFixture.shared.root }
    override class var defaultContentType: String { "text/plain; charset=utf-8" }
    override func logMessage(_ message: String) {}
}

@Suite("SimpleHTTPRequestHandler settings")
struct SimpleHTTPRequestHandlerSettingsTests {
    let fixture = FileFixture.shared

    private func get(_ running: RunningServer, _ target: String, method: String = "GET",
                     headers: String = "") throws -> WireResponse {
        try exchange(running.port, "\(method) \(target) HTTP/1.1\r\nHost: x\r\n\(headers)\r\n",
                     headRequest: method == "HEAD")
    }

    /// Every kind of response the handler sends: a file, a range, HEAD, a listing, a
    /// redirect, 304, 416, 404 and 501.
    @Test func responseHeadersGoOnEveryResponse() throws {
        let running = try RunningServer(ExtraHeadersFileHandler.self)
        defer { running.stop() }
        let lastModified = try #require(try get(running, "/hello.txt").header("Last-Modified"))
        let cases: [(target: String, method: String, headers: String, status: Int)] = [
            ("/hello.txt", "GET", "", 200),
            ("/medium.bin", "GET", "", 200),  // streamed
            ("/hello.txt", "GET", "Range: bytes=0-4\r\n", 206),
            ("/hello.txt", "HEAD", "", 200),
            ("/", "GET", "", 200),
            ("/dir", "GET", "", 301),
            ("/hello.txt", "GET", "If-Modified-Since: \(lastModified)\r\n", 304),
            ("/hello.txt", "GET", "Range: bytes=999-\r\n", 416),
            ("/missing.txt", "GET", "", 404),
            ("/hello.txt", "POST", "Content-Length: 0\r\n", 501),
        ]
        for (target, method, headers, status) in cases {
            let response = try get(running, target, method: method, headers: headers)
            let label = "\(method) \(target) \(headers)"
            #expect(response.status == status, "\(label)")
            #expect(response.header("Access-Control-Allow-Origin") == "*", "\(label)")
            #expect(response.headers.filter { $0.0 == "X-Extra" }.map(\.1) == ["one", "two"], "\(label)")
            #expect(response.header("X-Evil") == nil && response.header("Injected") == nil, "\(label)")
        }
    }

    @Test func noResponseHeadersByDefault() throws {
        #expect(SimpleHTTPRequestHandler.responseHeaders.isEmpty)
        let running = try RunningServer(FixtureFileHandler.self)
        defer { running.stop() }
        let response = try get(running, "/hello.txt")
        #expect(response.headers.map { $0.0 } == ["Server", "Date", "Content-type", "Content-Length",
                                                  "Last-Modified", "ETag", "Accept-Ranges"])
    }

    @Test func defaultContentTypeAppliesOnlyToUnknownExtensions() throws {
        #expect(SimpleHTTPRequestHandler.defaultContentType == "application/octet-stream")
        let plain = try RunningServer(FixtureFileHandler.self)
        defer { plain.stop() }
        #expect(try get(plain, "/notes.unknownext").header("Content-Type") == "application/octet-stream")
        #expect(try get(plain, "/README").header("Content-Type") == "application/octet-stream")

        let typed = try RunningServer(TextDefaultFileHandler.self)
        defer { typed.stop() }
        #expect(try get(typed, "/notes.unknownext").header("Content-Type") == "text/plain; charset=utf-8")
        #expect(try get(typed, "/README").header("Content-Type") == "text/plain; charset=utf-8")
        // Known extensions keep their type, `.bin` included (the table names it octet-stream).
        #expect(try get(typed, "/data.bin").header("Content-Type") == "application/octet-stream")
        #expect(try get(typed, "/hello.txt").header("Content-Type") == "text/plain")
        #expect(try get(typed, "/archive.tar.gz").header("Content-Type") == "application/gzip")
        #expect(try get(typed, "/").header("Content-Type") == "text/html; charset=utf-8")
    }
}
