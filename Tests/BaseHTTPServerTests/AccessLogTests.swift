import Foundation
import Glibc
import Testing
@testable import BaseHTTPServer

/// Answers GET with its path as the body and logs through the library's own `logMessage`.
/// `/missing` gets a 404; `/stop` shuts the server down (from the loop thread) and answers;
/// `/many?N` logs N long lines from one call.
final class AccessLogHandler: BaseHTTPRequestHandler {
    override func doGET() throws {
        if path == "/missing" {
            sendError(404)
            return
        }
        if path == "/stop" { server.shutdown() }
        if path.hasPrefix("/many?"), let count = Int(path.dropFirst(6)) {
            let filler = String(repeating: "x", count: 100)
            for index in 0..<count { logMessage("line \(index) \(filler)") }
        }
        let body = Array(path.utf8)
        sendResponse(200)
        sendHeader("Content-Length", String(body.count))
        endHeaders()
        wfile.write(body)
    }
}

/// What `RecordingLogHandler`s were asked to log, in order.
private final class Messages: @unchecked Sendable {
    static let shared = Messages()
    private let lock = NSLock()
    private var messages: [String] = []
    func add(_ message: String) { lock.withLock { messages.append(message) } }
    func take(port: Int) -> [String] {
        lock.withLock {
            let tag = "[\(port)] "
            let mine = messages.filter { $0.hasPrefix(tag) }
            messages.removeAll { $0.hasPrefix(tag) }
            return mine.map { String($0.dropFirst(tag.count)) }
        }
    }
}

/// Overrides `logMessage` (and `logError`, which hands on to it) as a subclass of Python's
/// handler would: the batching must not take anything from it.
final class RecordingLogHandler: BaseHTTPRequestHandler {
    override func doGET() throws {
        if path == "/missing" {
            sendError(404)
            return
        }
        sendResponse(200)
        sendHeader("Content-Length", "0")
        endHeaders()
    }

    override func logError(_ message: String) {
        super.logError("error: " + message)
    }

    override func logMessage(_ message: String) {
        Messages.shared.add("[\(server.serverPort)] \(message)")
    }
}

/// A server's standard error for a test: a socket pair whose every `write(2)` arrives as one
/// record, so the test sees how the lines were batched as well as what they say.
final class LogCapture: @unchecked Sendable {
    let writeEnd: Int32
    let readEnd: Int32

    init() throws {
        var ends: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0, &ends) == 0 else {
            throw ClientError(description: "socketpair: errno \(errno)")
        }
        writeEnd = ends[0]
        readEnd = ends[1]
        var size: Int32 = 1 << 20  // a record as large as a batch can be
        setsockopt(writeEnd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(readEnd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(readEnd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(writeEnd)
        close(readEnd)
    }

    /// The next record: waits for one when `wait` (up to 10 s), else nil when none is there.
    private func record(wait: Bool) -> String? {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        let count = buffer.withUnsafeMutableBytes {
            recv(readEnd, $0.baseAddress, $0.count, wait ? 0 : Int32(MSG_DONTWAIT))
        }
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }

    /// Records until they hold `lines` lines in all (each waited for up to 10 s).
    func records(untilLines lines: Int) -> [String] {
        var records: [String] = []
        while records.reduce(0, { $0 + $1.count { $0 == "\n" } }) < lines, let next = record(wait: true) {
            records.append(next)
        }
        return records
    }

    /// The records written so far, without waiting for more.
    func recordsWritten() -> [String] {
        var records: [String] = []
        while let next = record(wait: false) { records.append(next) }
        return records
    }
}

/// Reads a pipe to its end on a thread of its own.
private final class PipeDrain: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var bytes: [UInt8] = []

    init(_ descriptor: Int32) {
        Thread { [self] in
            // Small reads: the pipe stays full, so writers wait inside their writes.
            var buffer = [UInt8](repeating: 0, count: 512)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                guard count > 0 else { break }
                bytes += buffer[0..<count]
            }
            done.signal()
        }.start()
    }

    /// Everything read, once the pipe has ended.
    func wait() -> String {
        done.wait()
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// `host - - [dd/Mon/yyyy hh:mm:ss] message`, Python's line; the message is returned.
private func message(ofLine line: Substring, host: String = "127.0.0.1") -> String? {
    let pattern = /(.+) - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4} \d{2}:\d{2}:\d{2}\] (.*)/
    guard let match = line.wholeMatch(of: pattern), match.1 == host else { return nil }
    return String(match.2)
}

/// The lines of `records`, checking that each record holds whole lines only.
private func lines(of records: [String], sourceLocation: SourceLocation = #_sourceLocation) -> [Substring] {
    for record in records {
        #expect(record.hasSuffix("\n"), "a record ends inside a line: \(record.debugDescription)",
                sourceLocation: sourceLocation)
    }
    return records.joined().split(separator: "\n", omittingEmptySubsequences: false).dropLast()
}

@Suite("Access log lines, batched")
struct AccessLogTests {
    @Test func pipelinedRequestsLogEveryLineInOrderInOneWrite() throws {
        let capture = try LogCapture()
        let running = try RunningServer(AccessLogHandler.self, beforeServing: { $0.logBuffer.descriptor = capture.writeEnd })
        defer { running.stop() }
        let client = try running.client()
        let count = 20
        // One send: the server reads the requests at once and answers them in one loop turn.
        try client.send((0..<count).map { "GET /\($0) HTTP/1.1\r\nHost: a\r\n\r\n" }.joined())
        for index in 0..<count {
            #expect(try client.readResponse()?.bodyText == "/\(index)")
        }
        let records = capture.records(untilLines: count)
        #expect(records.count == 1, "\(records.count) writes for \(count) lines")
        let messages = lines(of: records).map { message(ofLine: $0) }
        #expect(messages == (0..<count).map { "\"GET /\($0) HTTP/1.1\" 200 -" })
    }

    @Test func linesPastTheBatchLimitLeaveAtOnceInWholeLines() throws {
        let capture = try LogCapture()
        let running = try RunningServer(AccessLogHandler.self, beforeServing: { $0.logBuffer.descriptor = capture.writeEnd })
        defer { running.stop() }
        let count = 2000  // about 250 KiB of lines from one call of doGET
        #expect(try exchange(running.port, "GET /many?\(count) HTTP/1.1\r\nHost: a\r\n\r\n").status == 200)
        let records = capture.records(untilLines: count + 1)
        let limit = LogBuffer.batchLimit
        #expect(records.count >= 3)
        // Each record but the last was written as soon as it passed the limit: by one line.
        for record in records.dropLast() {
            #expect(record.utf8.count >= limit && record.utf8.count < limit + 200, "\(record.utf8.count)")
        }
        let messages = lines(of: records).map { message(ofLine: $0) }
        let filler = String(repeating: "x", count: 100)
        #expect(messages == (0..<count).map { "line \($0) \(filler)" } + ["\"GET /many?\(count) HTTP/1.1\" 200 -"])
    }

    @Test func theLastLinesAreWrittenWhenServeForeverReturns() throws {
        let capture = try LogCapture()
        let running = try RunningServer(AccessLogHandler.self, beforeServing: { $0.logBuffer.descriptor = capture.writeEnd })
        let client = try running.client()
        // The handler shuts the server down while answering.
        try client.send("GET /before HTTP/1.1\r\nHost: a\r\n\r\nGET /stop HTTP/1.0\r\n\r\n")
        #expect(try client.readResponse()?.bodyText == "/before")
        #expect(try client.readResponse()?.bodyText == "/stop")
        running.stop(close: false)  // returns once serveForever() has
        let messages = lines(of: capture.recordsWritten()).map { message(ofLine: $0) }
        #expect(messages == ["\"GET /before HTTP/1.1\" 200 -", "\"GET /stop HTTP/1.0\" 200 -"])
        running.server.serverClose()
        #expect(capture.recordsWritten().isEmpty)
    }

    /// A line logged in the serve's very last loop turn: no turn follows to write it, so
    /// `serveForever()` does as it returns.
    @Test func aLineLoggedInTheServesLastTurnIsWrittenWhenServeForeverReturns() throws {
        let capture = try LogCapture()
        let running = try RunningServer(AccessLogHandler.self, beforeServing: { $0.logBuffer.descriptor = capture.writeEnd })
        let server = running.server
        server.loop.execute {
            AccessLogHandler(clientAddress: (host: "192.0.2.7", port: 1), server: server).logMessage("last turn")
            server.shutdown()  // no connections: the loop stops at the end of this turn
        }
        running.stop(close: false)  // returns once serveForever() has
        let messages = lines(of: capture.recordsWritten()).map { message(ofLine: $0, host: "192.0.2.7") }
        #expect(messages == ["last turn"])
        server.serverClose()
    }

    @Test func aRequestsLineIsWrittenWhenHandleRequestReturns() throws {
        let capture = try LogCapture()
        let server = try HTTPServer(("127.0.0.1", 0), AccessLogHandler.self)
        defer { server.serverClose() }
        server.logBuffer.descriptor = capture.writeEnd
        let client = try RawClient(port: server.serverPort)
        try client.send("GET /one HTTP/1.1\r\nHost: a\r\n\r\n")
        try server.handleRequest()
        // Nothing runs the loop now: the line must already be out.
        let messages = lines(of: capture.recordsWritten()).map { message(ofLine: $0) }
        #expect(messages == ["\"GET /one HTTP/1.1\" 200 -"])
        #expect(try client.readResponse()?.bodyText == "/one")
    }

    @Test func aHandlerUsedOutsideARunningLoopLogsAtOnce() throws {
        let capture = try LogCapture()
        let server = try HTTPServer(("127.0.0.1", 0), AccessLogHandler.self)
        server.logBuffer.descriptor = capture.writeEnd
        let handler = AccessLogHandler(clientAddress: (host: "192.0.2.1", port: 4321), server: server)
        handler.logMessage("before serving\u{7}")
        #expect(lines(of: capture.recordsWritten()).map { message(ofLine: $0, host: "192.0.2.1") }
                == ["before serving\\x07"])
        server.serverClose()
        handler.logError("after closing")
        #expect(lines(of: capture.recordsWritten()).map { message(ofLine: $0, host: "192.0.2.1") }
                == ["after closing"])
    }

    @Test func anOverrideOfLogMessageGetsEveryMessageAndNothingIsWritten() throws {
        let capture = try LogCapture()
        let running = try RunningServer(RecordingLogHandler.self, beforeServing: { $0.logBuffer.descriptor = capture.writeEnd })
        let client = try running.client()
        try client.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n"
                        + "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try client.readResponse()?.status == 200)
        #expect(try client.readResponse()?.status == 200)
        #expect(try client.readResponse()?.status == 404)
        running.stop()
        #expect(Messages.shared.take(port: running.port) == [
            "\"GET /a HTTP/1.1\" 200 -",
            "\"GET /b HTTP/1.1\" 200 -",
            "error: code 404, message Not Found",
            "\"GET /missing HTTP/1.1\" 404 -",
        ])
        #expect(capture.recordsWritten().isEmpty)
    }

    /// Three servers on three threads log large batches into one full pipe at once, drained
    /// in small reads (so a batch goes in by pieces, the writer waiting between them): no
    /// line is cut by another server's.
    @Test func serversBatchesIntoOnePipeNeverInterleave() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        let (readEnd, writeEnd) = (ends[0], ends[1])
        let servers = try (0..<3).map { _ in
            try RunningServer(AccessLogHandler.self, beforeServing: { $0.logBuffer.descriptor = writeEnd })
        }
        let count = 3000  // about 400 KiB of lines from each server, in 64 KiB batches
        let clients = try servers.map { try RawClient(port: $0.port) }
        for client in clients { try client.send("GET /many?\(count) HTTP/1.1\r\nHost: a\r\n\r\n") }
        // Draining starts only now: the first batch fills the pipe, and the servers queue up
        // in write(2), each let on by a page as the reader frees one.
        let drain = PipeDrain(readEnd)
        for client in clients { #expect(try client.readResponse()?.status == 200) }
        for server in servers { server.stop() }
        close(writeEnd)
        let text = drain.wait()
        close(readEnd)
        let lines = text.split(separator: "\n")
        let filler = String(repeating: "x", count: 100)
        let expected = (0..<count).map { "line \($0) \(filler)" } + ["\"GET /many?\(count) HTTP/1.1\" 200 -"]
        // Each line is whole and comes next in some server's sequence (the servers log the
        // same lines, so any one that is at that point will do).
        var next = [Int](repeating: 0, count: servers.count)
        var misplaced: [Substring] = []
        for line in lines {
            let text = message(ofLine: line)
            if let server = next.indices.first(where: { next[$0] < expected.count && expected[next[$0]] == text }) {
                next[server] += 1
            } else {
                misplaced.append(line)
            }
        }
        #expect(misplaced.isEmpty, "\(misplaced.count) lines cut or out of order, first: \(misplaced.prefix(3))")
        #expect(next == [Int](repeating: expected.count, count: servers.count), "lines lost")
    }
}
