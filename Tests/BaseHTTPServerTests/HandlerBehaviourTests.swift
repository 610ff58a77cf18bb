import Foundation
import Testing
@testable import BaseHTTPServer

/// Exercises Python's hooks one by one, chosen by the request path.
final class HooksHandler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) { LogBook.shared.add("\(path) \(message)") }

    override func doGET() throws {
        switch path {
        case "/only":
            sendResponseOnly(200)
            sendHeader("Content-Length", "2")
            endHeaders()
            wfile.write("ok")
        case "/close":
            sendResponse(200)
            sendHeader("Connection", "close")
            endHeaders()
            wfile.write("bye")
        case "/error-custom":
            sendError(404, message: "No <such> thing", explain: "Gone & lost")
        case "/error-204":
            sendError(204)
        case "/status-enum":
            sendResponse(.created)
            endHeaders()
        case "/inject":
            sendResponse(200)
            sendHeader("X-Evil", "a\r\nSet-Cookie: pwned=1")
            sendHeader("X-Ok", "fine")
            endHeaders()
        case "/flush-headers":
            sendResponseOnly(200)
            sendHeader("Content-Length", "5")
            flushHeaders()
            wfile.write("\r\nhello")
        case "/requestline-first":
            let line = requestline  // read before sendResponse logs it
            sendResponse(200)
            endHeaders()
            wfile.write(line)
        default:
            sendResponse(200)
            sendHeader("X-Path", path)
            endHeaders()
            wfile.write("\(command!) \(path) \(requestVersion) \(requestline)")
        }
    }

    override func doMethod(_ command: String) throws {
        if command == "BREW" {
            sendResponse(.imATeapot)
            endHeaders()
        } else {
            try super.doMethod(command)
        }
    }
}

/// Names the `doFOO()` that answered, so a test sees which one each method reached.
final class MethodNameHandler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) {}
    private func answer(_ name: String) {
        sendResponse(200)
        endHeaders()
        wfile.write(name)
    }
    override func doGET() throws { answer("doGET") }
    override func doHEAD() throws { answer("doHEAD") }
    override func doPOST() throws { answer("doPOST") }
    override func doPUT() throws { answer("doPUT") }
    override func doDELETE() throws { answer("doDELETE") }
    override func doPATCH() throws { answer("doPATCH") }
    override func doOPTIONS() throws { answer("doOPTIONS") }
    override func doTRACE() throws { answer("doTRACE") }
    override func doCONNECT() throws { answer("doCONNECT") }
    override func doMethod(_ command: String) throws { answer("doMethod \(command)") }
}

/// A handler with its own error page and protocol.
final class CustomErrorHandler: BaseHTTPRequestHandler {
    override class var errorMessageFormat: String { "E%(code)d|%(message)s|%(explain)s|100%%" }
    override class var errorContentType: String { "text/plain" }
    override class var serverVersion: String { "Custom/1.0" }
    override func logMessage(_ message: String) {}
}

@Suite("Python's handler behaviour over a socket")
struct HandlerBehaviourTests {
    @Test func statusLineAndHeadersFollowPythonsFormat() throws {
        let running = try RunningServer(HooksHandler.self)
        defer { running.stop() }
        let response = try exchange(running.port, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.statusLine == "HTTP/1.1 200 OK")
        #expect(response.headers.map(\.0).prefix(3) == ["Server", "Date", "X-Path"])
        #expect(response.bodyText == "GET /x HTTP/1.1 GET /x HTTP/1.1")
    }

    @Test func eachMethodReachesItsOwnDoMethodAndOthersReachDoMethod() throws {
        let running = try RunningServer(MethodNameHandler.self)
        defer { running.stop() }
        let client = try running.client()
        let expected = [
            ("GET", "doGET"), ("POST", "doPOST"), ("PUT", "doPUT"), ("DELETE", "doDELETE"),
            ("PATCH", "doPATCH"), ("OPTIONS", "doOPTIONS"), ("TRACE", "doTRACE"),
            // Methods are case-sensitive; near misses and longer names are other methods.
            ("get", "doMethod get"), ("GETS", "doMethod GETS"), ("POS", "doMethod POS"),
            ("OPTIONSX", "doMethod OPTIONSX"), ("PURGE", "doMethod PURGE"),
        ]
        for (method, answer) in expected {
            try client.send("\(method) /m HTTP/1.1\r\nHost: a\r\n\r\n")
            let response = try #require(try client.readResponse())
            #expect(response.bodyText == answer, "\(method)")
        }
        // CONNECT's target is an authority; HEAD's answer has no body.
        try client.send("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")
        #expect(try client.readResponse()?.bodyText == "doCONNECT")
        try client.send("HEAD /m HTTP/1.1\r\nHost: a\r\n\r\n")
        let head = try #require(try client.readResponse(headRequest: true))
        #expect(head.header("Content-Length") == "6")
    }

    @Test func sendResponseOnlyWritesNoServerOrDateHeader() throws {
        let running = try RunningServer(HooksHandler.self)
        defer { running.stop() }
        let response = try exchange(running.port, "GET /only HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.header("Server") == nil)
        #expect(response.header("Date") == nil)
        #expect(response.bodyText == "ok")
    }

    @Test func connectionCloseHeaderClosesTheConnection() throws {
        let running = try RunningServer(HooksHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET /close HTTP/1.1\r\nHost: a\r\n\r\n")
        let response = try #require(try client.readResponse())
        #expect(response.bodyText == "bye")
        #expect(client.isClosedByServer())
    }

    @Test func sendErrorBuildsPythonsPageWithEscaping() throws {
        let running = try RunningServer(HooksHandler.self)
        defer { running.stop() }
        let response = try exchange(running.port, "GET /error-custom HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.statusLine == "HTTP/1.1 404 No <such> thing")
        #expect(response.header("Connection") == "close")
        #expect(response.header("Content-Type") == "text/html;charset=utf-8")
        #expect(response.header("Content-Length") == String(response.body.count))
        #expect(response.bodyText.contains("<p>Message: No &lt;such&gt; thing.</p>"))
        #expect(response.bodyText.contains("<p>Error code explanation: 404 - Gone &amp; lost.</p>"))
        #expect(response.bodyText.hasPrefix("<!DOCTYPE HTML>\n<html lang=\"en\">"))
    }

    @Test func sendErrorOmitsTheBodyFor204AndForHEAD() throws {
        let running = try RunningServer(HooksHandler.self)
        defer { running.stop() }
        let noContent = try exchange(running.port, "GET /error-204 HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(noContent.status == 204)
        #expect(noContent.header("Content-Type") == nil)
        #expect(noContent.header("Content-Length") == nil)
        let client = try running.client()
        try client.send("HEAD /missing HTTP/1.1\r\nHost: a\r\n\r\n")
        let head = try #require(try client.readResponse(headRequest: true))
        #expect(head.status == 501)
        #expect(head.header("Content-Length") != nil)
        #expect(try client.readToEOF().isEmpty)  // no body bytes, then close
    }

    @Test func customErrorFormatContentTypeAndServerVersion() throws {
        let running = try RunningServer(CustomErrorHandler.self)
        defer { running.stop() }
        let response = try exchange(running.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.status == 501)
        #expect(response.bodyText == "E501|Unsupported method (&#x27;GET&#x27;)|Server does not support this operation|100%"
                || response.bodyText == "E501|Unsupported method ('GET')|Server does not support this operation|100%")
        #expect(response.header("Content-Type") == "text/plain")
        #expect(response.header("Server")?.hasPrefix("Custom/1.0 Swift/") == true)
    }

    @Test func unknownMethodsGoToDoMethodAndDefaultTo501() throws {
        let running = try RunningServer(HooksHandler.self)
        defer { running.stop() }
        #expect(try exchange(running.port, "BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n").status == 418)
        let response = try exchange(running.port, "FOO / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.statusLine == "HTTP/1.1 501 Unsupported method ('FOO')")
        #expect(try exchange(running.port, "DELETE / HTTP/1.1\r\nHost: a\r\n\r\n").status == 501)
    }

    @Test func httpStatusIsAcceptedWhereACodeIs() throws {
        let running = try RunningServer(HooksHandler.self)
        defer { running.stop() }
        let response = try exchange(running.port, "GET /status-enum HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.statusLine == "HTTP/1.1 201 Created")
        #expect(response.header("Content-Length") == "0")
    }

    @Test func sendHeaderRefusesCRLFAndLogsWhy() throws {
        let running = try RunningServer(HooksHandler.self)
        defer { running.stop() }
        let response = try exchange(running.port, "GET /inject HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.status == 200)
        #expect(response.header("Set-Cookie") == nil)
        #expect(response.header("X-Evil") == nil)
        #expect(response.header("X-Ok") == "fine")
        #expect(LogBook.shared.contains("/inject refused header \"X-Evil\""))
    }

    @Test func flushHeadersLetsAHandlerFrameByHand() throws {
        let running = try RunningServer(HooksHandler.self)
        defer { running.stop() }
        let response = try exchange(running.port, "GET /flush-headers HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.bodyText == "hello")
    }

    @Test func leadingDoubleSlashIsReducedToOne() throws {
        let running = try RunningServer(HooksHandler.self)
        defer { running.stop() }
        let response = try exchange(running.port, "GET //evil.example/x HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.header("X-Path") == "/evil.example/x")
    }

    @Test func logRequestWritesPythonsLine() throws {
        let running = try RunningServer(HooksHandler.self)
        defer { running.stop() }
        _ = try exchange(running.port, "GET /logged?q=1 HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(LogBook.shared.contains("/logged?q=1 \"GET /logged?q=1 HTTP/1.1\" 200 -"))
        _ = try exchange(running.port, "GET /requestline-first HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(LogBook.shared.contains("/requestline-first \"GET /requestline-first HTTP/1.1\" 200 -"))
        // A target byte above 0x7F (obs-text) is logged as `requestline` reads it: ISO-8859-1.
        let client = try running.client()
        try client.send(Array("GET /caf".utf8) + [0xE9] + Array(" HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        let response = try #require(try client.readResponse())
        #expect(response.bodyText.hasSuffix("GET /caf\u{E9} HTTP/1.1"))
        #expect(LogBook.shared.contains("\"GET /caf\u{E9} HTTP/1.1\" 200 -"), "\(LogBook.shared.all.suffix(3))")
    }

    @Test func http10ClosesUnlessItAsksForKeepAlive() throws {
        let running = try RunningServer(HooksHandler.self)
        defer { running.stop() }
        let plain = try running.client()
        try plain.send("GET /a HTTP/1.0\r\n\r\n")
        let first = try #require(try plain.readResponse())
        #expect(first.statusLine.hasPrefix("HTTP/1.1 200"))
        #expect(plain.isClosedByServer())

        let keepAlive = try running.client()
        for _ in 0..<3 {
            try keepAlive.send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let response = try #require(try keepAlive.readResponse())
            #expect(response.header("Connection") == "keep-alive")
            #expect(response.header("Content-Length") != nil)
        }
    }

    @Test func http09RequestGetsTheBodyAlone() throws {
        let running = try RunningServer(HooksHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET /old\r\n")
        let bytes = try client.readToEOF()
        #expect(String(decoding: bytes, as: UTF8.self) == "GET /old HTTP/0.9 GET /old")
    }
}
