import Glibc

/// Whether a thread serves, and the handshake that lets `shutdown()` wait for it to stop.
final class ServingState: @unchecked Sendable {
    enum ShutdownAction { case notServing, onServingThread, wait }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let stopped = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var serving = false
    /// The thread inside `serveForever()` while `serving`. It, not "whoever runs the loop",
    /// decides where a shutdown runs: between `begin()` and the loop starting, no thread runs
    /// the loop yet, and a shutdown from another thread must still be handed to it.
    private var servingThread = pthread_t()
    private var shutdownRequested = false
    /// The tasks awaiting the serve's end (`stopped()`), resumed by `end()`.
    private var stopWaiters: [CheckedContinuation<Void, Never>] = []

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(stopped, nil)
    }

    deinit {
        pthread_cond_destroy(stopped)
        pthread_mutex_destroy(mutex)
        stopped.deallocate()
        mutex.deallocate()
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    var isServing: Bool { locked { serving } }

    /// Whether `shutdown()` was called, perhaps before serving began (read under the lock:
    /// the call may come from another thread at any time).
    var wasShutdownRequested: Bool { locked { shutdownRequested } }

    func begin() -> Bool {
        locked {
            if serving { return false }
            serving = true
            servingThread = pthread_self()
            return true
        }
    }

    /// The serve is over; a shutdown asked for it is done, so a later serve serves.
    func end() {
        let waiters = locked {
            serving = false
            shutdownRequested = false
            pthread_cond_broadcast(stopped)
            defer { stopWaiters = [] }
            return stopWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func requestShutdown() -> ShutdownAction {
        locked {
            shutdownRequested = true
            if !serving { return .notServing }
            return pthread_equal(servingThread, pthread_self()) != 0 ? .onServingThread : .wait
        }
    }

    func waitUntilStopped() {
        locked {
            while serving { pthread_cond_wait(stopped, mutex) }
        }
    }

    /// Returns when no thread serves, without blocking the caller's thread meanwhile.
    func stopped() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let resumeNow = locked {
                if !serving { return true }
                stopWaiters.append(waiter)
                return false
            }
            if resumeNow { waiter.resume() }
        }
    }
}
