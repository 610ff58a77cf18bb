import Foundation
import Glibc
import Testing
import UVLoop
@testable import BaseHTTPServer

/// What the streaming handlers saw, by test key (the first path segment), across threads.
final class StreamLog: Sendable {
    static let shared = StreamLog()
    private let events = Locked<[String: [String]]>([:])

    func record(_ key: String, _ event: String) {
        events.withLock { $0[key, default: []].append(event) }
    }

    func events(_ key: String) -> [String] {
        events.withLock { $0[key] ?? [] }
    }

    /// Waits (polling) until `key` has an event starting with `prefix`; returns it.
    func waitFor(_ key: String, _ prefix: String, seconds: Double = 10) -> String? {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if let event = events(key).first(where: { $0.hasPrefix(prefix) }) { return event }
            usleep(2000)
        }
        return nil
    }
}

/// Takes each body as it arrives. The path is `/KEY/MODE`:
/// - `sink`: reads to the end, answers `bytes=N pieces=P largest=L sum=S`;
/// - `hold`: like sink, but after the first piece waits until the test calls `release(KEY)`;
/// - `refuse`: answers 401 without reading;
/// - `early`: answers at once without deferring, then reads.
/// Every outcome of a read is logged under KEY.
class StreamingSink: BaseHTTPRequestHandler {
    override class var streamsRequestBodies: Bool { true }
    override func logMessage(_ message: String) {}

    nonisolated(unsafe) static var held: [String: () -> Void] = [:]  // Loop thread only.

    /// Lets a held read go on (from any thread).
    static func release(_ key: String, on server: HTTPServer) {
        server.loop.execute { held.removeValue(forKey: key)?() }
    }

    override func doPUT() throws { try doPOST() }

    override func doPOST() throws {
        let parts = path.split(separator: "/").map(String.init)
        let key = parts.first ?? "", mode = parts.count > 1 ? parts[1] : "sink"
        let log = StreamLog.shared
        switch mode {
        case "refuse":
            sendError(401)
            return
        case "early":
            sendResponse(200)
            sendHeader("Content-Length", "5")
            endHeaders()
            wfile.write("early")
            readBody { part in log.record(key, "after: \(part)") }
            return
        default:
            break
        }
        let response = deferResponse()
        var count = 0, pieces = 0, largest = 0
        var sum: UInt64 = 0
        var holding = mode == "hold"
        func next() {
            readBody { [self] part in
                switch part {
                case .data(let bytes):
                    count += bytes.count
                    pieces += 1
                    largest = max(largest, bytes.count)
                    for byte in bytes { sum = sum &* 31 &+ UInt64(byte) }
                    if holding {
                        holding = false
                        log.record(key, "holding after \(count)")
                        StreamingSink.held[key] = { next() }
                    } else {
                        next()
                    }
                case .end:
                    let text = "bytes=\(count) pieces=\(pieces) largest=\(largest) sum=\(sum)"
                    log.record(key, "end \(text)")
                    sendResponse(200)
                    sendHeader("Content-Length", String(text.utf8.count))
                    endHeaders()
                    wfile.write(text)
                    response.finish()
                case .failed(let error):
                    log.record(key, "failed \(error) after \(count)")
                    response.finish()
                }
            }
        }
        next()
    }
}

/// Refuses bodies over 1000 bytes.
final class SmallStreamingSink: StreamingSink {
    override class var maxBodySize: Int? { 1000 }
}

/// Buffers bodies as Python's handlers do, and reads them through `readBody` too.
final class WholeBodyReader: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) {}
    override func doPOST() throws {
        let first = rfile.read(path == "/all" ? 100 : 3)
        var rest: [BodyPart] = []
        readBody { rest.append($0) }
        readBody { rest.append($0) }
        let text = "first=\(String(decoding: first, as: UTF8.self)) then=\(rest)"
        sendResponse(200)
        sendHeader("Content-Length", String(text.utf8.count))
        endHeaders()
        wfile.write(text)
    }
}

/// `GET /endless/KEY` writes 64 KiB pieces for as long as the client is there, each after the
/// output drained; logs how many it wrote, and when it learnt the client had gone.
final class EndlessWriter: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) {}
    override func doGET() throws {
        let key = String(path.split(separator: "/").last ?? "")
        let response = deferResponse()
        sendResponse(200)
        endHeaders()
        let piece = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
        var written = 0
        func more() {
            wfile.write(piece)
            written += piece.count
            StreamLog.shared.record(key, "wrote \(written)")
            waitForDrain { clientIsThere in
                if clientIsThere {
                    more()
                } else {
                    StreamLog.shared.record(key, "gone after \(written)")
                    response.finish()
                }
            }
        }
        more()
    }
}

/// `GET /tick/KEY` writes four bytes a turn, each after the output drained (as it has at
/// once, with a client that reads as fast as it can), until `GET /stop/KEY`
/// asks it to stop or it has written `Ticker.cap` pieces; then it says which in its last line.
final class Ticker: BaseHTTPRequestHandler {
    static let cap = 1_000_000
    override func logMessage(_ message: String) {}
    override func doGET() throws {
        let parts = path.split(separator: "/")
        let key = String(parts.last ?? "")
        if parts.first == "stop" {
            StreamLog.shared.record(key, "stop")
            sendResponse(200)
            sendHeader("Content-Length", "0")
            endHeaders()
            return
        }
        let response = deferResponse()
        sendResponse(200)
        endHeaders()
        var pieces = 0
        func tick() {
            let stopped = StreamLog.shared.events(key).contains("stop")
            if stopped || pieces == Ticker.cap {
                wfile.write("\n\(stopped ? "stopped" : "capped") after \(pieces)\n")
                response.finish()
                return
            }
            wfile.write("tick")
            pieces += 1
            if pieces == 1 { StreamLog.shared.record(key, "ticking") }
            waitForDrain { clientIsThere in clientIsThere ? tick() : response.finish() }
        }
        tick()
    }
}

/// A body of `count` bytes, and the sum StreamingSink computes over it.
func patternedBody(_ count: Int) -> (bytes: [UInt8], sum: UInt64) {
    let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
    var sum: UInt64 = 0
    for byte in bytes { sum = sum &* 31 &+ UInt64(byte) }
    return (bytes, sum)
}

@Suite("Streamed request bodies and response flow")
struct StreamingBodyTests {
    @Test func aStreamedBodyArrivesWholeInPiecesNoLargerThanTheInputMark() throws {
        let running = try RunningServer(StreamingSink.self)
        defer { running.stop() }
        let (body, sum) = patternedBody(6 << 20)
        let client = try running.client()
        try client.send("PUT /a1/sink HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.count)\r\n\r\n")
        try client.send(body)
        let response = try #require(try client.readResponse())
        #expect(response.status == 200)
        let fields = Dictionary(uniqueKeysWithValues: response.bodyText.split(separator: " ").map {
            let pair = $0.split(separator: "=")
            return (String(pair[0]), String(pair[1]))
        })
        #expect(fields["bytes"] == String(body.count))
        #expect(fields["sum"] == String(sum))
        #expect(Int(fields["largest"] ?? "") ?? .max <= running.server.configuration.inputHighWaterMark + 128 * 1024)
        // The connection goes on.
        try client.send("PUT /a1b/sink HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
        #expect(try client.readResponse()?.bodyText.hasPrefix("bytes=3 ") == true)
    }

    @Test func aHandlerThatDoesNotTakeItsBodyStallsTheSenderNotTheServersMemory() throws {
        let running = try RunningServer(StreamingSink.self)
        defer { running.stop() }
        let (body, sum) = patternedBody(48 << 20)
        let client = try running.client()
        try client.send("PUT /b1/hold HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.count)\r\n\r\n")
        // Send without blocking until the kernel takes no more: the server stopped reading.
        let flags = fcntl(client.fd, F_GETFL)
        _ = fcntl(client.fd, F_SETFL, flags | O_NONBLOCK)
        var sent = 0
        var stalledFor = 0
        while sent < body.count && stalledFor < 200 {
            let count = body[sent...].withUnsafeBytes { Glibc.send(client.fd, $0.baseAddress, min($0.count, 1 << 16), Int32(MSG_NOSIGNAL)) }
            if count > 0 {
                sent += count
                stalledFor = 0
            } else {
                stalledFor += 1
                usleep(1000)
            }
        }
        #expect(StreamLog.shared.waitFor("b1", "holding") != nil)
        #expect(sent < body.count / 2, "the sender was not held back: \(sent) bytes taken")
        _ = fcntl(client.fd, F_SETFL, flags)
        StreamingSink.release("b1", on: running.server)
        try client.send(Array(body[sent...]))
        let response = try #require(try client.readResponse())
        #expect(response.bodyText.contains("bytes=\(body.count) "))
        #expect(response.bodyText.hasSuffix("sum=\(sum)"))
        let largest = response.bodyText.split(separator: " ").first { $0.hasPrefix("largest=") }
            .flatMap { Int($0.dropFirst(8)) } ?? .max
        #expect(largest <= running.server.configuration.inputHighWaterMark + 128 * 1024)
    }

    @Test func continueIsSentWhenTheHandlerStartsReadingAndNotWhenItAnswersFirst() throws {
        let running = try RunningServer(StreamingSink.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("POST /c1/sink HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        let interim = try #require(try client.readResponse())
        #expect(interim.status == 100)
        try client.send("hello")
        #expect(try client.readResponse()?.bodyText.hasPrefix("bytes=5 ") == true)

        let refused = try running.client()
        try refused.send("POST /c2/refuse HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        let answer = try #require(try refused.readResponse())
        #expect(answer.status == 401)
        #expect(refused.isClosedByServer())
    }

    @Test func aChunkedBodyStreamsDecoded() throws {
        let running = try RunningServer(StreamingSink.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("POST /d1/sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        var all: [UInt8] = []
        for size in [1, 100, 70_000, 3] {
            let piece = [UInt8](repeating: UInt8(65 + size % 26), count: size)
            all += piece
            try client.send(String(size, radix: 16) + "\r\n")
            try client.send(piece)
            try client.send("\r\n")
        }
        try client.send("0\r\n\r\n")
        var sum: UInt64 = 0
        for byte in all { sum = sum &* 31 &+ UInt64(byte) }
        let response = try #require(try client.readResponse())
        #expect(response.bodyText.hasPrefix("bytes=\(all.count) "))
        #expect(response.bodyText.hasSuffix("sum=\(sum)"))
    }

    @Test func aBadChunkMidBodyIsAnswered400AndTheHandlerIsTold() throws {
        let running = try RunningServer(StreamingSink.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("POST /e1/sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n")
        #expect(try client.readResponse()?.status == 400)
        #expect(StreamLog.shared.waitFor("e1", "failed malformed after 3") != nil, "\(StreamLog.shared.events("e1"))")
    }

    @Test func theHandlersBodyLimitAnswers413BeforeItRunsOrMidBody() throws {
        let running = try RunningServer(SmallStreamingSink.self)
        defer { running.stop() }
        let declared = try running.client()
        try declared.send("POST /f1/sink HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\nExpect: 100-continue\r\n\r\n")
        #expect(try declared.readResponse()?.status == 413)
        #expect(StreamLog.shared.events("f1").isEmpty)  // The handler never ran.

        let chunked = try running.client()
        try chunked.send("POST /f2/sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        try chunked.send("258\r\n" + String(repeating: "a", count: 600) + "\r\n")
        try chunked.send("258\r\n" + String(repeating: "b", count: 600) + "\r\n")
        #expect(try chunked.readResponse()?.status == 413)
        #expect(StreamLog.shared.waitFor("f2", "failed tooLarge") != nil, "\(StreamLog.shared.events("f2"))")
    }

    @Test func aClientThatStopsSendingGets408AtTheBodyDeadline() throws {
        let running = try RunningServer(StreamingSink.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("PUT /g1/sink HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
        // The handler took "abc" and waits: only then does the body deadline run.
        var waited = 0
        while waited < 500 && !(running.server.connectionCount == 1) { usleep(1000); waited += 1 }
        usleep(20_000)
        running.advanceDeadlineClock(by: running.server.configuration.bodyTimeout + 1)
        #expect(try client.readResponse()?.status == 408)
        #expect(StreamLog.shared.waitFor("g1", "failed timedOut after 3") != nil, "\(StreamLog.shared.events("g1"))")
    }

    @Test func aClientThatLeavesMidBodyIsReportedGone() throws {
        let running = try RunningServer(StreamingSink.self)
        defer { running.stop() }
        do {
            let client = try running.client()
            try client.send("PUT /h1/sink HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc")
            usleep(20_000)
            client.reset()
        }
        #expect(StreamLog.shared.waitFor("h1", "failed clientGone") != nil, "\(StreamLog.shared.events("h1"))")
    }

    @Test func anAnswerBeforeTheBodyIsReadClosesTheConnectionAndTheReadIsTold() throws {
        let running = try RunningServer(StreamingSink.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("PUT /i1/early HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc")
        let response = try #require(try client.readResponse())
        #expect(response.bodyText == "early")
        #expect(client.isClosedByServer())
        #expect(StreamLog.shared.waitFor("i1", "after: failed(BaseHTTPServer.RequestBodyError.responseFinished)") != nil,
                "\(StreamLog.shared.events("i1"))")
    }

    @Test func aBodyWhoseLastBytesPauseReadingStillEnds() throws {
        // Head and body in one read, over the input mark: reading pauses with every byte in,
        // and the parser's end of the body must still reach the handler.
        let running = try RunningServer(StreamingSink.self) { $0.inputHighWaterMark = 1000 }
        defer { running.stop() }
        let client = try running.client()
        try client.send("PUT /m1/sink HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + String(repeating: "z", count: 5000))
        #expect(try client.readResponse()?.bodyText.hasPrefix("bytes=5000 ") == true)
    }

    @Test func aRequestPipelinedBehindAStreamedBodyIsAnsweredAfterIt() throws {
        let running = try RunningServer(StreamingSink.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("PUT /j1/sink HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd"
                        + "PUT /j2/sink HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nxy")
        #expect(try client.readResponse()?.bodyText.hasPrefix("bytes=4 ") == true)
        #expect(try client.readResponse()?.bodyText.hasPrefix("bytes=2 ") == true)
    }

    @Test func aHandlerThatReadsWholeBodiesGetsTheRestThroughReadBody() throws {
        let running = try RunningServer(WholeBodyReader.self)
        defer { running.stop() }
        let response = try exchange(running.port, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\nabcdefgh")
        #expect(response.bodyText == "first=abc then=[BaseHTTPServer.BodyPart.data([100, 101, 102, 103, 104]), BaseHTTPServer.BodyPart.end]")
        let all = try exchange(running.port, "POST /all HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz")
        #expect(all.bodyText == "first=xyz then=[BaseHTTPServer.BodyPart.end, BaseHTTPServer.BodyPart.end]")
    }

    @Test func anEndlessResponseToASlowReaderStaysBoundedAndStopsWhenTheClientGoes() throws {
        let running = try RunningServer(EndlessWriter.self)
        defer { running.stop() }
        var client: RawClient? = try running.client()
        try client!.send("GET /endless/k1 HTTP/1.1\r\nHost: a\r\n\r\n")
        // Read slowly: 2 MiB over ~100 reads.
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 20_000)
        while received < 2 << 20 {
            let count = buffer.withUnsafeMutableBytes { recv(client!.fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            received += count
            if received % 5 == 0 { usleep(100) }
        }
        let written = StreamLog.shared.events("k1").compactMap { $0.hasPrefix("wrote ") ? Int($0.dropFirst(6)) : nil }.max() ?? 0
        // Written but not read: at most the high-water mark, one piece, and the kernel's buffers.
        #expect(written - received <= running.server.configuration.outputHighWaterMark + (64 << 10) + (16 << 20),
                "wrote \(written), read \(received)")
        client!.reset()
        client = nil  // Closed: the server's next write is reset.
        #expect(StreamLog.shared.waitFor("k1", "gone after") != nil, "\(StreamLog.shared.events("k1").suffix(3))")
    }

    /// A response that goes on at once after each piece (its output always drained) gives
    /// way to other connections every turn: another client's request is answered while it is
    /// still going, not after it.
    @Test func aResponseThatNeverWaitsForItsClientDoesNotHoldUpOtherConnections() throws {
        let running = try RunningServer(Ticker.self)
        defer { running.stop() }
        let ticking = try running.client()
        try ticking.send("GET /tick/t1 HTTP/1.1\r\nHost: a\r\n\r\n")
        // Read it all as it comes, so the kernel always takes the next piece: the response
        // never has to wait for its client.
        let done = DispatchSemaphore(value: 0)
        let body = Locked("")
        Thread { [ticking] in
            if let response = try? ticking.readResponse() { body.withLock { $0 = response.bodyText } }
            done.signal()
        }.start()
        #expect(StreamLog.shared.waitFor("t1", "ticking") != nil)
        let other = try running.client()
        try other.send("GET /stop/t1 HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try other.readResponse()?.status == 200)
        #expect(done.wait(timeout: .now() + 60) == .success)
        let lastLine = body.withLock { $0 }.split(separator: "\n").last.map(String.init) ?? ""
        #expect(lastLine.hasPrefix("stopped after "), "\(lastLine)")
    }
}
