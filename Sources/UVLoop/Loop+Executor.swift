/// The loop as a `TaskExecutor`: a task that prefers it runs its nonisolated code on the loop
/// thread, and after each `await` comes back to it, as a callback would. Code on the loop
/// thread (a handler) can start such a task and let it use what belongs to that thread.
///
/// A job enqueued on the loop thread while the loop runs (a task started by a handler, a
/// continuation resumed by a callback) runs in the same iteration, just before the loop next
/// waits for I/O (a `LoopHook` in its `.beforeWait` phase): no wake-up, no system call. One enqueued from another
/// thread is queued as `execute(_:)` queues a block and runs at the loop's next wake-up.
/// Jobs enqueued on the loop thread run before `run()` or `runOnce()` returns, and while
/// `close()` closes the handles; jobs from other threads that arrive after `close()` never run.
extension Loop: TaskExecutor {
    /// Runs `job` on the loop thread: in this iteration when called there while the loop
    /// runs, else at the loop's next wake-up. Any thread.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        guard isRunningOnCurrentThread else {
            execute { [self] in job.runSynchronously(on: asUnownedTaskExecutor()) }
            return
        }
        localJobs.append(job)
        if let jobRunner {
            jobRunner.start()
        } else {
            let runner = LoopHook(loop: self, .beforeWait) { [unowned self] in runLocalJobs() }
            runner.start()
            jobRunner = runner
        }
    }

    /// Runs the jobs enqueued on the loop thread, and those they enqueue, until none is left.
    func runLocalJobs() {
        while !localJobs.isEmpty {
            let jobs = localJobs
            localJobs = []
            for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
        jobRunner?.stop()
    }
}
