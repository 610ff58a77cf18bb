import Glibc

/// Runs `body` on a new thread of its own, detached: nothing joins it, and its resources go
/// when `body` returns. For work that blocks its thread for as long as it runs, such as a loop
/// serving (`HTTPServer.run()`), which must not hold one of Swift concurrency's few threads.
/// - Throws: `UVError` when no thread can be made (`EAGAIN`: a limit reached).
public func detachThread(_ body: @escaping @Sendable () -> Void) throws(UVError) {
    // The closure crosses into C as an opaque pointer holding one retain; the new thread
    // takes it back (and releases it), or this function does when no thread was made.
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { box in
        Unmanaged<ThreadBody>.fromOpaque(box!).takeRetainedValue().body()
        return nil
    }, box)
    guard status == 0 else {
        Unmanaged<ThreadBody>.fromOpaque(box).release()
        throw UVError(code: -status)
    }
    pthread_detach(thread)
}

private final class ThreadBody: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}
