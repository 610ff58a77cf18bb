/// The loop as a `TaskExecutor`: a task that prefers it runs its nonisolated code on the loop
/// thread, and after each `await` comes back to it, as a callback would. Code on the loop
/// thread (a handler) can start such a task and let it use what belongs to that thread.
///
/// A job enqueued on the loop thread while the loop runs (a task started by a handler, a
/// continuation resumed by a callback) runs at the start of the loop's next iteration, before
/// it polls for I/O again (a `.nextTurn` `LoopHook`): no wake-up, no system call. A job
/// enqueued by those jobs (a task that yields, or resumes another) waits for the iteration
/// after, and the loop polls for I/O without sleeping in between: a task that never stops
/// enqueueing work does not hold up the loop's other work. One enqueued from another thread
/// is queued as `execute(_:)` queues a block and runs at the loop's next wake-up. Jobs
/// enqueued on the loop thread run before `run()` or `runOnce()` returns, and while `close()`
/// closes the handles; jobs from other threads that arrive after `close()` never run.
extension Loop: TaskExecutor {
    /// Runs `job` on the loop thread: in the loop's next turn when called there while the
    /// loop runs, else at the loop's next wake-up. Any thread.
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
            let runner = LoopHook(loop: self, .nextTurn) { [unowned self] in runTurnsJobs() }
            runner.start()
            jobRunner = runner
        }
    }

    /// Runs the jobs enqueued on the loop thread before this turn; those they enqueue wait for
    /// the next one, with the runner still started.
    private func runTurnsJobs() {
        let jobs = localJobs
        localJobs = []
        for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
        if localJobs.isEmpty { jobRunner?.stop() }
    }

    /// Runs the jobs enqueued on the loop thread, and those they enqueue, until none is left:
    /// where a run ends and where the loop closes, which no later turn follows.
    func runLocalJobs() {
        while !localJobs.isEmpty {
            let jobs = localJobs
            localJobs = []
            for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
        jobRunner?.stop()
    }
}
