import CLibUV

/// A libuv timer: fires once after a delay, or repeatedly, on the loop thread.
///
/// The timer's handle lives until `close()` (or the loop's `close()`), even when the `LoopTimer`
/// object is no longer referenced elsewhere: the handle's `data` keeps it alive.
public final class LoopTimer: LoopResource {
    /// The loop the timer runs on.
    public let loop: Loop

    /// Owned by this timer; `data` holds a retain of the timer, released in the close callback,
    /// which is also the only place the handle is freed.
    private let handle: UnsafeMutablePointer<uv_timer_t>
    private var callback: (() -> Void)?
    private var isClosing = false

    /// Creates a stopped timer on `loop`. Called on the loop thread, before the loop's `close()`.
    public init(loop: Loop) {
        loop.assertOpen("LoopTimer.init(loop:)")
        loop.assertOnLoopThread("LoopTimer.init")
        self.loop = loop
        handle = .allocate(capacity: 1)
        // uv_timer_init only fills in the struct and always returns 0, so a failure is a
        // libuv that broke its contract: stop rather than start a handle that is not set up.
        let status = uv_timer_init(loop.raw, handle)
        precondition(status == 0, "uv_timer_init failed: \(UVError(code: status))")
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// Starts (or restarts) the timer: `callback` runs after `milliseconds`, then every
    /// `repeatEvery` milliseconds when that is not zero. Called on the loop thread.
    public func start(after milliseconds: UInt64, repeatEvery: UInt64 = 0,
                      _ callback: @escaping () -> Void) {
        guard !isClosing else { return }
        self.callback = callback
        let status = uv_timer_start(handle, { handle in
            Unmanaged<LoopTimer>.fromOpaque(handle!.pointee.data).takeUnretainedValue().didFire()
        }, milliseconds, repeatEvery)
        // libuv refuses only a closing timer or a missing callback, both ruled out here.
        precondition(status == 0, "uv_timer_start failed: \(UVError(code: status))")
    }

    /// Stops the timer without closing it; `start` may be called again.
    public func stop() {
        guard !isClosing else { return }
        uv_timer_stop(handle)  // Never fails.
        callback = nil
    }

    /// Whether the timer is started and has not yet fired (or repeats).
    public var isActive: Bool { !isClosing && uv_is_active(cuv_timer_as_handle(handle)) != 0 }

    /// Closes the timer; it never fires again. Calling it twice is harmless.
    public func close() {
        guard !isClosing else { return }
        isClosing = true
        callback = nil
        uv_close(cuv_timer_as_handle(handle)) { handle in
            Unmanaged<LoopTimer>.fromOpaque(handle!.pointee.data).takeUnretainedValue().didClose()
        }
    }

    private func didFire() {
        guard let callback else { return }
        if uv_timer_get_repeat(handle) == 0 { self.callback = nil }
        callback()
    }

    private func didClose() {
        handle.deallocate()
        Unmanaged.passUnretained(self).release()
    }
}

@available(*, unavailable)
extension LoopTimer: Sendable {}
