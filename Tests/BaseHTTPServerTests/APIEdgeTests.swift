import BaseHTTPServer
import Foundation
import Glibc
import Testing
import UVLoop

// Regression tests for edges of the public API, written as a user in another package would
// use it: a plain `import BaseHTTPServer` (no `@testable`), and what a client sees on the wire.

// MARK: - Test plumbing

/// A value shared between the test thread, the loop thread and helper threads.
private final class EdgeLocked<Value>: @unchecked Sendable {
    // Sendable: every access goes through the lock.
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }

    func update<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&stored) } }
}

/// What a test observes from inside its server: log lines, deferred responses, events.
private final class EdgeProbe: @unchecked Sendable {
    // Sendable: the fields are `EdgeLocked` or semaphores.
    let lines = EdgeLocked<[String]>([])
    let deferred = EdgeLocked<[DeferredResponse]>([])
    /// Signalled each time a handler deferred a response (after adding it to `deferred`).
    let deferredArrived = DispatchSemaphore(value: 0)
    /// Signalled by handlers when something the test waits for has happened.
    let event = DispatchSemaphore(value: 0)

    func log(_ line: String) { lines.update { $0.append(line) } }

    /// The next deferred response a handler made, waiting up to ten seconds for it.
    func nextDeferred() throws -> DeferredResponse {
        guard deferredArrived.wait(timeout: .now() + 10) == .success else {
            throw ClientError(description: "no response was deferred")
        }
        return deferred.update { $0.removeFirst() }
    }
}

/// A server that carries an `EdgeProbe` its handlers reach through `server`.
private final class EdgeServer: HTTPServer, @unchecked Sendable {
    // Sendable like HTTPServer; `probe` is Sendable itself.
    let probe = EdgeProbe()
}

/// A handler that logs into its server's probe and answers:
/// - `/hold`: writes `held` and defers; the test finishes it (or never does);
/// - `/late`: answers `on time` 1 ms later from a `LoopTimer`, finishes, and 5 ms after that
///   writes again (a backend that answered twice), then signals `probe.event`;
/// - `/loop`: the loop thread's CPU time in seconds, its `busyPollLimit` and `pollWindow`;
/// - anything else: its path, and how many header fields the request had.
private final class EdgeHandler: BaseHTTPRequestHandler {
    /// Found through the server while it serves, and kept: a handler kept alive by a deferred
    /// response may outlive its server.
    lazy var probe = (server as! EdgeServer).probe

    override func logMessage(_ message: String) { probe.log(message) }

    override func doGET() throws {
        switch path {
        case "/hold":
            sendResponse(200)
            endHeaders()
            wfile.write("held")
            let deferred = deferResponse()
            probe.deferred.update { $0.append(deferred) }
            probe.deferredArrived.signal()
        case "/late":
            let deferred = deferResponse()
            let timer = LoopTimer(loop: server.loop)
            timer.start(after: 1) { [self] in
                timer.close()
                sendResponse(200)
                endHeaders()
                wfile.write("on time")
                deferred.finish()
                let late = LoopTimer(loop: server.loop)
                late.start(after: 5) { [self] in
                    late.close()
                    wfile.write("LATE BYTES\r\n\r\n")
                    probe.event.signal()
                }
            }
        case "/loop":
            sendResponse(200)
            endHeaders()
            wfile.write("\(threadCPUSeconds()) \(server.loop.busyPollLimit) \(server.loop.pollWindow)")
        default:
            var count = 0
            for _ in headers { count += 1 }
            sendResponse(200)
            endHeaders()
            wfile.write("\(path) \(count)")
        }
    }
}

/// The calling thread's CPU time in seconds.
private func threadCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

private func wallSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// Runs `body` on a new thread and waits up to `seconds` for it: nil when it did not return
/// (the thread is then left behind, so that a hang fails the test instead of the run).
private func returnWithin<T: Sendable>(_ seconds: Double,
                                       _ body: @escaping @Sendable () throws -> T) -> Result<T, any Error>? {
    let outcome = EdgeLocked<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        outcome.value = Result { try body() }
        done.signal()
    }
    thread.stackSize = 1 << 22
    thread.start()
    guard done.wait(timeout: .now() + seconds) == .success else { return nil }
    return outcome.value
}

/// `serveForever()` on its own thread, and a bounded wait for it to return.
private final class EdgeServingThread: @unchecked Sendable {
    // Sendable: `outcome` is locked and `returned` is a semaphore.
    private let returned = DispatchSemaphore(value: 0)
    private let outcome = EdgeLocked<(any Error)?>(nil)

    init(_ server: HTTPServer) {
        let thread = Thread { [returned, outcome] in
            do { try server.serveForever() } catch { outcome.value = error }
            returned.signal()
        }
        thread.stackSize = 1 << 22
        thread.start()
    }

    /// Calls `shutdown()` from another thread and checks that `serveForever()` returned
    /// within ten seconds, without an error.
    func stop(_ server: HTTPServer, sourceLocation: SourceLocation = #_sourceLocation) {
        Thread { server.shutdown() }.start()
        let stopped = returned.wait(timeout: .now() + 10) == .success
        #expect(stopped, "serveForever did not return after shutdown()", sourceLocation: sourceLocation)
        if stopped {
            #expect(outcome.value == nil, "serveForever threw \(String(describing: outcome.value))",
                    sourceLocation: sourceLocation)
        }
    }
}

/// Sends `request` on a new connection and reads one response. A refused connection is tried
/// again for up to two seconds: a server that was just told to serve may not be listening yet.
private func fetch(_ port: Int, _ request: String) throws -> WireResponse {
    var attempts = 0
    while true {
        let client: RawClient
        do {
            client = try RawClient(port: port)
        } catch {
            attempts += 1
            if attempts >= 200 { throw error }
            usleep(10_000)
            continue
        }
        try client.send(request)
        guard let response = try client.readResponse() else {
            throw ClientError(description: "connection closed without a response")
        }
        return response
    }
}

/// A GET with `fieldCount` header fields in all (`Host` included).
private func requestWithFields(_ fieldCount: Int, path: String = "/fields") -> String {
    let extra = (1..<fieldCount).map { "X-Field-\($0): \($0)\r\n" }.joined()
    return "GET \(path) HTTP/1.1\r\nHost: a\r\n\(extra)\r\n"
}

// MARK: - Tests

@Suite("API edges", .serialized)
struct APIEdgeTests {
    /// Python's `serve_forever()` may be called again after `shutdown()`; so may ours: the
    /// server answers on the same port again, and `shutdown()` stops it again.
    @Test func serveForeverAfterShutdownServesAgainOnTheSamePort() throws {
        let server = try EdgeServer(("127.0.0.1", 0), EdgeHandler.self)
        let port = server.serverPort
        for round in 1...2 {
            let serving = EdgeServingThread(server)
            do {
                let response = try fetch(port, "GET /round\(round) HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(response.status == 200, "round \(round)")
                #expect(response.bodyText == "/round\(round) 1", "round \(round)")
            } catch {
                Issue.record("round \(round): \(error)")
            }
            serving.stop(server)
        }
        server.serverClose()
    }

    /// After `serverClose()` there is nothing left to serve with: both ways of serving throw.
    @Test func serveForeverAndHandleRequestAfterServerCloseThrow() throws {
        let server = try HTTPServer(("127.0.0.1", 0), EdgeHandler.self)
        server.timeout = 0.2  // a handleRequest() that does not throw returns, at least
        server.serverClose()
        let served = returnWithin(10) { try server.serveForever() }
        #expect(served != nil, "serveForever() after serverClose() neither threw nor returned")
        if let served {
            #expect(throws: (any Error).self, "serveForever() after serverClose()") { try served.get() }
        }
        let handled = returnWithin(10) { try server.handleRequest() }
        #expect(handled != nil, "handleRequest() after serverClose() neither threw nor returned")
        if let handled {
            #expect(throws: (any Error).self, "handleRequest() after serverClose()") { try handled.get() }
        }
    }

    /// A deferred handler whose timer writes after `finish()` must not put those bytes between
    /// two framed responses: they are dropped with a log line, and the responses that follow
    /// on the connection (pipelined, and sent later) are intact.
    @Test func bytesWrittenAfterADeferredResponseFinishedAreDroppedAndLogged() throws {
        let server = try EdgeServer(("127.0.0.1", 0), EdgeHandler.self)
        let serving = EdgeServingThread(server)
        defer {
            serving.stop(server)
            server.serverClose()
        }
        let client = try RawClient(port: server.serverPort)
        // /next is pipelined behind the deferred /late, so it is answered as /late finishes.
        try client.send("GET /late HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
        let late = try #require(try client.readResponse())
        #expect(late.status == 200)
        #expect(late.bodyText == "on time")
        let next = try #require(try client.readResponse())
        #expect(next.statusLine == "HTTP/1.1 200 OK")
        #expect(next.bodyText == "/next 1")
        // The late write has happened; a request sent now gets exactly its own response.
        #expect(server.probe.event.wait(timeout: .now() + 10) == .success, "the late write never ran")
        try client.send("GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        let last = try #require(try client.readResponse())
        #expect(last.statusLine == "HTTP/1.1 200 OK")
        #expect(last.bodyText == "/last 2")  // Host and Connection
        #expect(try client.readToEOF().isEmpty, "bytes after the last response")
        // Three access-log lines, and at least one more: the notice that bytes were dropped.
        let lines = server.probe.lines.value
        let notices = lines.filter { !($0.hasPrefix("\"GET /") && $0.hasSuffix(" HTTP/1.1\" 200 -")) }
        #expect(!notices.isEmpty, "no log line about the dropped bytes; lines: \(lines)")
    }

    /// `isClientGone` may be read from any thread (a backend thread deciding whether to bother):
    /// it must not race with the loop thread closing the connection (ThreadSanitizer checks),
    /// and it turns true once the client has left.
    @Test func isClientGoneIsSafeToReadFromAnotherThreadWhileTheClientLeaves() throws {
        let server = try EdgeServer(("127.0.0.1", 0), EdgeHandler.self)
        let serving = EdgeServingThread(server)
        defer {
            serving.stop(server)
            server.serverClose()
        }
        var client: RawClient? = try RawClient(port: server.serverPort)
        try client?.send("GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
        let deferred = try server.probe.nextDeferred()
        #expect(!deferred.isClientGone)

        // A backend thread polls isClientGone while the client resets the connection.
        let reading = DispatchSemaphore(value: 0)
        let sawGone = EdgeLocked<Bool?>(nil)
        let doneReading = DispatchSemaphore(value: 0)
        Thread {
            let start = wallSeconds()
            var gone = deferred.isClientGone
            reading.signal()
            while !gone && wallSeconds() - start < 10 {
                sched_yield()
                gone = deferred.isClientGone
            }
            sawGone.value = gone
            doneReading.signal()
        }.start()
        reading.wait()
        if let fd = client?.fd {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        client = nil  // closes with a reset: the client has gone without a goodbye

        #expect(doneReading.wait(timeout: .now() + 20) == .success)
        #expect(sawGone.value == true, "isClientGone never turned true after the client left")
        deferred.finish()  // harmless: nothing to send it to
    }

    /// A deferred response kept after its server was shut down, closed and released is inert:
    /// `finish()`, `perform {}` and `isClientGone` neither crash nor reach freed memory, from
    /// the thread that served as from any other.
    @Test func deferredResponseThatOutlivesItsServerIsInert() throws {
        /// What a backend's late reply does: answer through the handler, naming the server.
        let answerLate: @Sendable (BaseHTTPRequestHandler) -> Void = { handler in
            handler.sendResponse(200)
            handler.endHeaders()
            handler.wfile.write("too late for \(handler.server.serverName)")
        }
        final class Holder: @unchecked Sendable {
            // Sendable: the serving thread and the test thread take turns (semaphores and the
            // server's own shutdown handshake order them).
            var server: EdgeServer?
        }
        let holder = Holder()
        holder.server = try EdgeServer(("127.0.0.1", 0), EdgeHandler.self)
        holder.server?.configuration.shutdownGracePeriod = 0.05
        let probe = try #require(holder.server?.probe)
        let port = try #require(holder.server?.serverPort)
        weak let server = holder.server  // once serving starts, the serving thread owns `holder`
        let kept = EdgeLocked<DeferredResponse?>(nil)

        // The serving thread serves, closes and drops the server, then uses the deferred
        // response made while it served (it is still that response's loop thread).
        let returned = DispatchSemaphore(value: 0)
        let proceed = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let goneOnServingThread = EdgeLocked<Bool?>(nil)
        let thread = Thread {
            try? holder.server?.serveForever()
            holder.server?.serverClose()
            holder.server = nil
            returned.signal()
            proceed.wait()
            if let deferred = kept.value {
                deferred.perform(answerLate)
                deferred.finish()
                goneOnServingThread.value = deferred.isClientGone
            }
            done.signal()
        }
        thread.stackSize = 1 << 22
        thread.start()

        let client = try RawClient(port: port)
        try client.send("GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
        let deferred = try probe.nextDeferred()
        kept.value = deferred
        server?.shutdown()  // the grace period passes; the connection is closed
        #expect(returned.wait(timeout: .now() + 10) == .success, "serveForever did not return")
        // The server is gone now (unless the deferred response keeps it alive, which would
        // do too): whatever the response still holds must not point at freed memory.

        proceed.signal()
        #expect(done.wait(timeout: .now() + 10) == .success, "the serving thread did not finish")
        #expect(goneOnServingThread.value == true)

        // And from a thread that never served.
        deferred.perform(answerLate)
        deferred.finish()
        #expect(deferred.isClientGone)
        #expect(client.isClosedByServer())
    }

    /// A server dropped without serving (or closing) lets go of its port and its loop: the
    /// same port can be bound again at once.
    @Test func serverDroppedWithoutServingReleasesItsPortAndLoop() throws {
        var port = 0
        weak var loop: Loop?
        do {
            let server = try HTTPServer(("127.0.0.1", 0), EdgeHandler.self)
            port = server.serverPort
            loop = server.loop
        }
        #expect(loop == nil, "the dropped server's loop is still allocated")
        do {
            let again = try HTTPServer(("127.0.0.1", port), EdgeHandler.self)
            again.serverClose()
        } catch {
            Issue.record("binding port \(port) again after the server was dropped: \(error)")
        }
    }

    /// `configuration.parserLimits` changed while serving (on the loop thread) applies to the
    /// requests that follow, lowered as raised: the parsers the server keeps warm between
    /// connections must not go on with the limits they were made with.
    @Test(arguments: [(before: 100, after: 10), (before: 10, after: 100)])
    func parserLimitChangesWhileServingApplyToLaterRequests(before: Int, after: Int) throws {
        let server = try EdgeServer(("127.0.0.1", 0), EdgeHandler.self)
        server.configuration.parserLimits.maxHeaderCount = before
        let serving = EdgeServingThread(server)
        defer {
            serving.stop(server)
            server.serverClose()
        }
        let port = server.serverPort
        // Requests within the limit, on a few connections: parsers with `before` are made.
        for _ in 0..<3 {
            #expect(try fetch(port, requestWithFields(10)).bodyText == "/fields 10")
        }
        let changed = DispatchSemaphore(value: 0)
        server.loop.execute {
            server.configuration.parserLimits.maxHeaderCount = after
            changed.signal()
        }
        changed.wait()
        let response = try fetch(port, requestWithFields(40))
        #expect(response.status == (after < 40 ? 431 : 200),
                "40 fields with maxHeaderCount changed from \(before) to \(after): \(response.statusLine)")
        #expect(try fetch(port, requestWithFields(10)).bodyText == "/fields 10")
    }

    /// Busy polling is for servers that want it (`http-server` turns it on); a library user
    /// embedding a test double gets a loop that sleeps when it has nothing to do.
    @Test func busyPollingIsOffByDefault() {
        #expect(HTTPServer.Configuration().busyPollLimit == 0)
    }

    /// What that default means for a user: a server with the default configuration does not
    /// poll while requests come back to back, and a serving server that has nothing to do
    /// sleeps (its loop thread's CPU time, read on that thread, barely grows while idle).
    @Test func aServerWithTheDefaultConfigurationNeverPollsAndSleepsWhenIdle() throws {
        let server = try EdgeServer(("127.0.0.1", 0), EdgeHandler.self)
        let serving = EdgeServingThread(server)
        defer {
            serving.stop(server)
            server.serverClose()
        }
        let client = try RawClient(port: server.serverPort)
        /// The loop thread's CPU time, its polling limit and its polling window now.
        func loopState() throws -> (cpu: Double, limit: UInt64, window: UInt64) {
            try client.send("GET /loop HTTP/1.1\r\nHost: a\r\n\r\n")
            let fields = try #require(try client.readResponse()).bodyText.split(separator: " ")
            return (try #require(Double(fields[0])), try #require(UInt64(fields[1])),
                    try #require(UInt64(fields[2])))
        }
        for index in 0..<200 {
            try client.send("GET /\(index) HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(try client.readResponse()?.bodyText == "/\(index) 1")
        }
        let afterBurst = try loopState()
        #expect(afterBurst.limit == 0, "the loop may poll for \(afterBurst.limit) ns")
        #expect(afterBurst.window == 0, "the loop polls for \(afterBurst.window) ns after each event")
        let idleStart = wallSeconds()
        usleep(300_000)  // the idle stretch being measured
        let afterIdle = try loopState()
        let idleWall = wallSeconds() - idleStart
        let idleCPU = afterIdle.cpu - afterBurst.cpu
        #expect(idleCPU < 0.3 * idleWall,
                "the loop thread used \(idleCPU * 1000) ms of CPU in \(idleWall * 1000) ms of idleness")
    }
}
