import Foundation
import Testing
import UVLoop
@testable import BaseHTTPServer

/// Reports which handler instance answered and what it saw before this request.
final class IdentityHandler: BaseHTTPRequestHandler {
    var served = 0
    override func logMessage(_ message: String) {}
    override func doGET() throws {
        served += 1
        sendResponse(200)
        endHeaders()
        wfile.write("\(ObjectIdentifier(self).hashValue) \(served) \(path) \(headers["X-Only-First"] ?? "-")")
    }
}

/// Ignores the request body entirely.
final class IgnoringHandler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) {}
    override func doPOST() throws {
        sendResponse(200)
        endHeaders()
        wfile.write("ignored")
    }
    override func doGET() throws {
        sendResponse(200)
        endHeaders()
        wfile.write("got \(path)")
    }
}

/// Answers `/slow` 50 ms later from a timer; everything else at once.
final class DeferringHandler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) {}
    override func doGET() throws {
        guard path.hasPrefix("/slow") else {
            sendResponse(200)
            endHeaders()
            wfile.write("fast \(path)")
            return
        }
        let deferred = deferResponse()
        let timer = LoopTimer(loop: server.loop)
        timer.start(after: 50) { [self] in
            timer.close()
            sendResponse(200)
            endHeaders()
            wfile.write("slow \(path)")
            deferred.finish()
        }
    }
}

/// Answers from a timer, then notes what its request attributes read once the response is
/// finished; `/report` answers with that note.
final class AttributeLifetimeHandler: BaseHTTPRequestHandler {
    var afterFinish = "nothing yet"
    override func logMessage(_ message: String) {}
    override func doGET() throws {
        if path == "/report" {
            sendResponse(200)
            endHeaders()
            wfile.write(afterFinish)
            return
        }
        let deferred = deferResponse()
        let timer = LoopTimer(loop: server.loop)
        timer.start(after: 10) { [self] in
            timer.close()
            sendResponse(200)
            endHeaders()
            wfile.write("\(command ?? "nil") [\(path)] \(headers["X-A"] ?? "-")")
            deferred.finish()
            afterFinish = "\(command ?? "nil") [\(path)] \(headers["X-A"] ?? "-") [\(requestline)]"
        }
    }
}

/// Refuses request bodies announced with `Expect: 100-continue` when `/refuse`.
final class ExpectHandler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) {}
    override func handleExpect100() -> Bool {
        if path == "/refuse" {
            sendError(403, message: "Not that body")
            return false
        }
        return super.handleExpect100()
    }
    override func doPOST() throws {
        sendResponse(200)
        endHeaders()
        wfile.write(rfile.read())
    }
}

@Suite("Connections: keep-alive, pipelining, deferral")
struct ConnectionTests {
    @Test func hundredPipelinedRequestsInOneWriteAreAnsweredInOrder() throws {
        let running = try RunningServer(IdentityHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send((0..<100).map { "GET /\($0) HTTP/1.1\r\nHost: a\r\n\r\n" }.joined())
        var firstIdentity: Substring?
        for index in 0..<100 {
            let response = try #require(try client.readResponse())
            let words = response.bodyText.split(separator: " ")
            #expect(words[1] == "\(index + 1)")
            #expect(words[2] == "/\(index)")
            if firstIdentity == nil { firstIdentity = words[0] }
            #expect(words[0] == firstIdentity)  // one handler instance per connection
        }
    }

    @Test func perRequestStateIsResetBetweenRequests() throws {
        let running = try RunningServer(IdentityHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET /a HTTP/1.1\r\nHost: a\r\nX-Only-First: yes\r\n\r\n")
        #expect(try client.readResponse()?.bodyText.hasSuffix("/a yes") == true)
        try client.send("GET /b HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try client.readResponse()?.bodyText.hasSuffix("/b -") == true)
    }

    @Test func requestFedOneByteAtATimeIsAnswered() throws {
        let running = try RunningServer(EchoHandler.self)
        defer { running.stop() }
        let client = try running.client()
        let request = "POST /bytes HTTP/1.1\r\nHost: a\r\nX-Name: Value\r\nContent-Length: 5\r\n\r\nhello"
        for byte in request.utf8 {
            try client.send([byte])
            usleep(200)
        }
        let response = try #require(try client.readResponse())
        #expect(response.bodyText.contains("POST /bytes HTTP/1.1"))
        #expect(response.bodyText.contains("X-Name: Value"))
        #expect(response.bodyText.contains("body 5: hello"))
    }

    @Test func chunkedBodyIsDecodedForRfileAndHeadersKeepOrderCaseAndRepeats() throws {
        let running = try RunningServer(EchoHandler.self)
        defer { running.stop() }
        let response = try exchange(running.port,
            "POST /c HTTP/1.1\r\nhost: a\r\nX-Rep: 1\r\nx-rep: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n")
        #expect(response.bodyText.contains("host: a\nX-Rep: 1\nx-rep: 2\n"))
        #expect(response.bodyText.contains("body 11: hello world"))
    }

    @Test func handlerThatIgnoresTheBodyDoesNotBreakTheNextRequest() throws {
        let running = try RunningServer(IgnoringHandler.self)
        defer { running.stop() }
        let client = try running.client()
        let body = String(repeating: "b", count: 100_000)
        try client.send("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        #expect(try client.readResponse()?.bodyText == "ignored")
        try client.send("POST /q HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try client.readResponse()?.bodyText == "ignored")
        #expect(try client.readResponse()?.bodyText == "got /next")
    }

    @Test func expect100ContinueSendsAnInterimResponseThenTheAnswer() throws {
        let running = try RunningServer(ExpectHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        let interim = try #require(try client.readResponse())
        #expect(interim.statusLine == "HTTP/1.1 100 Continue")
        try client.send("data")
        let final = try #require(try client.readResponse())
        #expect(final.status == 200)
        #expect(final.bodyText == "data")
    }

    @Test func refusedExpectationClosesWithoutReadingTheBody() throws {
        let running = try RunningServer(ExpectHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("POST /refuse HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        let response = try #require(try client.readResponse())
        #expect(response.status == 403)
        #expect(client.isClosedByServer())
    }

    @Test func deferredResponseWaitsWhileOthersAreServedAndPipelinedRequestsWait() throws {
        raiseOpenFileLimit()
        let running = try RunningServer(DeferringHandler.self)
        defer { running.stop() }
        let slow = try running.client()
        let started = Date()
        try slow.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n")
        // 500 other connections are answered while the slow one waits.
        let others = try (0..<500).map { _ in try running.client() }
        for (index, other) in others.enumerated() { try other.send("GET /o\(index) HTTP/1.1\r\nHost: a\r\n\r\n") }
        for (index, other) in others.enumerated() {
            #expect(try other.readResponse()?.bodyText == "fast /o\(index)")
        }
        let fastDone = Date().timeIntervalSince(started)
        #expect(try slow.readResponse()?.bodyText == "slow /slow")
        let slowDone = Date().timeIntervalSince(started)
        #expect(try slow.readResponse()?.bodyText == "fast /after")
        #expect(slowDone >= 0.045)
        #expect(fastDone < slowDone || fastDone < 0.05)
    }

    @Test func requestAttributesLastUntilTheResponseIsFinished() throws {
        let running = try RunningServer(AttributeLifetimeHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET /first HTTP/1.1\r\nHost: a\r\nX-A: yes\r\n\r\n")
        #expect(try client.readResponse()?.bodyText == "GET [/first] yes")
        try client.send("GET /report HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try client.readResponse()?.bodyText == "nil [] - []")
    }

    @Test func clientGoneDuringADeferredResponseIsHarmless() throws {
        let running = try RunningServer(DeferringHandler.self)
        defer { running.stop() }
        do {
            let client = try running.client()
            try client.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
            client.reset()
        }
        usleep(150_000)  // The timer fires after the client left: its writes are dropped.
        #expect(try exchange(running.port, "GET /still HTTP/1.1\r\nHost: a\r\n\r\n").bodyText == "fast /still")
        #expect(running.server.connectionCount <= 1)
    }
}

func raiseOpenFileLimit() {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}
