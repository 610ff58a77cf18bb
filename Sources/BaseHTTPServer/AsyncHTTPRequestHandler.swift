/// A handler whose do-methods are `async`: they may `await` (a database, an actor, another
/// service) and answer afterwards, and the loop serves other connections meanwhile.
///
/// ```swift
/// final class Lookup: AsyncHTTPRequestHandler {
///     override func doGET() async throws {
///         let value = try await store.value(for: path)    // the loop is free meanwhile
///         sendResponse(200)
///         endHeaders()
///         wfile.write(value)
///     }
/// }
/// ```
///
/// A connection's requests run in one task, which prefers the server's loop as its executor
/// (see `Loop`'s `TaskExecutor` conformance): the handler's code runs on the loop thread,
/// before and after every `await`, so it uses the handler as synchronous code does. Between
/// requests the task waits for the next one; it ends with the connection. The response is
/// deferred (`deferResponse()`) while the method runs and finished when it returns; requests
/// pipelined behind it wait, and are answered in order. A method that throws gets a 500 if it
/// has sent nothing yet, else its connection is cut, as a synchronous one does.
///
/// When the client goes (its connection closes, or it closes its side while a method runs)
/// the task is cancelled: `Task.isCancelled` turns true, and cancellable awaits (a
/// `Task.sleep`, say) throw `CancellationError`, which ends the response quietly.
///
/// Synchronous overrides (`override func doGET() throws`) still work in a subclass: they
/// replace the async dispatch for their method.
open class AsyncHTTPRequestHandler: BaseHTTPRequestHandler {
    /// Answers GET. The default answers 501.
    open func doGET() async throws { try await doMethod("GET") }
    /// Answers HEAD. The default answers 501.
    open func doHEAD() async throws { try await doMethod("HEAD") }
    /// Answers POST. The default answers 501.
    open func doPOST() async throws { try await doMethod("POST") }
    /// Answers PUT. The default answers 501.
    open func doPUT() async throws { try await doMethod("PUT") }
    /// Answers DELETE. The default answers 501.
    open func doDELETE() async throws { try await doMethod("DELETE") }
    /// Answers PATCH. The default answers 501.
    open func doPATCH() async throws { try await doMethod("PATCH") }
    /// Answers OPTIONS. The default answers 501.
    open func doOPTIONS() async throws { try await doMethod("OPTIONS") }
    /// Answers any other method, and the defaults of those above: 501 `Unsupported method`.
    open func doMethod(_ command: String) async throws {
        try super.doMethod(command)
    }

    // The synchronous do-methods, which the server calls, start the async ones.
    override open func doGET() throws { respondInATask { try await $0.doGET() } }
    override open func doHEAD() throws { respondInATask { try await $0.doHEAD() } }
    override open func doPOST() throws { respondInATask { try await $0.doPOST() } }
    override open func doPUT() throws { respondInATask { try await $0.doPUT() } }
    override open func doDELETE() throws { respondInATask { try await $0.doDELETE() } }
    override open func doPATCH() throws { respondInATask { try await $0.doPATCH() } }
    override open func doOPTIONS() throws { respondInATask { try await $0.doOPTIONS() } }
    override open func doMethod(_ command: String) throws {
        respondInATask { try await $0.doMethod(command) }
    }

    /// A request for the connection's task: the do-method to run, and the response it ends.
    private struct Work: Sendable {
        let method: @Sendable (AsyncHTTPRequestHandler) async throws -> Void
        let response: DeferredResponse
    }

    /// The task that runs this connection's requests, made with the first one. One task per
    /// connection, not per request: a task is a heap block of about 1 KiB, past malloc's
    /// per-thread cache, and making and freeing one per request cost more than half of an
    /// async request's instructions (Scripts/callgrind --async: 18.2k against 6.1k sync).
    private var task: Task<Void, Never>?
    /// The task, waiting for the next request.
    private var parked: CheckedContinuation<Work?, Never>?
    /// A request dispatched while the task was still ending the one before (its `finish()`
    /// lets the next pipelined request in before the method has returned).
    private var queued: Work?
    /// Whether the connection has closed: the task ends instead of waiting.
    private var isClosed = false

    /// Defers the response and has the connection's task run `method`, which finishes it.
    private func respondInATask(_ method: @escaping @Sendable (AsyncHTTPRequestHandler) async throws -> Void) {
        let work = Work(method: method, response: deferResponse())
        let task: Task<Void, Never>
        if let running = self.task {
            task = running
            if let parked {
                self.parked = nil
                parked.resume(returning: work)  // runs in this loop iteration
            } else {
                queued = work
            }
        } else {
            // The box hands the handler to the task, which runs on this thread only (its
            // executor is this loop), and checks so when it opens it.
            let handler = LoopBound(self)
            task = Task(executorPreference: server.loop) {
                guard let handler = handler.valueOnItsThread else {
                    preconditionFailure("an async handler's task ran off its loop thread")
                }
                var next: Work? = work
                while let work = next {
                    await handler.run(work)
                    next = await handler.nextWork()
                }
            }
            self.task = task
        }
        work.response.whenClientLeaves { task.cancel() }
    }

    /// Runs one request's method and ends its response.
    private func run(_ work: Work) async {
        do {
            try await work.method(self)
            work.response.finish()
        } catch is CancellationError where Task.isCancelled {
            work.response.finish()  // The client has gone: nothing is waiting for the rest.
        } catch {
            work.response.fail(error)
        }
    }

    /// The next request, once it is dispatched; nil once the connection has closed.
    private func nextWork() async -> Work? {
        if let queued {
            self.queued = nil
            return queued
        }
        if isClosed { return nil }
        return await withCheckedContinuation { parked = $0 }
    }

    override func connectionDidClose() {
        isClosed = true
        // The task keeps its closure, and so this handler, for as long as the task object
        // lives: letting go of it here breaks that cycle once the task has ended.
        task = nil
        if let parked {
            self.parked = nil
            parked.resume(returning: nil)
        }
    }
}
