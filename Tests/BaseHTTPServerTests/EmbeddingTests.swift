import Testing
import UVLoop
@testable import BaseHTTPServer

/// A test double's state, given to its server as a context: canned answers, and the paths
/// asked for.
final class Stubs: Sendable {
    let answers: [String: String]
    let asked = Locked<[String]>([])
    /// Responses held open by `/hold`, for a test to finish.
    let held = Locked<[DeferredResponse]>([])

    init(_ answers: [String: String]) { self.answers = answers }
}

final class StubHandler: BaseHTTPRequestHandler, ContextualHandler {
    typealias Context = Stubs

    override func logMessage(_ message: String) {}

    override func doGET() throws {
        context.asked.withLock { $0.append(path) }
        if path == "/hold" {
            sendResponse(200)
            endHeaders()
            wfile.write("held")
            let response = deferResponse()
            context.held.withLock { $0.append(response) }
            return
        }
        guard let answer = context.answers[path] else {
            sendError(404)
            return
        }
        sendResponse(200)
        sendHeader("Content-Length", String(answer.utf8.count))
        endHeaders()
        wfile.write(answer)
    }
}

/// Waits (without a deadline of its own: each client read has one) until `condition` holds.
private func eventually(_ condition: () -> Bool) async {
    while !condition() { await Task.yield() }
}

/// Runs the blocking client calls `body` makes on a thread of their own: Swift concurrency
/// has as many threads as cores (two here), and tests blocked in `recv` on both would keep
/// the `Task` that runs the server from starting.
func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, any Error>) in
        do {
            try detachThread { done.resume(with: Result { try body() }) }
        } catch {
            done.resume(throwing: error)
        }
    }
}

private func get(_ port: Int, _ path: String) async throws -> WireResponse {
    try await offThePool { try exchange(port, "GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n") }
}

@Suite("Embedding: a typed context, and async run and shutdown")
struct EmbeddingTests {
    @Test func handlersReadTheirServersOwnContext() throws {
        let first = try RunningServer(server: HTTPServer(("127.0.0.1", 0), StubHandler.self,
                                                         context: Stubs(["/a": "first"])))
        defer { first.stop() }
        let secondStubs = Stubs(["/a": "second"])
        let second = try RunningServer(server: HTTPServer(("127.0.0.1", 0), StubHandler.self,
                                                          context: secondStubs))
        defer { second.stop() }

        #expect(try exchange(first.port, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n").bodyText == "first")
        #expect(try exchange(second.port, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n").bodyText == "second")
        #expect(try exchange(second.port, "GET /b HTTP/1.1\r\nHost: a\r\n\r\n").status == 404)
        #expect(secondStubs.asked.withLock { $0 } == ["/a", "/b"])
    }

    @Test func aContextOfAnotherTypeDoesNotCompile() throws {
        let program = """
            import BaseHTTPServer
            final class Handler: BaseHTTPRequestHandler, ContextualHandler {
                typealias Context = [String: String]
                override func doGET() throws { wfile.write(context["/"] ?? "") }
            }
            let right = try HTTPServer(("127.0.0.1", 0), Handler.self, context: ["/": "up"])
            let wrong = try HTTPServer(("127.0.0.1", 0), Handler.self, context: 42)

            """
        let result = try typeCheck(program, name: "context-type")
        #expect(result.status != 0)
        // The one error is the wrong value's, on its line; the right one compiles.
        #expect(result.output.contains("main.swift:7:"), "\(result.output)")
        #expect(result.output.contains("error: cannot convert value of type 'Int'"), "\(result.output)")
        #expect(!result.output.contains("main.swift:6:"), "\(result.output)")
    }

    @Test func aServerWithoutTheContextItsHandlerReadsStopsBeforeServing() async {
        let exit = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let server = try HTTPServer(("127.0.0.1", 0), StubHandler.self)
            try server.serveForever()
        }
        let said = String(decoding: exit?.standardErrorContent ?? [], as: UTF8.self)
        #expect(said.contains("StubHandler reads a context, and this server was made without one"))
    }
}

/// `run()` and `await shutdown()`. A `Task` that calls `run()` needs one of Swift
/// concurrency's threads to start on (two here), and the other suites' tests block those
/// threads in `recv` while they wait for their servers: these run in Scripts/test's serial pass
/// (their type's name says "TaskStartTests"), where nothing else holds the pool.
@Suite("Async serving: run() and await shutdown()")
struct AsyncServingTaskStartTests {
    @Test func runServesUntilItsTaskIsCancelled() async throws {
        let server = try HTTPServer(("127.0.0.1", 0), StubHandler.self, context: Stubs(["/": "up"]))
        defer { server.serverClose() }
        let serving = Task { try await server.run() }
        // The first connection may come before the loop runs: the backlog holds it.
        #expect(try await get(server.serverPort, "/").bodyText == "up")
        serving.cancel()
        try await serving.value
        #expect(!server.isServing)
    }

    @Test func cancellingRunLetsTheRequestInFlightFinish() async throws {
        let stubs = Stubs([:])
        let server = try HTTPServer(("127.0.0.1", 0), StubHandler.self, context: stubs)
        defer { server.serverClose() }
        let serving = Task { try await server.run() }
        let client = try RawClient(port: server.serverPort)
        try client.send("GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")  // into the socket buffer
        await eventually { !stubs.held.withLock { $0.isEmpty } }

        serving.cancel()
        // The serve waits for the held response (within the grace period)...
        try await Task.sleep(for: .milliseconds(50))
        #expect(server.isServing)
        stubs.held.withLock { held in
            held.forEach { $0.finish() }
            held.removeAll()  // a kept response keeps its handler, and so the server, whose context this is
        }
        // ... which arrives whole, with the connection closing after it.
        let response = try #require(try await offThePool { try client.readResponse() })
        #expect(response.bodyText == "held")
        #expect(response.header("Connection") == "close")
        try await serving.value
        #expect(client.isClosedByServer())
    }

    @Test func awaitingShutdownReturnsOnceTheServeIsOver() async throws {
        let server = try HTTPServer(("127.0.0.1", 0), StubHandler.self, context: Stubs(["/": "up"]))
        defer { server.serverClose() }
        let serving = Task { try await server.run() }
        #expect(try await get(server.serverPort, "/").status == 200)
        await server.shutdown()
        #expect(!server.isServing)
        try await serving.value
        // The socket stays bound, as after serveForever(): run() serves again.
        let again = Task { try await server.run() }
        #expect(try await get(server.serverPort, "/").bodyText == "up")
        await server.shutdown()
        try await again.value
    }

    @Test func aShutdownBeforeRunMakesRunReturnAtOnce() async throws {
        let server = try HTTPServer(("127.0.0.1", 0), StubHandler.self, context: Stubs([:]))
        defer { server.serverClose() }
        await server.shutdown()
        try await server.run()
        #expect(!server.isServing)
    }

    @Test func runOnAClosedServerThrows() async throws {
        let server = try HTTPServer(("127.0.0.1", 0), StubHandler.self, context: Stubs([:]))
        server.serverClose()
        await #expect(throws: HTTPServerError.closed) { try await server.run() }
    }
}
