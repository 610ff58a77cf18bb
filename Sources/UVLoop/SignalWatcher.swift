import CLibUV

/// Runs a block on the loop thread each time the process receives a signal (`uv_signal_t`).
///
/// libuv turns the signal into a loop event, so the block may do anything loop code may: no
/// async-signal-safety rules apply to it. The handle does not keep the loop running by itself.
public final class SignalWatcher: LoopResource {
    /// The loop the block runs on.
    public let loop: Loop

    /// Owned by this watcher; `data` holds a retain of it, released in the close callback,
    /// which is also the only place the handle is freed.
    private let handle: UnsafeMutablePointer<uv_signal_t>
    private var callback: ((Int32) -> Void)?
    private var isClosing = false

    /// Starts watching `signal` (`SIGINT`, `SIGTERM`, …). Called on the loop thread.
    /// - Throws: `UVError` when libuv cannot watch it (an invalid signal number).
    public init(loop: Loop, signal: Int32, _ callback: @escaping (Int32) -> Void) throws(UVError) {
        loop.assertOnLoopThread("SignalWatcher.init")
        self.loop = loop
        self.callback = callback
        handle = .allocate(capacity: 1)
        let initialized = uv_signal_init(loop.raw, handle)
        guard initialized == 0 else {
            handle.deallocate()
            throw UVError(code: initialized)
        }
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        let started = uv_signal_start(handle, { handle, signal in
            Unmanaged<SignalWatcher>.fromOpaque(handle!.pointee.data).takeUnretainedValue().didReceive(signal)
        }, signal)
        guard started == 0 else {
            close()
            throw UVError(code: started)
        }
        uv_unref(cuv_signal_as_handle(handle))
    }

    private func didReceive(_ signal: Int32) {
        loop.events &+= 1
        callback?(signal)
    }

    /// Stops watching; the block never runs again. Calling it twice is harmless.
    public func close() {
        guard !isClosing else { return }
        isClosing = true
        callback = nil
        uv_close(cuv_signal_as_handle(handle)) { handle in
            let watcher = Unmanaged<SignalWatcher>.fromOpaque(handle!.pointee.data).takeRetainedValue()
            watcher.handle.deallocate()
        }
    }
}

@available(*, unavailable)
extension SignalWatcher: Sendable {}
