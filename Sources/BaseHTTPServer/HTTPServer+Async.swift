import UVLoop

extension HTTPServer {
    /// Serves until the calling task is cancelled or `shutdown()` is called, and returns
    /// (or throws) when the serve is over: `try await server.run()`.
    ///
    /// The loop runs on a thread of its own, not on one of Swift concurrency's: the task waits
    /// without holding a thread. Cancelling the task shuts the server down gracefully, as
    /// `shutdown()` does: it stops accepting, lets the requests in flight finish for up to
    /// `configuration.shutdownGracePeriod`, and `run()` returns once every connection is
    /// closed. The listening socket stays bound; `serverClose()` releases it.
    ///
    /// A call while the server already serves returns at once, as `serveForever()` does.
    /// - Throws: `HTTPServerError.closed` after `serverClose()`; `UVError` when no thread can
    ///   be made.
    public func run() async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (served: CheckedContinuation<Void, any Error>) in
                do {
                    try detachThread { [self] in
                        do {
                            try serveForever()
                            served.resume()
                        } catch {
                            served.resume(throwing: error)
                        }
                    }
                } catch {
                    served.resume(throwing: error)
                }
            }
        } onCancel: {
            startShutdown()
        }
    }

    /// Shuts the server down gracefully, as `shutdown()` does, and returns when the serve is
    /// over, without blocking the calling task's thread while the connections finish.
    ///
    /// Called before the server serves, it makes the next serve stop at once.
    public func shutdown() async {
        if askToShutDown() { await serving.stopped() }
    }
}
