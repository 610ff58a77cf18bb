import Foundation
import Synchronization
import Testing
import UVLoop
@testable import BaseHTTPServer

/// A store another part of a program owns: handlers await it.
actor Store {
    private var values: [String: String] = ["/": "stored"]
    func value(for path: String) -> String? { values[path] }
}

/// What the async handlers below saw, and a gate that `/gate` requests wait behind.
final class AsyncProbe: Sendable {
    let store = Store()
    let cancelled = Atomic(0)
    let waiting = Atomic(0)
    private let gate = Locked<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func passGate() async {
        await withCheckedContinuation { waiter in
            let openNow = gate.withLock { gate in
                if !gate.open { gate.waiters.append(waiter) }
                return gate.open
            }
            waiting.add(1, ordering: .relaxed)
            if openNow { waiter.resume() }
        }
    }

    func openGate() {
        let waiters = gate.withLock { gate in
            gate.open = true
            defer { gate.waiters = [] }
            return gate.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

final class AsyncStoreHandler: AsyncHTTPRequestHandler, ContextualHandler {
    typealias Context = AsyncProbe

    override func logMessage(_ message: String) {}

    override func doGET() async throws {
        switch path {
        case "/":
            let before = server.loop.isOnLoopThread
            let value = await context.store.value(for: path) ?? "-"
            let after = server.loop.isOnLoopThread
            answer("\(value) \(before) \(after)")
        case let path where path.hasPrefix("/sleep/"):
            // /sleep/MS/NAME: answers NAME after MS milliseconds.
            let parts = path.split(separator: "/")
            try await Task.sleep(for: .milliseconds(Int(parts[1])!))
            answer(String(parts[2]))
        case "/forever":
            do {
                try await Task.sleep(for: .seconds(60))
            } catch {
                context.cancelled.add(1, ordering: .relaxed)
                throw error
            }
        case "/gate":
            await context.passGate()
            answer("through")
        case "/throw":
            struct Broken: Error {}
            try await Task.sleep(for: .milliseconds(1))
            throw Broken()
        default:
            sendError(404)
        }
    }

    override func doPOST() async throws {
        let body = rfile.read()
        await Task.yield()
        answer("\(body.count) bytes")
    }

    private func answer(_ text: String) {
        sendResponse(200)
        sendHeader("Content-Length", String(text.utf8.count))
        endHeaders()
        wfile.write(text)
    }
}

@Suite("Async handlers: do-methods that await, on the loop's executor")
struct AsyncHandlerTests {
    private func serve(_ probe: AsyncProbe = AsyncProbe()) throws -> RunningServer {
        try RunningServer(server: HTTPServer(("127.0.0.1", 0), AsyncStoreHandler.self, context: probe))
    }

    @Test func aHandlerAwaitsAnActorAndAnswersOnTheLoopThread() throws {
        let running = try serve()
        defer { running.stop() }
        #expect(try exchange(running.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").bodyText == "stored true true")
        let post = try exchange(running.port, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        #expect(post.bodyText == "5 bytes")
        #expect(try exchange(running.port, "DELETE / HTTP/1.1\r\nHost: a\r\n\r\n").status == 501)
        #expect(try exchange(running.port, "GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n").status == 404)
    }

    @Test func aKeptAliveConnectionsRequestsRunOneAfterAnother() throws {
        let running = try serve()
        defer { running.stop() }
        let client = try running.client()
        for index in 0..<5 {
            // The connection's task waits between requests, and each wakes it.
            try client.send("GET /sleep/\(index)/answer\(index) HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(try client.readResponse()?.bodyText == "answer\(index)")
        }
    }

    @Test func pipelinedResponsesKeepTheirOrderWhateverTheirTasksTake() throws {
        let running = try serve()
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET /sleep/80/first HTTP/1.1\r\nHost: a\r\n\r\n"
                        + "GET /sleep/1/second HTTP/1.1\r\nHost: a\r\n\r\n"
                        + "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try client.readResponse()?.bodyText == "first")
        #expect(try client.readResponse()?.bodyText == "second")
        #expect(try client.readResponse()?.bodyText == "stored true true")
    }

    @Test func aHandlerThatThrowsGetsA500AndTheConnectionGoesOn() throws {
        let running = try serve()
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET /throw HTTP/1.1\r\nHost: a\r\n\r\n")
        let failed = try #require(try client.readResponse())
        #expect(failed.status == 500)
        #expect(failed.header("Connection") == "close")
        #expect(try exchange(running.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").status == 200)
    }

    @Test(arguments: ["close", "reset"])
    func aClientThatLeavesCancelsItsTask(_ how: String) throws {
        let probe = AsyncProbe()
        let running = try serve(probe)
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET /forever HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(waitForConnections(running, toReach: 1) == 1)
        if how == "reset" { client.reset() } else { client.shutdownWrite() }
        let deadline = Date().addingTimeInterval(10)
        while probe.cancelled.load(ordering: .relaxed) == 0 && Date() < deadline { usleep(1000) }
        #expect(probe.cancelled.load(ordering: .relaxed) == 1)
        #expect(waitForConnections(running, toReach: 0) == 0)
    }
}

private let python3Path: String? = ["/usr/bin/python3", "/usr/local/bin/python3"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }

/// Opens N connections and sends `GET /gate` on each without reading, prints "sent N", waits
/// for a line on its standard input, then reads every response and prints "answered N".
private let gateCrowdScript = """
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
port, count = int(sys.argv[1]), int(sys.argv[2])
held = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /gate HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
    held.append(s)
print("sent", len(held), flush=True)
sys.stdin.readline()
answered = 0
for s in held:
    s.settimeout(30)
    data = b""
    while not data.endswith(b"through"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    answered += data.endswith(b"through")
    s.close()
print("answered", answered, flush=True)
"""

@Suite("Async handlers: ten thousand awaiting at once", .serialized)
struct AsyncHandlerCrowdTests {
    /// 10,000 connections, each with a request whose task awaits one gate: every task is
    /// suspended at once, in bounded memory, and all are answered when the gate opens.
    @Test(.enabled(if: python3Path != nil))
    func tenThousandRequestsAwaitingAtOnceHoldBoundedMemory() throws {
        raiseOpenFileLimit()
        let crowdSize = 10_000
        let probe = AsyncProbe()
        let running = try RunningServer(server: HTTPServer(("127.0.0.1", 0), AsyncStoreHandler.self, context: probe))
        defer { running.stop() }
        #expect(try exchange(running.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").status == 200)
        #expect(waitForConnections(running) == 0)
        let baseline = try MemoryReading.now(trimmed: true)

        let crowd = try SpawnedChild([python3Path!, "-c", gateCrowdScript, String(running.port), String(crowdSize)])
        let sent = crowd.readLine()
        try #require(sent == "sent \(crowdSize)", "crowd: \(sent) \(crowd.errorText)")
        let deadline = Date().addingTimeInterval(60)
        while probe.waiting.load(ordering: .relaxed) < crowdSize && Date() < deadline { usleep(10_000) }
        #expect(probe.waiting.load(ordering: .relaxed) == crowdSize)
        let awaiting = try MemoryReading.now()
        let perRequest = (awaiting.heap - baseline.heap) * 1024 / crowdSize

        probe.openGate()
        crowd.closeInput()  // its cue to read the answers
        let answered = crowd.readLine(timeout: 60)
        crowd.stop(waiting: 10)
        #expect(answered == "answered \(crowdSize)", "\(crowd.errorText)")
        #expect(waitForConnections(running, toReach: 0, within: 20) == 0)
        let after = try MemoryReading.now(trimmed: true)
        print("""
            \(crowdSize) requests awaiting at once: heap \(baseline.heap) kB before, \(awaiting.heap) kB \
            while they waited (\(perRequest) bytes per request, its connection included), \(after.heap) kB after
            """)
        // Measured: 5.9 kB per awaiting request (debug build), connection and task included.
        #expect(perRequest < 16 * 1024, "\(perRequest) bytes per awaiting request")
        expectMemoryGrowth(from: baseline, to: after, "after the awaiting crowd was answered",
                           heapBelow: 4096, rssBelow: 16 * 1024)
    }
}
