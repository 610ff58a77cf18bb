import Foundation
import Testing
@testable import BaseHTTPServer

/// 64 KiB for every request: a large answer for backpressure tests.
final class LargeAnswerHandler: BaseHTTPRequestHandler {
    static let body = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
    override func logMessage(_ message: String) {}
    override func doGET() throws {
        sendResponse(200)
        endHeaders()
        wfile.write(LargeAnswerHandler.body)
    }
}

/// Reads this process's resident set size from /proc (kB).
func residentKilobytes() -> Int {
    guard let status = readTextFile("/proc/self/status"),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    return Int(line.split(separator: " ")[1]) ?? 0
}

@Suite("Deadlines, connection caps and backpressure", .serialized)
struct TimeoutsAndLimitsTests {
    // The deadlines' logic is ConnectionStateMachineTests' (with a fake clock); these check
    // the wiring over real sockets, moving the server's deadline clock instead of waiting.

    @Test func slowlorisGets408AtTheHeadDeadlineWhileOthersAreServed() throws {
        let running = try RunningServer(EchoHandler.self) { $0.headTimeout = 30 }
        defer { running.stop() }
        let slow = try running.client()
        let request = Array("GET / HTTP/1.1\r\nHost: a\r\nX-Long: trickle-trickle-trickle\r\n\r\n".utf8)
        // Trickled bytes, a request from another client between each: all answered.
        for byte in request.prefix(20) {
            try slow.send([byte])
            #expect(try exchange(running.port, "GET /other HTTP/1.1\r\nHost: a\r\n\r\n").status == 200)
        }
        running.advanceDeadlineClock(by: 31)
        let response = try slow.readResponse()
        #expect(response?.status == 408)
        #expect(slow.isClosedByServer())
    }

    @Test func stalledBodyIsReapedAtTheBodyDeadline() throws {
        let running = try RunningServer(EchoHandler.self) { $0.bodyTimeout = 60 }
        defer { running.stop() }
        let client = try running.client()
        try client.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly some")
        #expect(try exchange(running.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").status == 200)
        running.advanceDeadlineClock(by: 61)
        let response = try client.readResponse()
        #expect(response?.status == 408)
        #expect(client.isClosedByServer())
    }

    @Test func idleKeepAliveConnectionIsClosedAtTheIdleDeadline() throws {
        let running = try RunningServer(EchoHandler.self) { $0.idleTimeout = 60 }
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try client.readResponse()?.status == 200)
        running.advanceDeadlineClock(by: 59)
        #expect(running.server.connectionCount == 1)  // not yet
        running.advanceDeadlineClock(by: 2)
        #expect(client.isClosedByServer())
    }

    @Test func atMaxConnectionsTheServerStopsAcceptingAndResumesBelow() throws {
        let running = try RunningServer(EchoHandler.self) { $0.maxConnections = 2 }
        defer { running.stop() }
        let first = try running.client()
        let second = try running.client()
        try first.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
        try second.send("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try first.readResponse()?.status == 200)
        #expect(try second.readResponse()?.status == 200)
        // The third completes its handshake in the kernel's backlog but is not served yet.
        let third = try RawClient(port: running.port, timeoutSeconds: 1)
        try third.send("GET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(throws: (any Error).self) { _ = try third.readResponse() }
        #expect(running.server.connectionCount == 2)
        // When one leaves, the waiting third takes its place and is answered.
        try first.send("GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(try first.readResponse()?.status == 200)
        let waiting = try RawClient(port: running.port, timeoutSeconds: 1)
        try waiting.send("GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        let thirdAnswer = try RawClient(port: 0, adopting: third)
        #expect(try thirdAnswer.readResponse()?.status == 200)
        #expect(throws: (any Error).self) { _ = try waiting.readResponse() }  // still at the cap
        try thirdAnswer.send("GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(try thirdAnswer.readResponse()?.status == 200)
        #expect(try RawClient(port: 0, adopting: waiting).readResponse()?.status == 200)
    }

    @Test func clientThatNeverReadsCannotGrowTheServersMemory() throws {
        let running = try RunningServer(LargeAnswerHandler.self) {
            $0.writeTimeout = 1
            $0.outputHighWaterMark = 256 * 1024
        }
        defer { running.stop() }
        let before = try MemoryReading.now()
        let greedy = try running.client()
        let request = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        let batch = [UInt8]((0..<1000).flatMap { _ in request })
        var sentRequests = 0
        // 100,000 pipelined requests for 64 KiB each (6.4 GB of answers), never reading.
        let deadline = Date().addingTimeInterval(5)
        let flags = fcntl(greedy.fd, F_GETFL)
        _ = fcntl(greedy.fd, F_SETFL, flags | O_NONBLOCK)
        while sentRequests < 100_000 && Date() < deadline {
            let sent = batch.withUnsafeBytes { send(greedy.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent > 0 { sentRequests += sent / request.count } else { usleep(10_000) }
        }
        usleep(300_000)
        let during = try MemoryReading.now()
        // Measured: heap +0.45-0.65 MB in every pass; RSS +0.1 MB (plain, release). Without
        // backpressure every request parsed queues 64 KiB: 6.4 GB for all of them.
        expectMemoryGrowth(from: before, to: during, "never-reading client",
                           heapBelow: 8 * 1024, rssBelow: 64 * 1024)
        // Meanwhile another client is answered promptly.
        #expect(try exchange(running.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").body.count == 64 * 1024)
        // The write timeout closes the connection that made no progress.
        running.advanceDeadlineClock(by: 2)
        #expect(waitForConnections(running, toReach: 0) == 0)
    }

    @Test func slowReaderGetsEveryPipelinedResponseInOrderIntact() throws {
        let running = try RunningServer(IdentityHandler.self) { $0.outputHighWaterMark = 64 * 1024 }
        defer { running.stop() }
        let client = try running.client()
        let count = 5000
        let requests = (0..<count).map { "GET /\($0) HTTP/1.1\r\nHost: a\r\n\r\n" }.joined()
        let writer = Thread { try? client.send(requests) }
        writer.start()
        usleep(200_000)  // let the server hit its high-water mark first
        for index in 0..<count {
            let response = try #require(try client.readResponse())
            #expect(response.bodyText.hasSuffix(" /\(index) -"))
        }
    }
}
