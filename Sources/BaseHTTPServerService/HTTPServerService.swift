import BaseHTTPServer
import ServiceLifecycle

/// An `HTTPServer` as a swift-service-lifecycle `Service`, to run in a `ServiceGroup` beside a
/// program's other services:
///
/// ```swift
/// let server = try HTTPServer(("127.0.0.1", 8080), Handler.self)
/// let group = ServiceGroup(services: [HTTPServerService(server)],
///                          gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
///
/// `run()` serves (`HTTPServer.run()`). The group's graceful shutdown (a signal, or
/// `triggerGracefulShutdown()`) shuts the server down as `shutdown()` does: it stops
/// accepting, lets the requests in flight finish for up to
/// `configuration.shutdownGracePeriod`, and `run()` returns once every connection is closed.
/// Cancellation does the same. The listening socket stays bound until `serverClose()`, or
/// until the server is released.
public struct HTTPServerService: Service {
    /// The server this service runs.
    public let server: HTTPServer

    /// A service that runs `server`.
    public init(_ server: HTTPServer) {
        self.server = server
    }

    public func run() async throws {
        let server = self.server
        try await withGracefulShutdownHandler {
            try await server.run()
        } onGracefulShutdown: {
            server.startShutdown()   // run() returns when it is over
        }
    }
}
