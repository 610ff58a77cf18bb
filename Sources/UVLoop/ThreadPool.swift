import CLibUV

extension Loop {
    /// Runs `work` on libuv's thread pool, then `completion` with its result on the loop thread
    /// (`uv_queue_work`). Called on the loop thread.
    ///
    /// For work that would hold the loop up for long: reading a large directory, building a
    /// large page. Only `work` and its result cross threads, which is why both are
    /// `Sendable`; `completion` stays on the loop thread, so it may use loop-bound objects (a
    /// handler, a connection) that `work` must not touch. The pool is libuv's: shared with
    /// `File`'s requests, `UV_THREADPOOL_SIZE` threads (4 by default), so work that blocks for
    /// long delays file I/O queued behind it.
    ///
    /// `completion` runs exactly once, in a later loop iteration, never from inside this
    /// call. While the work is in flight the loop stays alive: `run()` does not return for
    /// lack of handles, and `close()` waits for it and runs `completion` before it returns.
    /// - Parameters:
    ///   - work: Runs on a thread of the pool. It must not touch anything of the loop.
    ///   - completion: Runs on the loop thread with what `work` returned.
    public func runInThreadPool<Result: Sendable>(_ work: @escaping @Sendable () -> Result,
                                                  then completion: @escaping (Result) -> Void) {
        assertOpen("Loop.runInThreadPool")
        assertOnLoopThread("Loop.runInThreadPool")
        let request = UnsafeMutablePointer<uv_work_t>.allocate(capacity: 1)
        request.initialize(to: uv_work_t())
        let owner: PoolWork = TypedPoolWork(work, completion)
        request.pointee.data = Unmanaged.passRetained(owner).toOpaque()
        let status = uv_queue_work(raw, request, { request in
            PoolWork.owner(of: request!).run()
        }, { request, status in
            PoolWork.finish(request!, status)
        })
        // libuv refuses only a missing work callback, which cannot happen here.
        precondition(status == 0, "uv_queue_work failed: \(UVError(code: status))")
    }
}

/// The owner of one `uv_work_t`: the work, its result and the completion.
///
/// `runInThreadPool` allocates the request and stores a retained owner in `data`; `finish`
/// (libuv's after-work callback, on the loop thread) takes it back, runs the completion and
/// frees the request: the one balancing release.
///
/// The owner is not `Sendable`, yet the pool thread uses it: it calls `run()`, which touches
/// only the `@Sendable` work (immutable) and the result slot. The loop thread touches the slot
/// only in `finish`, which libuv runs after the work has returned (the pool thread hands
/// the request back under libuv's queue mutex, then wakes the loop): the two never overlap,
/// and the result, being `Sendable`, may be made on one thread and used on the other.
private class PoolWork {
    /// On a pool thread: runs the work and keeps its result.
    func run() { fatalError("PoolWork.run() is abstract") }

    /// On the loop thread, once `run()` has returned: hands the result to the completion.
    func complete() { fatalError("PoolWork.complete() is abstract") }

    static func owner(of request: UnsafeMutablePointer<uv_work_t>) -> PoolWork {
        Unmanaged<PoolWork>.fromOpaque(request.pointee.data).takeUnretainedValue()
    }

    /// The after-work callback: on the loop thread, once.
    static func finish(_ request: UnsafeMutablePointer<uv_work_t>, _ status: Int32) {
        let owner = Unmanaged<PoolWork>.fromOpaque(request.pointee.data).takeRetainedValue()
        // Only uv_cancel makes the status UV_ECANCELED, and nothing here cancels work.
        precondition(status == 0, "thread-pool work ended with \(UVError(code: status))")
        if let loop = request.pointee.loop { Loop.owner(of: loop).events &+= 1 }
        request.deallocate()
        owner.complete()
    }
}

private final class TypedPoolWork<Result: Sendable>: PoolWork {
    private let work: @Sendable () -> Result
    private let completion: (Result) -> Void
    /// Set by `run()` on the pool thread; read by `complete()` on the loop thread.
    private var result: Result?

    init(_ work: @escaping @Sendable () -> Result, _ completion: @escaping (Result) -> Void) {
        self.work = work
        self.completion = completion
    }

    override func run() {
        result = work()
    }

    override func complete() {
        guard let result else { fatalError("thread-pool work completed without running") }
        self.result = nil
        completion(result)
    }
}
