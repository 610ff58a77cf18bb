import Foundation
import Glibc
import Testing
import UVLoop
@testable import BaseHTTPServer

/// `/big/N`: N MiB (past every buffer, with a Content-Length); `/slow`: answered 30 ms later
/// from a timer; anything else: "PATH BODYSIZE".
final class FaultHandler: BaseHTTPRequestHandler {
    static let mebibyte = [UInt8]((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 % 251) })
    override func logMessage(_ message: String) {}
    override func doGET() throws { answer() }
    override func doPOST() throws { answer() }

    private func answer() {
        let body = rfile.read()
        if path.hasPrefix("/big/"), let mebibytes = Int(path.dropFirst(5)) {
            sendResponse(200)
            sendHeader("Content-Length", String(mebibytes << 20))
            endHeaders()
            for _ in 0..<mebibytes { wfile.write(FaultHandler.mebibyte) }
        } else if path == "/slow" {
            let deferred = deferResponse()
            let timer = LoopTimer(loop: server.loop)
            timer.start(after: 30) { [self] in
                timer.close()
                sendResponse(200)
                endHeaders()
                wfile.write("/slow \(body.count)")
                deferred.finish()
            }
        } else {
            sendResponse(200)
            endHeaders()
            wfile.write("\(path) \(body.count)")
        }
    }
}

// MARK: Helpers for fault and exhaustion tests

private final class IntBox: @unchecked Sendable { var value = 0 }

/// The server's live connection count, read on its loop thread (no data race).
func liveConnections(_ running: RunningServer) -> Int {
    let box = IntBox()
    let done = DispatchSemaphore(value: 0)
    let server = running.server
    server.loop.execute {
        box.value = server.connectionCount
        done.signal()
    }
    done.wait()
    return box.value
}

/// Polls until the server holds `target` connections or `seconds` pass; returns the last count.
func waitForConnections(_ running: RunningServer, toReach target: Int = 0, within seconds: Double = 5) -> Int {
    let deadline = Date().addingTimeInterval(seconds)
    var count = liveConnections(running)
    while count != target && Date() < deadline {
        usleep(20_000)
        count = liveConnections(running)
    }
    return count
}

/// RSS (kB) after handing freed heap pages back to the kernel: what is still in use.
func trimmedResidentKilobytes() -> Int {
    // glibc's malloc_trim, which the Glibc module does not import.
    typealias MallocTrim = @convention(c) (Int) -> Int32
    if let symbol = dlsym(dlopen(nil, RTLD_NOW), "malloc_trim") {
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
    }
    return residentKilobytes()
}

/// Makes the next close of `fd` send RST instead of FIN.
func setLingerZero(_ fd: Int32) {
    var option = linger(l_onoff: 1, l_linger: 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
}

/// Reads a socket until EOF, a reset or the socket's receive timeout; returns the bytes and
/// how the read ended ("eof", "reset", "timeout").
func readUntilClosed(_ fd: Int32) -> (bytes: [UInt8], end: String) {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count > 0 {
            bytes += chunk[0..<count]
        } else if count == 0 {
            return (bytes, "eof")
        } else if errno == EINTR {
            continue
        } else {
            return (bytes, errno == ECONNRESET ? "reset" : "timeout")
        }
    }
}

// MARK: Tests

@Suite("Faults: resets, half-closes, connect/close churn", .serialized)
struct FaultTests {
    @Test func resetInsideARequestHeadOrBodyIsForgottenAndOthersAreServed() throws {
        let running = try RunningServer(FaultHandler.self)
        defer { running.stop() }
        let partials = [
            "GET /partial HTTP/1.1\r\nHost: a\r\nX-Half: ",
            "POST /partial HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "p", count: 5000),
            "POST /partial HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\nabc",
        ]
        for round in 0..<30 {
            let client = try running.client()
            try client.send(partials[round % partials.count])
            usleep(2_000)  // let the server take the bytes first
            setLingerZero(client.fd)
        }  // each client closes here: RST
        #expect(waitForConnections(running) == 0)
        #expect(try exchange(running.port, "GET /after HTTP/1.1\r\nHost: a\r\n\r\n").bodyText == "/after 0")
    }

    @Test func resetWhileALargeResponseIsBeingWrittenFreesItsMemory() throws {
        let running = try RunningServer(FaultHandler.self)
        defer { running.stop() }
        /// Asks for 16 MiB, reads 200 kB of it, resets.
        func abandonLargeResponses(_ count: Int) throws {
            for _ in 0..<count {
                let client = try running.client()
                try client.send("GET /big/16 HTTP/1.1\r\nHost: a\r\n\r\n")
                var chunk = [UInt8](repeating: 0, count: 100_000)
                var received = 0
                while received < 200_000 {
                    let count = chunk.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, 0) }
                    guard count > 0 else { break }
                    received += count
                }
                #expect(received >= 200_000)
                setLingerZero(client.fd)
            }
            #expect(waitForConnections(running) == 0)
        }
        try abandonLargeResponses(4)  // warms the allocator up
        let warm = try MemoryReading.now(trimmed: true)
        try abandonLargeResponses(12)
        // The server is fine and the 16 MiB answers it had queued are freed.
        let response = try exchange(running.port, "GET /big/1 HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(response.body == FaultHandler.mebibyte)
        let after = try MemoryReading.now(trimmed: true)
        // Measured: heap +1.0 MB in every pass (the 1 MiB answer above); RSS +1.2-3.3 MB (plain,
        // release; TSan 1.7 MB, ASan ~80 MB of quarantine). The 12 answers kept would be 192 MiB.
        expectMemoryGrowth(from: warm, to: after, "12 more abandoned 16 MiB answers",
                           heapBelow: 8 * 1024, rssBelow: 24 * 1024)
    }

    @Test(arguments: [
        ("GET /small HTTP/1.1\r\nHost: a\r\n\r\n", ["/small 0"]),
        ("POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", ["/body 5"]),
        ("POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", ["/chunked 3"]),
        ("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
         ["/1 0", "/2 0", "/3 0"]),
        ("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n", ["/slow 0"]),
        ("GET /0.9-style HTTP/1.0\r\n\r\n", ["/0.9-style 0"]),
    ])
    func halfClosedClientStillGetsEveryAnswer(request: String, answers: [String]) throws {
        let running = try RunningServer(FaultHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send(request)
        client.shutdownWrite()
        for answer in answers {
            let response = try #require(try client.readResponse())
            #expect(response.status == 200)
            #expect(response.bodyText == answer)
        }
        #expect(client.isClosedByServer())
        #expect(waitForConnections(running) == 0)
    }

    /// Found by this suite (requests behind a deferred response were dropped after a
    /// half-close); fixed in c60c975.
    @Test func halfClosedClientGetsTheRequestsPipelinedBehindADeferredResponse() throws {
        let running = try RunningServer(FaultHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /after-slow HTTP/1.1\r\nHost: a\r\n\r\n")
        client.shutdownWrite()
        #expect(try client.readResponse()?.bodyText == "/slow 0")
        #expect(try client.readResponse()?.bodyText == "/after-slow 0")
        #expect(client.isClosedByServer())
    }

    @Test func halfClosedClientGetsLargePipelinedAnswersIntact() throws {
        // Three 4 MiB answers: far past the output high-water mark, so reading pauses with
        // requests still pending when the client's FIN is already on its way.
        let running = try RunningServer(FaultHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send(String(repeating: "GET /big/4 HTTP/1.1\r\nHost: a\r\n\r\n", count: 3)
                        + "GET /last HTTP/1.1\r\nHost: a\r\n\r\n")
        client.shutdownWrite()
        let expected = [UInt8](Array((0..<4).map { _ in FaultHandler.mebibyte }.joined()))
        for _ in 0..<3 {
            let response = try #require(try client.readResponse())
            #expect(response.status == 200)
            #expect(response.body == expected)
        }
        #expect(try client.readResponse()?.bodyText == "/last 0")
        #expect(client.isClosedByServer())
    }

    @Test func twentyThousandConnectCloseCyclesLeaveNoConnectionOrMemoryBehind() throws {
        let running = try RunningServer(FaultHandler.self)
        defer { running.stop() }
        _ = try exchange(running.port, "GET /warm HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(waitForConnections(running) == 0)
        let before = try MemoryReading.now(trimmed: true)
        let started = Date()
        let churn = try ConnectCloseChurn(port: running.port, cycles: 20_000, concurrency: 64)
        let elapsed = Date().timeIntervalSince(started)
        #expect(churn.errors.isEmpty, "\(churn.errors.prefix(3))")
        #expect(churn.finished == 20_000)
        #expect(churn.answered == 5_000)
        let left = waitForConnections(running, within: 5)
        #expect(left == 0)
        #expect(try exchange(running.port, "GET /after HTTP/1.1\r\nHost: a\r\n\r\n").bodyText == "/after 0")
        let after = try MemoryReading.now(trimmed: true)
        print("20,000 connect/close cycles in \(String(format: "%.2f", elapsed)) s; \(left) connections left")
        // Measured: heap +0.08-0.12 MB in every pass; RSS -0.1 to +0.3 MB (plain, release; TSan
        // +2.7 MB). Once, in ASan's serial pass, heap +1.04 MB (+0.08 in five runs after it):
        // some other allocation of about 1 MiB was live at the second reading. With every
        // connection kept (tried): heap +4.2-5.2 MB, RSS +0 to +5.3 MB; the bound is below that.
        expectMemoryGrowth(from: before, to: after, "20,000 connect/close cycles",
                           heapBelow: 2048, rssBelow: 8 * 1024)
    }
}

/// Connects and closes `cycles` times from a UVLoop loop on the calling thread, `concurrency`
/// at a time. By cycle number: 0 mod 4 closes at once; 1 sends a request, checks the answer,
/// closes; 2 sends a request and closes without reading; 3 sends half a head and closes.
final class ConnectCloseChurn {
    private(set) var finished = 0
    private(set) var answered = 0
    private(set) var errors: [String] = []
    private var started = 0
    private let cycles: Int
    private let port: Int
    private let loop: Loop

    init(port: Int, cycles: Int, concurrency: Int) throws {
        self.port = port
        self.cycles = cycles
        loop = try Loop()
        for _ in 0..<concurrency { startNext() }
        var timedOut = false
        let watchdog = LoopTimer(loop: loop)
        watchdog.start(after: 60_000) { timedOut = true }
        while finished < cycles && !timedOut { loop.runOnce() }
        if timedOut { errors.append("timed out with \(cycles - finished) cycles unfinished") }
        try loop.close()
    }

    private func startNext() {
        guard started < cycles else { return }
        let cycle = started
        started += 1
        TCPConnection.connect(loop: loop, host: "127.0.0.1", port: port) { [self] result in
            switch result {
            case .failure(let error):
                errors.append("connect \(cycle): \(error)")
                cycleDone()
            case .success(let connection):
                let session = Cycle(number: cycle) { [self] ok, error in
                    if let error { errors.append(error) }
                    if ok { answered += 1 }
                } done: { [self] in cycleDone() }
                connection.delegate = session
                session.begin(on: connection)
            }
        }
    }

    private func cycleDone() {
        finished += 1
        startNext()
    }

    private final class Cycle: TransportDelegate {
        let number: Int
        let report: (Bool, String?) -> Void
        let done: () -> Void
        var buffer: [UInt8] = []
        var expected: [UInt8] { Array("/c\(number) 0".utf8) }

        init(number: Int, report: @escaping (Bool, String?) -> Void, done: @escaping () -> Void) {
            self.number = number
            self.report = report
            self.done = done
        }

        func begin(on connection: TCPConnection) {
            switch number % 4 {
            case 0:
                connection.close()
            case 1:
                connection.startReading()
                connection.write(Array("GET /c\(number) HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
            case 2:
                connection.write(Array("GET /c\(number) HTTP/1.1\r\nHost: a\r\n\r\n".utf8)) { _ in
                    connection.close()
                }
            default:
                connection.write(Array("GET /c\(number) HTTP/1.1\r\nHo".utf8)) { _ in connection.close() }
            }
        }

        func transport(_ transport: any Transport, didRead bytes: UnsafeRawBufferPointer) {
            let connection = transport as! TCPConnection
            buffer.append(contentsOf: bytes)
            guard buffer.count >= expected.count, buffer.suffix(expected.count).elementsEqual(expected) else { return }
            report(buffer.starts(with: Array("HTTP/1.1 200 ".utf8)), nil)
            connection.close()
        }

        func transportDidReadEOF(_ transport: any Transport) {
            let connection = transport as! TCPConnection
            report(false, "cycle \(number): EOF before the answer (\(buffer.count) bytes)")
            connection.close()
        }

        func transport(_ transport: any Transport, didFail error: UVError) {
            let connection = transport as! TCPConnection
            report(false, "cycle \(number): \(error)")
            connection.close()
        }

        func transportDidClose(_ transport: any Transport) { done() }
    }
}
