import CLibUV

/// Runs a block on the loop thread once in every iteration of the loop while started: a
/// libuv `uv_idle_t` or `uv_prepare_t`, as `phase` says.
///
/// One iteration runs, in order: due timers, the idle step, the prepare step, the poll for
/// I/O (its callbacks), then closing handles' callbacks. So:
///
/// - `.beforeWait` (prepare) runs after everything loop code did in the iteration, just
///   before the loop may sleep: the place to hand on work the iteration gathered (log lines,
///   say) in one piece. A started handle does not keep the loop from sleeping.
/// - `.nextTurn` (idle) runs at the start of the iteration, and while it is started the poll
///   for I/O does not sleep: it takes the events at hand and returns. Work that a block
///   leaves for itself therefore waits one iteration, behind the I/O that is ready, and
///   never holds up other connections. (A timer due in 0 ms does not do that: libuv 1.44
///   runs a timer restarted from its own callback again at once, in the same iteration.)
///
/// A `run()` or `runOnce()` that returns does not come back to the block: work gathered in
/// the last iteration waits for the next run, so the owner hands it on itself when it stops
/// running the loop. A started handle does not keep the loop running by itself (it is
/// unreferenced): stop it when there is nothing to do, and an idle loop sleeps.
///
/// The handle lives until `close()` (or the loop's `close()`), even when the `LoopHook` is no
/// longer referenced elsewhere: the handle's `data` keeps it alive.
public final class LoopHook: LoopResource {
    /// Where in each iteration of the loop the block runs.
    public enum Phase: Sendable {
        /// At the start of the iteration; the loop does not sleep while started (`uv_idle_t`).
        case nextTurn
        /// Just before the loop waits for I/O (`uv_prepare_t`).
        case beforeWait
    }

    /// The loop the block runs on.
    public let loop: Loop
    /// Where in each iteration the block runs.
    public let phase: Phase

    /// Owned by this object, allocated as the phase's handle type; `data` holds a retain of
    /// this object, released in the close callback, which is also the only place the handle
    /// is freed.
    private let handle: UnsafeMutablePointer<uv_handle_t>
    /// Set once, at `init`: starting and stopping in every iteration allocates nothing.
    private var callback: (() -> Void)?
    private var isClosing = false

    /// Creates a stopped handle on `loop` that runs `callback` in `phase` when started.
    /// Called on the loop thread, before the loop's `close()`.
    public init(loop: Loop, _ phase: Phase, _ callback: @escaping () -> Void) {
        loop.assertOpen("LoopHook.init(loop:_:_:)")
        loop.assertOnLoopThread("LoopHook.init")
        self.loop = loop
        self.phase = phase
        self.callback = callback
        // uv_idle_init and uv_prepare_init only fill in the struct and always return 0, so a
        // failure is a libuv that broke its contract: stop rather than use a handle not set up.
        let status: Int32
        switch phase {
        case .nextTurn:
            let idle = UnsafeMutablePointer<uv_idle_t>.allocate(capacity: 1)
            status = uv_idle_init(loop.raw, idle)
            handle = cuv_idle_as_handle(idle)
        case .beforeWait:
            let prepare = UnsafeMutablePointer<uv_prepare_t>.allocate(capacity: 1)
            status = uv_prepare_init(loop.raw, prepare)
            handle = cuv_prepare_as_handle(prepare)
        }
        precondition(status == 0, "libuv refused to set up a \(phase) handle: \(UVError(code: status))")
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        uv_unref(handle)
    }

    /// Runs the block in every iteration from now on, until `stop()`. Starting a started
    /// handle does nothing. Called on the loop thread.
    public func start() {
        guard !isClosing else { return }
        // libuv refuses only a missing callback, ruled out here.
        let status = switch phase {
        case .nextTurn: uv_idle_start(cuv_handle_as_idle(handle)) { LoopHook.fire(cuv_idle_as_handle($0)) }
        case .beforeWait: uv_prepare_start(cuv_handle_as_prepare(handle)) { LoopHook.fire(cuv_prepare_as_handle($0)) }
        }
        precondition(status == 0, "libuv refused to start a \(phase) handle: \(UVError(code: status))")
    }

    /// Stops running the block; `start()` may be called again. Called on the loop thread.
    public func stop() {
        guard !isClosing else { return }
        switch phase {  // Neither fails.
        case .nextTurn: uv_idle_stop(cuv_handle_as_idle(handle))
        case .beforeWait: uv_prepare_stop(cuv_handle_as_prepare(handle))
        }
    }

    /// Whether the handle is started.
    public var isActive: Bool { !isClosing && uv_is_active(handle) != 0 }

    /// Whether `close()` was called (by the owner or by the loop's `close()`): the block never
    /// runs again.
    public var isClosed: Bool { isClosing }

    /// Closes the handle; the block never runs again. Calling it twice is harmless.
    public func close() {
        guard !isClosing else { return }
        isClosing = true
        callback = nil
        uv_close(handle) { handle in
            Unmanaged<LoopHook>.fromOpaque(handle!.pointee.data).takeUnretainedValue().didClose()
        }
    }

    private static func fire(_ handle: UnsafeMutablePointer<uv_handle_t>?) {
        Unmanaged<LoopHook>.fromOpaque(handle!.pointee.data).takeUnretainedValue().callback?()
    }

    private func didClose() {
        // Allocated as a uv_idle_t or uv_prepare_t; freed as the raw bytes it is.
        UnsafeMutableRawPointer(handle).deallocate()
        Unmanaged.passUnretained(self).release()
    }
}

@available(*, unavailable)
extension LoopHook: Sendable {}
