import Glibc
import UVLoop

/// A response that a handler finishes after `doFOO()` has returned.
///
/// Write the response through the handler as usual, later, on the loop thread (from a `LoopTimer`
/// or inside `perform(_:)`), then call `finish()`. Requests pipelined behind it wait until
/// then. If the client has gone meanwhile, writes are dropped and `finish()` does nothing.
public final class DeferredResponse: @unchecked Sendable {
    // Sendable because `finish()` and `perform(_:)` hop to the loop thread before touching
    // the handler. The loop thread is the one that made the response (inside `doFOO()`):
    // `Loop.isOnLoopThread` would not do, since it is true for every thread while no thread
    // runs the loop, as between two `handleRequest()` calls.
    private let handler: BaseHTTPRequestHandler
    private let loop: Loop
    private let loopThread = pthread_self()
    private var finished = false

    init(handler: BaseHTTPRequestHandler) {
        self.handler = handler
        loop = handler.server.loop
    }

    private var isOnLoopThread: Bool {
        pthread_equal(loopThread, pthread_self()) != 0 && loop.isOnLoopThread
    }

    /// Whether the client closed the connection before the response was finished.
    public var isClientGone: Bool { handler.connection == nil }

    /// Runs `body` with the handler on the loop thread: from any thread, a way to write the
    /// response. It runs at once when called on the loop thread.
    public func perform(_ body: @escaping @Sendable (BaseHTTPRequestHandler) -> Void) {
        guard isOnLoopThread else {
            loop.execute { self.perform(body) }
            return
        }
        body(handler)
    }

    /// Ends the response and lets the connection go on. Any thread; twice is harmless.
    public func finish() {
        guard isOnLoopThread else {
            loop.execute { self.finish() }
            return
        }
        guard !finished else { return }
        finished = true
        handler.connection?.deferredResponseDidFinish()
    }
}
