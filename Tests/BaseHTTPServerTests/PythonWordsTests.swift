import Foundation
import Glibc
import Testing
@testable import BaseHTTPServer

private let python3: String? = ["/usr/bin/python3", "/usr/local/bin/python3"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }

/// Python's own `BaseHTTPRequestHandler` on a free port (printed first), answering GET with
/// 200 and sending headers a test names; errors as Python words them. It runs until its
/// standard input closes.
private let pythonReference = """
    import http.server, sys, threading
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("X-Name", "caf\\u00e9")
            self.send_header("Content-Length", "0")
            self.end_headers()
        def log_message(self, *args): pass
    server = http.server.HTTPServer(("127.0.0.1", 0), H)
    print(server.server_port, flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    """

/// A handler with no `doFOO()` of its own: every method gets Python's 501.
final class SilentBaseHandler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) {}
}

/// Answers GET with a header whose value is not ASCII, and one that ISO-8859-1 cannot carry.
final class Latin1Handler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) { LogBook.shared.add("latin1 " + message) }
    override func doGET() throws {
        sendResponse(200)
        sendHeader("X-Name", "café")
        sendHeader("X-Euro", "5 €")
        sendHeader("Content-Length", "0")
        endHeaders()
    }
}

/// Wraps every request: refuses those without `X-Token: secret` before any `doFOO()`, adds a
/// header to the others, and counts what it saw afterwards.
final class GuardedHandler: BaseHTTPRequestHandler {
    nonisolated(unsafe) static var handled: [String] = []  // Loop thread only; read after stop.
    override func logMessage(_ message: String) {}
    override func handleOneRequest() throws {
        guard headers["X-Token"] == "secret" else {
            sendError(401, message: "No token")
            return
        }
        sendHeaderOnNextResponse = true
        try super.handleOneRequest()
        GuardedHandler.handled.append(command ?? "-")
    }
    private var sendHeaderOnNextResponse = false
    override func sendResponse(_ code: Int, message: String? = nil) {
        super.sendResponse(code, message: message)
        if sendHeaderOnNextResponse { sendHeader("X-Guarded", "yes") }
    }
    override func doGET() throws {
        sendResponse(200)
        sendHeader("Content-Length", "2")
        endHeaders()
        wfile.write("ok")
    }
    override func doDELETE() throws {
        throw ClientError(description: "no deleting")
    }
}

/// Raw bytes of everything the server sends back to `request`, until it closes.
private func rawResponse(_ port: Int, _ request: String) throws -> [UInt8] {
    let client = try RawClient(port: port)
    try client.send(request)
    return try client.readToEOF()
}

/// `page` without its `<style>` element and the line it stands on (Python 3.14's addition).
private func withoutStyle(_ page: [UInt8]) -> [UInt8] {
    let text = String(decoding: page, as: UTF8.self)
    guard let start = text.range(of: "        <style"), let end = text.range(of: "</style>\n") else { return page }
    return Array((text[..<start.lowerBound] + text[end.upperBound...]).utf8)
}

/// The `Message: …` line of an error page.
private func messageLine(_ bytes: [UInt8]) -> String? {
    String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        .first { $0.contains("<p>Message:") }.map { $0.trimmingCharacters(in: .whitespaces) }
}

@Suite("Python's words")
struct PythonWordsTests {
    /// The same malformed requests to Python 3's handler and ours: the same message on the
    /// error page (and so in the status line and the log). Python sends these without a
    /// status line (it has not seen a version yet); ours always sends one (DESIGN.md).
    @Test(.enabled(if: python3 != nil))
    func errorMessagesCarryPythonsDetail() throws {
        let reference = try SpawnedChild([python3!, "-c", pythonReference])
        defer { reference.stop() }
        let pythonPort = try #require(Int(reference.readLine()))
        let running = try RunningServer(HelloHandler.self)
        defer { running.stop() }
        let cases: [(String, String)] = [
            ("GARBAGE\r\n\r\n", "Bad request syntax ('GARBAGE')"),
            ("GET / FUBAR\r\n\r\n", "Bad request version ('FUBAR')"),
            ("GET / HTTP/2.0\r\n\r\n", "Invalid HTTP version (2.0)"),
            ("POST /\r\n\r\n", "Bad HTTP/0.9 request type ('POST')"),
            ("GET / it's\r\n\r\n", "Bad request version (\"it's\")"),
            ("GET / HTTP/1.0 x\r\n\r\n", "Bad request version ('x')"),
            ("GET / x HTTP/1.0\r\n\r\n", "Bad request syntax ('GET / x HTTP/1.0')"),
            ("HEAD /\r\n\r\n", "Bad HTTP/0.9 request type ('HEAD')"),
        ]
        for (request, message) in cases {
            let python = try rawResponse(pythonPort, request)
            let ours = try rawResponse(running.port, request)
            #expect(messageLine(python) == "<p>Message: \(message).</p>", "Python, \(request.debugDescription)")
            #expect(messageLine(ours) == messageLine(python), "\(request.debugDescription)")
            let statusLine = String(decoding: ours.prefix { $0 != 13 }, as: UTF8.self)
            #expect(statusLine.hasSuffix(" " + message), "\(statusLine)")
        }
    }

    /// An HTTP/0.9 `GET` (two words) to a handler without `doGET`: Python's 501 page, without
    /// a status line or headers (HTTP/0.9 has neither), then the connection closes.
    @Test(.enabled(if: python3 != nil))
    func anHTTP09GetToAHandlerWithoutDoGETGetsPythons501Page() throws {
        let script = """
            import http.server, sys, threading
            class H(http.server.BaseHTTPRequestHandler):
                def log_message(self, *args): pass
            server = http.server.HTTPServer(("127.0.0.1", 0), H)
            print(server.server_port, flush=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            sys.stdin.read()
            """
        let reference = try SpawnedChild([python3!, "-c", script])
        defer { reference.stop() }
        let pythonPort = try #require(Int(reference.readLine()))
        let running = try RunningServer(SilentBaseHandler.self)
        defer { running.stop() }
        // (Python reads header lines after an HTTP/0.9 request line too: the blank line ends them.)
        let python = try rawResponse(pythonPort, "GET /\r\n\r\n")
        let ours = try rawResponse(running.port, "GET /\r\n\r\n")
        #expect(String(decoding: python, as: UTF8.self).hasPrefix("<!DOCTYPE HTML>"))
        #expect(messageLine(python) == "<p>Message: Unsupported method ('GET').</p>")
        // Ours is Python 3.14's page, which adds the dark-mode style to 3.11's.
        #expect(withoutStyle(ours) == python)
    }

    @Test func limitsAnswerWithRFC9110Phrases() throws {
        let running = try RunningServer(HelloHandler.self) { $0.maxBodySize = 10 }
        defer { running.stop() }
        let long = try exchange(running.port, "GET /\(String(repeating: "a", count: 70_000)) HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(long.statusLine == "HTTP/1.1 414 URI Too Long")
        let large = try exchange(running.port, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n")
        #expect(large.statusLine == "HTTP/1.1 413 Content Too Large")
        #expect(HTTPStatus.contentTooLarge.phrase == "Content Too Large")
    }

    @Test(.enabled(if: python3 != nil))
    func headerValuesAreWrittenISO88591AsPythonWritesThem() throws {
        let reference = try SpawnedChild([python3!, "-c", pythonReference])
        defer { reference.stop() }
        let pythonPort = try #require(Int(reference.readLine()))
        let running = try RunningServer(Latin1Handler.self)
        defer { running.stop() }
        let request = "GET / HTTP/1.0\r\n\r\n"
        let nameLine: [UInt8] = Array("X-Name: caf".utf8) + [0xE9, 13, 10]
        let python = try rawResponse(pythonPort, request)
        let ours = try rawResponse(running.port, request)
        #expect(python.firstRange(of: nameLine) != nil)
        #expect(ours.firstRange(of: nameLine) != nil)
        // "€" has no ISO-8859-1 byte: the header is left out, and the log says why.
        #expect(ours.firstRange(of: Array("X-Euro".utf8)) == nil)
        #expect(LogBook.shared.contains("refused header \"X-Euro\""))
    }

    @Test func handleOneRequestWrapsEveryRequest() throws {
        let running = try RunningServer(GuardedHandler.self)
        let refused = try exchange(running.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(refused.status == 401)
        #expect(refused.statusLine == "HTTP/1.1 401 No token")
        let client = try running.client()
        try client.send("GET / HTTP/1.1\r\nHost: a\r\nX-Token: secret\r\n\r\n")
        let allowed = try #require(try client.readResponse())
        #expect(allowed.bodyText == "ok")
        #expect(allowed.header("X-Guarded") == "yes")
        try client.send("DELETE / HTTP/1.1\r\nHost: a\r\nX-Token: secret\r\n\r\n")
        #expect(try client.readResponse()?.status == 500)  // thrown through the hook: a 500
        running.stop()
        #expect(GuardedHandler.handled == ["GET"])
    }
}
