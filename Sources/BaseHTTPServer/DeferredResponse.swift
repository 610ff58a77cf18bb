import Glibc
import Synchronization
import UVLoop

/// A response that a handler finishes after `doFOO()` has returned.
///
/// Write the response through the handler as usual, later, on the loop thread (from a
/// `LoopTimer` or inside `perform(_:)`), then call `finish()`. Requests pipelined behind it
/// wait until then. If the client has gone meanwhile, writes are dropped and `finish()` does
/// nothing; the same holds once the server has stopped. Output written after `finish()` is
/// dropped (and logged), never sent.
public final class DeferredResponse: Sendable {
    // Sendable: `isClientGone` is an atomic, and `finish()` and `perform(_:)` hop to the
    // loop thread before touching the handler, which only the loop thread uses.
    private let handlerBox: LoopBound<BaseHTTPRequestHandler>
    private let loop: Loop
    private let clientGone = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)
    /// Run once when the client leaves (`whenClientLeaves`): an async handler's task cancel.
    private let leaveAction = Locked<(@Sendable () -> Void)?>(nil)

    init(handler: BaseHTTPRequestHandler) {
        handlerBox = LoopBound(handler)
        loop = handler.server.loop
    }

    /// Whether the client closed the connection before the response was finished. Safe
    /// from any thread.
    public var isClientGone: Bool { clientGone.load(ordering: .acquiring) }

    /// Called on the loop thread when the connection closes with this response in progress.
    func clientDidLeave() {
        clientGone.store(true, ordering: .releasing)
        clientStoppedSending()
    }

    /// Called on the loop thread when the client has closed its side (an end of input) with
    /// this response in progress: it will most likely not read the answer (nginx takes it so
    /// too), though it may, and the connection stays open for it.
    func clientStoppedSending() {
        let action = leaveAction.withLock { action in
            defer { action = nil }
            return action
        }
        action?()
    }

    /// Runs `action` once, when the client leaves or closes its side; at once if it already
    /// has left.
    func whenClientLeaves(_ action: @escaping @Sendable () -> Void) {
        leaveAction.withLock { $0 = action }
        if isClientGone { clientStoppedSending() }
    }

    /// Runs `body` with the handler on the loop thread: from any thread, a way to write the
    /// response. It runs at once when called on the loop thread; after the server stopped
    /// serving for good (`serverClose()`), never.
    public func perform(_ body: @escaping @Sendable (BaseHTTPRequestHandler) -> Void) {
        onItsThread { body($0) }
    }

    /// Ends the response and lets the connection go on. Any thread; twice is harmless.
    public func finish() {
        onItsThread { [self] handler in
            guard !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
            handler.connection?.deferredResponseDidFinish()
        }
    }

    /// Ends the response as a handler that threw `error` would: a 500 if nothing was sent
    /// yet, else a cut connection. Any thread; after `finish()` (or a first `fail`), nothing.
    func fail(_ error: any Error) {
        onItsThread { [self] handler in
            guard !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
            handler.connection?.deferredResponseDidFail(error)
        }
    }

    /// Runs `body` with the handler on the thread that serves its connection: at once when
    /// called there, else after one hop through the loop. When even the hop does not land
    /// there, the serve that made this response is over (the server serves again from
    /// another thread, or not at all), and there is nothing left to act on.
    private func onItsThread(_ body: @escaping @Sendable (BaseHTTPRequestHandler) -> Void) {
        if let handler = handlerBox.valueOnItsThread {
            body(handler)
            return
        }
        loop.execute { [handlerBox] in
            if let handler = handlerBox.valueOnItsThread { body(handler) }
        }
    }
}

/// A value that only the thread that made it may use: the loop thread, for a handler. The
/// check is made at run time on every use, which is what makes handing the box to other
/// threads sound.
///
/// The thread that made it, not "whoever runs the loop": between two `handleRequest()`
/// calls no thread runs the loop, and a call from another thread must still hop.
final class LoopBound<Value: AnyObject>: @unchecked Sendable {
    private let value: Value
    private let thread = pthread_self()

    init(_ value: Value) {
        self.value = value
    }

    /// The value, on the thread that made the box; nil on any other.
    var valueOnItsThread: Value? {
        pthread_equal(thread, pthread_self()) != 0 ? value : nil
    }
}
