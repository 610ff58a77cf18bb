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
/// Each request runs in a task of its own that prefers the server's loop as its executor (see
/// `Loop`'s `TaskExecutor` conformance): the handler's code runs on the loop thread, before
/// and after every `await`, so it uses the handler as synchronous code does. The response is
/// deferred (`deferResponse()`) while the method runs and finished when it returns; requests
/// pipelined behind it wait, and are answered in order. A method that throws gets a 500 if it
/// has sent nothing yet, else its connection is cut, as a synchronous one does.
///
/// When the client goes (its connection closes, or it closes its side while the method
/// runs) the task is cancelled: `Task.isCancelled` turns true, and cancellable awaits (a
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

    /// Defers the response and runs `method` in a task on the loop, which finishes it.
    private func respondInATask(_ method: sending @escaping (AsyncHTTPRequestHandler) async throws -> Void) {
        let response = deferResponse()
        // The box hands the handler to the task, which runs on this thread only (its
        // executor is this loop), and checks so when it opens it.
        let handler = LoopBound(self)
        let task = Task(executorPreference: server.loop) {
            guard let handler = handler.valueOnItsThread else {
                preconditionFailure("an async handler's task ran off its loop thread")
            }
            do {
                try await method(handler)
                response.finish()
            } catch is CancellationError where Task.isCancelled {
                response.finish()  // The client has gone: nothing is waiting for the rest.
            } catch {
                response.fail(error)
            }
        }
        response.whenClientLeaves { task.cancel() }
    }
}
