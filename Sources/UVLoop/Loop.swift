import CLibUV
import Glibc
import Synchronization

/// An event loop: one `uv_loop_t`, run by one thread at a time.
///
/// Everything about a loop and its handles happens on the thread that runs it, except
/// `execute(_:)`, which any thread may call to have a block run there. A loop is `Sendable`
/// only so that it can be handed to the thread that will run it and to threads that call
/// `execute(_:)`; `assertOnLoopThread()` checks the rest at run time.
public final class Loop: @unchecked Sendable {
    /// The libuv loop. Owned by this object: freed in `close()` once `uv_loop_close` succeeds.
    let raw: UnsafeMutablePointer<uv_loop_t>

    /// The wake-up handle behind `execute(_:)`. Owned by this loop; its `data` is this loop,
    /// unretained, because the loop closes it itself in `close()`.
    private let wakeUp: UnsafeMutablePointer<uv_async_t>

    /// The one buffer every read on this loop lands in (libuv's alloc callback hands it out).
    /// Reads are delivered synchronously, so one buffer serves every connection.
    let readBuffer: UnsafeMutableRawPointer
    let readBufferSize: Int

    /// Blocks from `execute(_:)` and whether the loop still takes them, guarded by `queueLock`
    /// (a pthread mutex, which ThreadSanitizer understands).
    private var queued: [@Sendable () -> Void] = []
    private var takesBlocks = true
    private let queueLock = PthreadLock()

    /// The thread in `run()` or `runOnce()`, or 0 when no thread is running the loop.
    private let runningThread = Atomic<UInt>(0)

    /// Whether `close()` ran: the `uv_loop_t` is then freed (or, after `EBUSY`, abandoned).
    private(set) var isClosed = false

    /// Streams (TCP connections and pipes) created on this loop and not yet closed (their close
    /// callback has not run). Internal: the tests read it to find leaks.
    var liveConnections = 0

    /// Reaps the children `ChildProcess.spawn` started on this loop; made with the first one.
    var childReaper: ChildReaper?

    /// Task jobs enqueued on the loop thread while it runs (see `Loop+Executor`), and the
    /// hook that runs them in the loop's next turn. Loop thread only.
    var localJobs: [UnownedJob] = []
    var jobRunner: LoopHook?

    /// Creates a loop with its own `uv_loop_t` and a read buffer of `readBufferSize` bytes.
    ///
    /// libuv writes to sockets with `write(2)`, which raises `SIGPIPE` when the peer has
    /// gone; the failure is reported as `EPIPE` anyway. Likewise a file write past the
    /// process's file-size limit raises `SIGXFSZ`, and fails with `EFBIG`. So the first loop
    /// sets both signals to be ignored, unless the process already chose something other
    /// than the default for one: an error to answer, never a killed server.
    /// - Throws: `UVError` when libuv cannot set the loop up.
    public convenience init(readBufferSize: Int = 64 * 1024) throws(UVError) {
        try self.init(readBufferSize: readBufferSize, wakeUpInitResult: nil)
    }

    /// Creates a loop as `init(readBufferSize:)` does, or one whose wake-up handle fails.
    ///
    /// A test seam, and the only one: with `wakeUpInitResult` set, `uv_async_init` is not
    /// called and that code stands in for its result, so that a test can check that a failed
    /// wake-up handle throws and leaves nothing behind. Everything else passes nil.
    init(readBufferSize: Int, wakeUpInitResult: Int32?) throws(UVError) {
        Loop.ignoreSignalsThatErrorsReport()
        raw = .allocate(capacity: 1)
        wakeUp = .allocate(capacity: 1)
        self.readBufferSize = readBufferSize
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        let status = uv_loop_init(raw)
        guard status == 0 else {
            raw.deallocate()
            wakeUp.deallocate()
            readBuffer.deallocate()
            throw UVError(code: status)
        }
        raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        // uv_async_init fails when the loop's wake-up descriptor (an eventfd) cannot be made.
        // The handle is then not initialised, so it must not be closed: the loop holds no
        // handle yet and closes at once.
        let wakeUpStatus = wakeUpInitResult ?? uv_async_init(raw, wakeUp) { handle in
            Loop.withOwner(of: handle!.pointee.loop) { loop in
                loop.events &+= 1
                loop.runQueued()
            }
        }
        guard wakeUpStatus == 0 else {
            let closeStatus = uv_loop_close(raw)
            precondition(closeStatus == 0, "uv_loop_close failed on a loop without handles")
            raw.deallocate()
            wakeUp.deallocate()
            readBuffer.deallocate()
            throw UVError(code: wakeUpStatus)
        }
        wakeUp.pointee.data = raw.pointee.data
    }

    /// A loop that was never closed keeps its libuv memory: its handles may still point at it.
    deinit {
        if isClosed { readBuffer.deallocate() }
    }

    private static func ignoreSignalsThatErrorsReport() {
        for signal in [SIGPIPE, SIGXFSZ] {
            var current = sigaction()
            guard sigaction(signal, nil, &current) == 0,
                  current.__sigaction_handler.sa_handler == nil  // SIG_DFL
            else { continue }
            var ignore = sigaction()
            ignore.__sigaction_handler.sa_handler = SIG_IGN
            sigaction(signal, &ignore, nil)
        }
    }

    static func owner(of loop: UnsafeMutablePointer<uv_loop_t>) -> Loop {
        Unmanaged<Loop>.fromOpaque(loop.pointee.data).takeUnretainedValue()
    }

    /// Runs `body` with the loop of a libuv callback, borrowed without reference counting
    /// (the loop outlives every callback it runs).
    @inline(__always)
    static func withOwner<R>(of loop: UnsafeMutablePointer<uv_loop_t>, _ body: (Loop) -> R) -> R {
        Unmanaged<Loop>.fromOpaque(loop.pointee.data)._withUnsafeGuaranteedRef(body)
    }

    // MARK: Running

    /// Runs the loop on the calling thread until `stop()` is called on it.
    public func run() {
        assertOpen("Loop.run()")
        enter()
        defer {
            stopRequested = false  // as libuv clears its stop flag when uv_run returns
            runLocalJobs()  // enqueued in the last iteration, for a turn that does not come
            leave()
        }
        guard busyPollLimit > 0 else {
            uv_run(raw, UV_RUN_DEFAULT)
            return
        }
        var idleSince = uv_hrtime()
        while true {
            // Block for the next event, and learn from the gap since the last one whether
            // polling a little longer would have caught it without sleeping. A wake-up with
            // no event (a timer, a handle closing) teaches nothing and starts no polling.
            let seen = events
            let alive = uv_run(raw, UV_RUN_ONCE) != 0
            if stopRequested || !alive { return }
            if events == seen { continue }
            let now = uv_hrtime()
            adaptPollWindow(gap: now &- idleSince)
            idleSince = now
            if pollWindow > 0 && now >= pollPausedUntil {
                guard let lastEvent = busyPoll() else { return }
                idleSince = lastEvent
            }
        }
    }

    /// The longest the loop polls for events before it blocks, in nanoseconds; 0 (the
    /// default) makes `run()` block as soon as there is nothing to do.
    ///
    /// Blocking puts an idle CPU to sleep, and on many machines (virtual ones above all)
    /// waking it for the next event costs both the sender and this thread several
    /// microseconds. When events come close together, polling for them instead is both
    /// faster and no more work. The loop learns how long to poll, as Linux's `haltpoll`
    /// does for an idle CPU: a gap between events within the limit doubles the window (from
    /// 10 µs), a longer one halves it, so a loop whose events come far apart soon stops
    /// polling. While polling it yields the CPU to any other runnable thread.
    ///
    /// Polling pays only while it mostly waits. When most of its iterations find events, the
    /// loop is saturated: it would find them without sleeping anyway, and polling would only
    /// spend its spare moments and split its batches into more, smaller iterations. It then
    /// blocks for 10 ms before it tries polling again.
    ///
    /// At most one second. Set it on the loop thread, before or between runs, and before
    /// `close()`.
    public var busyPollLimit: UInt64 = 0 {
        didSet {
            assertOpen("Loop.busyPollLimit")
            busyPollLimit = min(busyPollLimit, 1_000_000_000)
            pollWindow = min(pollWindow, busyPollLimit)
        }
    }

    /// How long `run()` polls now before blocking (nanoseconds), within `busyPollLimit`.
    /// Read it on the loop thread. A statistic for tests, not API: `package`, because the
    /// BaseHTTPServer tests read it without `@testable`.
    package private(set) var pollWindow: UInt64 = 0

    /// Whether polling is paused because the loop was found saturated (see `busyPollLimit`).
    /// Read it on the loop thread. Internal: a statistic for tests.
    var isPollingPaused: Bool { uv_hrtime() < pollPausedUntil }

    /// Until when (`uv_hrtime`) polling is paused; how long a pause lasts.
    private var pollPausedUntil: UInt64 = 0
    private static let saturatedPollPause: UInt64 = 10_000_000

    /// Counts the callbacks that did work (reads, accepts, writes, wake-ups, file
    /// completions), so that polling can tell an iteration that found events from an empty one.
    @exclusivity(unchecked) var events = 0
    /// Set by `stop()`; cleared whenever a run returns, as libuv clears its own stop flag.
    @exclusivity(unchecked) private var stopRequested = false

    /// Grows the window when the gap between events was one polling would have bridged,
    /// and shrinks it (to nothing, below 10 µs) when it was longer.
    private func adaptPollWindow(gap: UInt64) {
        let start = min(10_000, busyPollLimit)
        if gap <= busyPollLimit {
            pollWindow = pollWindow >= busyPollLimit / 2 ? busyPollLimit : max(pollWindow * 2, start)
        } else {
            pollWindow = pollWindow / 2 < start ? 0 : pollWindow / 2
        }
    }

    /// Runs non-blocking iterations until `pollWindow` passes without an event, or until
    /// most of at least eight iterations found events (saturated: polling pauses).
    /// - Returns: when the last event was seen (`uv_hrtime`), or nil when the loop stopped
    ///   or has nothing left to run.
    private func busyPoll() -> UInt64? {
        var lastEvent = uv_hrtime()
        var found = 0
        var missed = 0
        while true {
            let seen = events
            let alive = uv_run(raw, UV_RUN_NOWAIT) != 0
            if stopRequested || !alive { return nil }
            let now = uv_hrtime()
            if events != seen {
                lastEvent = now
                found += 1
                if found >= 8 && missed < found {
                    pollPausedUntil = now &+ Loop.saturatedPollPause
                    return now
                }
            } else if now &- lastEvent >= pollWindow {
                return lastEvent
            } else {
                missed += 1
                sched_yield()
            }
        }
    }

    /// Runs one iteration: polls for I/O once, blocking for it when `blocking` is true.
    /// - Returns: whether there are still active handles or requests.
    @discardableResult
    public func runOnce(blocking: Bool = true) -> Bool {
        assertOpen("Loop.runOnce(blocking:)")
        enter()
        defer {
            stopRequested = false
            runLocalJobs()
            leave()
        }
        return uv_run(raw, blocking ? UV_RUN_ONCE : UV_RUN_NOWAIT) != 0
    }

    /// Makes `run()` return after the current iteration. Called on the loop thread; from
    /// another thread, use `execute { loop.stop() }`.
    public func stop() {
        assertOpen("Loop.stop()")
        stopRequested = true
        uv_stop(raw)
    }

    /// The loop's cached time in milliseconds, updated at the start of each iteration.
    public var now: UInt64 {
        assertOpen("Loop.now")
        return uv_now(raw)
    }

    /// Refreshes `now` from the clock (it is otherwise cached for the iteration).
    public func updateTime() {
        assertOpen("Loop.updateTime()")
        uv_update_time(raw)
    }

    /// Whether the calling thread is the one running the loop (true when no thread is).
    public var isOnLoopThread: Bool {
        let owner = runningThread.load(ordering: .acquiring)
        return owner == 0 || owner == UInt(pthread_self())
    }

    /// Whether the calling thread is inside `run()` or `runOnce()` of this loop (false when no
    /// thread is): work left for a later iteration (a `LoopHook`) is then sure to be
    /// reached before the loop sleeps, or else when the run returns to its caller.
    public var isRunningOnCurrentThread: Bool {
        runningThread.load(ordering: .acquiring) == UInt(pthread_self())
    }

    /// Stops the process when called off the loop thread while another thread runs the loop.
    public func assertOnLoopThread(_ what: StaticString = "this call",
                                   file: StaticString = #fileID, line: UInt = #line) {
        precondition(isOnLoopThread, "\(what) must happen on the loop thread", file: file, line: line)
    }

    /// Stops the process when the loop was closed: its `uv_loop_t` is gone, and every entry
    /// point that needs it calls this first rather than touch freed memory.
    func assertOpen(_ what: StaticString, file: StaticString = #fileID, line: UInt = #line) {
        // fatalError, not precondition: an optimized build drops a precondition's message.
        if isClosed { fatalError("Loop used after close(): \(what)", file: file, line: line) }
    }

    private func enter() {
        let me = UInt(pthread_self())
        let (exchanged, _) = runningThread.compareExchange(expected: 0, desired: me,
                                                           ordering: .acquiringAndReleasing)
        precondition(exchanged || runningThread.load(ordering: .relaxed) == me,
                     "a loop is run by one thread at a time")
    }

    private func leave() {
        runningThread.store(0, ordering: .releasing)
    }

    // MARK: Cross-thread wake-up

    /// Runs `block` on the loop thread during a later iteration. Safe from any thread.
    ///
    /// Blocks from one thread run in the order they were given. After `close()` the block is
    /// dropped: there is no loop left to run it.
    public func execute(_ block: @escaping @Sendable () -> Void) {
        // The wake-up is sent under the lock: `close()` stops taking blocks under the same
        // lock before it frees the handle, so a sender can never signal a freed handle.
        queueLock.withLock {
            guard takesBlocks else { return }
            queued.append(block)
            // libuv's uv_async_send returns 0 on Unix (it aborts itself if the eventfd write
            // fails); a failure would leave the block waiting for some other wake-up.
            let status = uv_async_send(wakeUp)
            precondition(status == 0, "uv_async_send failed: \(UVError(code: status))")
        }
    }

    private func runQueued() {
        // Take the whole queue at once: blocks queued while these run wake the loop again.
        let blocks = queueLock.withLock { () -> [@Sendable () -> Void] in
            let taken = queued
            queued = []
            return taken
        }
        for block in blocks { block() }
    }

    // MARK: Handle bookkeeping

    /// The handles on the loop other than the wake-up handle (closing ones included), and the
    /// owners of those not yet closing. libuv keeps the list, so a handle costs no bookkeeping
    /// here: every handle's `data` is its owner, a `LoopResource`, or nil while it closes.
    private func openHandles() -> (count: Int, owners: [any LoopResource]) {
        final class Census {
            let skip: UnsafeMutableRawPointer
            var count = 0
            var owners: [any LoopResource] = []
            init(skip: UnsafeMutableRawPointer) { self.skip = skip }
        }
        let census = Census(skip: UnsafeMutableRawPointer(wakeUp))
        uv_walk(raw, { handle, argument in
            let census = Unmanaged<Census>.fromOpaque(argument!).takeUnretainedValue()
            guard let handle, UnsafeMutableRawPointer(handle) != census.skip else { return }
            census.count += 1
            if uv_is_closing(handle) == 0, let data = handle.pointee.data,
               let owner = Unmanaged<AnyObject>.fromOpaque(data).takeUnretainedValue() as? any LoopResource {
                census.owners.append(owner)
            }
        }, Unmanaged.passUnretained(census).toOpaque())
        return (census.count, census.owners)
    }

    // MARK: Closing

    /// Closes every handle still open on the loop, runs it until their close callbacks have
    /// run, and closes the `uv_loop_t`. Called on the loop thread, after `run()` returned.
    ///
    /// A child process still running is killed (`SIGKILL`), and this waits until it has been
    /// reaped and its `onExit` has run.
    ///
    /// Blocks queued with `execute(_:)` before the call still run; later ones are dropped.
    /// Afterwards a second `close()` does nothing, and every other use of the loop that needs
    /// the `uv_loop_t` (running it, its time, a new timer, listener, connection or file
    /// operation) stops the process with "Loop used after close()".
    /// - Throws: `UVError` (`EBUSY`) when `uv_loop_close` finds a handle that outlived this:
    ///   a leak. The loop's memory is then kept, since libuv may still refer to it.
    public func close() throws(UVError) {
        guard !isClosed else { return }
        assertOnLoopThread("Loop.close()")
        runQueued()
        queueLock.withLock { takesBlocks = false }
        runQueued()
        // Entered, so that the task jobs the closing handles' callbacks enqueue (an async
        // handler's task told its connection is gone) run here, and their tasks end.
        enter()
        while true {
            runLocalJobs()
            let (count, owners) = openHandles()
            if count == 0 { break }
            for owner in owners { owner.close() }
            // Blocks only while no handle is closing: for a killed child's exit, which its
            // handle waits for before it closes.
            uv_run(raw, UV_RUN_ONCE)
        }
        uv_close(cuv_async_as_handle(wakeUp)) { handle in
            UnsafeMutableRawPointer(handle!).assumingMemoryBound(to: uv_async_t.self).deallocate()
        }
        uv_run(raw, UV_RUN_DEFAULT)
        runLocalJobs()
        jobRunner = nil  // it holds this loop: the cycle ends with the loop
        stopRequested = false
        leave()
        isClosed = true
        let status = uv_loop_close(raw)
        guard status == 0 else { throw UVError(code: status) }
        raw.deallocate()
    }
}

/// An owner of a libuv handle on a loop, which the loop can ask to close when it closes.
/// `close()` closes the handle at once, except a running child's, which closes after its exit.
protocol LoopResource: AnyObject {
    func close()
}
