import Logging
import Synchronization
import Testing
import UVLoop
@testable import BaseHTTPServer

/// The events a `Logger` was given, for a test to read.
final class LogEvents: Sendable {
    private let events = Locked<[LogEvent]>([])
    func append(_ event: LogEvent) { events.withLock { $0.append(event) } }
    var all: [LogEvent] { events.withLock { $0 } }
    var access: [LogEvent] { all.filter { $0.metadata?["http.response.status_code"] != nil } }
    var errors: [LogEvent] { all.filter { $0.level == .error } }

    var logger: Logger {
        Logger(label: "test") { _ in Capture(events: self) }
    }

    private struct Capture: LogHandler {
        let events: LogEvents
        var metadata: Logger.Metadata = [:]
        var logLevel = Logger.Level.trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { events.append(event) }
    }
}

extension LogEvent {
    func value(_ key: String) -> String? { metadata?[key].map { "\($0)" } }
}

/// How many times `logRequest` was called.
final class CallCount: Sendable {
    private let count = Atomic(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// Answers `/` at once, `/slow` 60 ms later (deferred), anything else 404; counts its
/// `logRequest` calls in its context.
final class LoggedHandler: BaseHTTPRequestHandler, ContextualHandler {
    typealias Context = CallCount

    override func logRequest(code: Int? = nil, size: Int? = nil) {
        context.add()
        super.logRequest(code: code, size: size)
    }

    override func doGET() throws {
        switch path {
        case "/":
            sendResponse(200)
            endHeaders()
            wfile.write("Hello, World!")
        case "/slow":
            let response = deferResponse()
            let timer = LoopTimer(loop: server.loop)
            timer.start(after: 60) { [self] in
                timer.close()
                sendResponse(200)
                endHeaders()
                wfile.write("late")
                response.finish()
            }
        default:
            sendError(404)
        }
    }
}

@Suite("swift-log: a Logger gets an access record per finished response, and the errors")
struct LoggerTests {
    private func serve(_ events: LogEvents, calls: CallCount = CallCount(),
                       configure: (inout HTTPServer.Configuration) -> Void = { _ in }) throws -> RunningServer {
        let server = try HTTPServer(("127.0.0.1", 0), LoggedHandler.self, context: calls)
        server.logger = events.logger
        return RunningServer(server: server, configure: configure)
    }

    @Test func aResponseIsRecordedOnceWithItsStatusSizeAndDuration() throws {
        let events = LogEvents()
        let running = try serve(events)
        defer { running.stop() }
        #expect(try exchange(running.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").bodyText == "Hello, World!")

        let records = events.access
        try #require(records.count == 1, "\(events.all)")
        let record = records[0]
        #expect(record.level == .info)
        #expect("\(record.message)" == #""GET / HTTP/1.1" 200 13"#)
        #expect(record.value("http.request.method") == "GET")
        #expect(record.value("url.path") == "/")
        #expect(record.value("http.response.status_code") == "200")
        #expect(record.value("http.response.body.size") == "13")
        #expect(record.value("client.address") == "127.0.0.1")
        let seconds = try #require(record.value("http.server.request.duration").flatMap(Double.init))
        #expect(seconds >= 0 && seconds < 5)
        #expect(events.errors.isEmpty)
    }

    @Test func aDeferredResponseIsRecordedWhenItFinishes() throws {
        let events = LogEvents()
        let running = try serve(events)
        defer { running.stop() }
        #expect(try exchange(running.port, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n").bodyText == "late")
        let record = try #require(events.access.first)
        #expect(record.value("http.response.body.size") == "4")
        let seconds = try #require(record.value("http.server.request.duration").flatMap(Double.init))
        // The 60 ms timer counts from the loop's cached time, a little before the dispatch.
        #expect(seconds >= 0.05, "the timer's 60 ms are part of it")
    }

    @Test func anErrorIsLoggedAtErrorLevelBesideItsRecord() throws {
        let events = LogEvents()
        let running = try serve(events)
        defer { running.stop() }
        #expect(try exchange(running.port, "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n").status == 404)
        #expect(events.errors.map { "\($0.message)" } == ["code 404, message Not Found"])
        #expect(events.access.map { $0.value("http.response.status_code") } == ["404"])
    }

    @Test func aRequestTheParserRefusesIsRecordedToo() throws {
        let events = LogEvents()
        let running = try serve(events)
        defer { running.stop() }
        #expect(try exchange(running.port, "GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n").status == 400)
        let record = try #require(events.access.first)
        #expect(record.value("http.response.status_code") == "400")
        #expect(record.value("http.request.method") == "-")
    }

    @Test func pythonsLogRequestOverrideIsStillCalledOncePerResponse() throws {
        let events = LogEvents()
        let calls = CallCount()
        let running = try serve(events, calls: calls)
        defer { running.stop() }
        let client = try running.client()
        for _ in 0..<3 {
            try client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = try client.readResponse()
        }
        #expect(calls.value == 3)
        #expect(events.access.count == 3)
    }

    @Test func logsRequestsOffRecordsNoAccessButStillTheErrors() throws {
        let events = LogEvents()
        let calls = CallCount()
        let running = try serve(events, calls: calls) { $0.logsRequests = false }
        defer { running.stop() }
        #expect(try exchange(running.port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").status == 200)
        #expect(try exchange(running.port, "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n").status == 404)
        #expect(events.access.isEmpty)
        #expect(calls.value == 0)
        #expect(events.errors.count == 1)
    }
}
