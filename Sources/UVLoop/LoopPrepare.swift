import CLibUV

/// Runs a block on the loop thread just before the loop waits for I/O, in every iteration
/// while started (a libuv `uv_prepare_t`).
///
/// Everything loop code does in one iteration (I/O callbacks, timers, close callbacks) comes
/// before the next iteration's prepare step, and the loop waits for I/O only after it: the
/// block is the last code to run before the thread may sleep. That makes it the place to
/// hand on work the iteration gathered (log lines, say) in one piece. A `run()` or
/// `runOnce()` that returns does not come back to it: work gathered in the last iteration
/// waits for the next run, so the owner hands it on itself when it stops running the loop.
///
/// A started handle neither keeps the loop running by itself (it is unreferenced) nor keeps
/// it from sleeping: it only runs when the loop is about to poll. Stop it when there is
/// nothing to do, and an idle loop does not wake for it.
///
/// The handle lives until `close()` (or the loop's `close()`), even when the `LoopPrepare`
/// object is no longer referenced elsewhere: the handle's `data` keeps it alive.
public final class LoopPrepare: LoopResource {
    /// The loop the block runs on.
    public let loop: Loop

    /// Owned by this object; `data` holds a retain of it, released in the close callback,
    /// which is also the only place the handle is freed.
    private let handle: UnsafeMutablePointer<uv_prepare_t>
    /// Set once, at `init`: starting and stopping in every iteration allocates nothing.
    private var callback: (() -> Void)?
    private var isClosing = false

    /// Creates a stopped handle on `loop` that runs `callback` when started. Called on the
    /// loop thread, before the loop's `close()`.
    public init(loop: Loop, _ callback: @escaping () -> Void) {
        loop.assertOpen("LoopPrepare.init(loop:_:)")
        loop.assertOnLoopThread("LoopPrepare.init")
        self.loop = loop
        self.callback = callback
        handle = .allocate(capacity: 1)
        // uv_prepare_init only fills in the struct and always returns 0, so a failure is a
        // libuv that broke its contract: stop rather than start a handle that is not set up.
        let status = uv_prepare_init(loop.raw, handle)
        precondition(status == 0, "uv_prepare_init failed: \(UVError(code: status))")
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        uv_unref(cuv_prepare_as_handle(handle))
    }

    /// Runs the block before every wait for I/O from now on, until `stop()`. Starting a
    /// started handle does nothing. Called on the loop thread.
    public func start() {
        guard !isClosing else { return }
        let status = uv_prepare_start(handle) { handle in
            Unmanaged<LoopPrepare>.fromOpaque(handle!.pointee.data).takeUnretainedValue().didPrepare()
        }
        // libuv refuses only a missing callback, ruled out here.
        precondition(status == 0, "uv_prepare_start failed: \(UVError(code: status))")
    }

    /// Stops running the block; `start()` may be called again. Called on the loop thread.
    public func stop() {
        guard !isClosing else { return }
        uv_prepare_stop(handle)  // Never fails.
    }

    /// Whether the handle is started.
    public var isActive: Bool { !isClosing && uv_is_active(cuv_prepare_as_handle(handle)) != 0 }

    /// Whether `close()` was called (by the owner or by the loop's `close()`): the block never
    /// runs again.
    public var isClosed: Bool { isClosing }

    /// Closes the handle; the block never runs again. Calling it twice is harmless.
    public func close() {
        guard !isClosing else { return }
        isClosing = true
        callback = nil
        uv_close(cuv_prepare_as_handle(handle)) { handle in
            Unmanaged<LoopPrepare>.fromOpaque(handle!.pointee.data).takeUnretainedValue().didClose()
        }
    }

    private func didPrepare() {
        callback?()
    }

    private func didClose() {
        handle.deallocate()
        Unmanaged.passUnretained(self).release()
    }
}

@available(*, unavailable)
extension LoopPrepare: Sendable {}
