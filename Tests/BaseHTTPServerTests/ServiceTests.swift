import BaseHTTPServerService
import Logging
import ServiceLifecycle
import Testing
import UVLoop
@testable import BaseHTTPServer

/// Whether the server has begun its shutdown, read on its loop thread.
private func isShuttingDown(_ server: HTTPServer) async -> Bool {
    await withCheckedContinuation { answer in
        server.loop.execute { answer.resume(returning: server.isShuttingDown) }
    }
}

/// Runs in Scripts/test's serial pass, as `AsyncServingTaskStartTests` does (a ServiceGroup's
/// services start on Swift concurrency's threads).
@Suite("swift-service-lifecycle: a server in a ServiceGroup")
struct ServiceGroupTaskStartTests {
    @Test func aGracefulShutdownOfTheGroupLetsTheRequestInFlightFinish() async throws {
        let stubs = Stubs(["/": "up"])
        let server = try HTTPServer(("127.0.0.1", 0), StubHandler.self, context: stubs)
        defer { server.serverClose() }
        let group = ServiceGroup(services: [HTTPServerService(server)], logger: Logger(label: "test"))
        let running = Task { try await group.run() }

        let port = server.serverPort
        #expect(try await offThePool { try exchange(port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n") }.bodyText == "up")
        let client = try RawClient(port: port)
        try client.send("GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
        while stubs.held.withLock({ $0.isEmpty }) { await Task.yield() }

        await group.triggerGracefulShutdown()   // the group tells its services in its own time
        while !(await isShuttingDown(server)) { await Task.yield() }
        stubs.held.withLock { held in
            held.forEach { $0.finish() }
            held.removeAll()  // a kept response keeps its handler, and so the server, whose context this is
        }
        let response = try #require(try await offThePool { try client.readResponse() })
        #expect(response.bodyText == "held")
        #expect(response.header("Connection") == "close")
        try await running.value   // the group ends once the server's run() has returned
        #expect(!server.isServing)
    }
}
