import Glibc

/// A mutex for the few fields other threads touch, and for work done one thread at a time.
/// Heap-allocated: a pthread mutex must not move.
///
/// A pthread mutex rather than the standard library's `Mutex`: on Linux, `Mutex` locks with
/// futex calls made inside the uninstrumented runtime, so ThreadSanitizer sees no ordering
/// between two threads' critical sections and reports every state it guards as raced.
package final class PthreadLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    package init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A value that any thread may read and change, one at a time: `Mutex` in a form that
/// ThreadSanitizer can check (see `PthreadLock`). For this package's modules and tests.
///
/// For a lock that guards no value, use `PthreadLock`: an empty `State` has no storage of its
/// own, and ThreadSanitizer takes the access to it for an access to the object's header, which
/// every caller reads unlocked.
package final class Locked<State: Sendable>: @unchecked Sendable {
    // @unchecked: `state` is only touched inside `lock`.
    private let lock = PthreadLock()
    private var state: State

    package init(_ state: State) { self.state = state }

    package func withLock<T>(_ body: (inout State) throws -> T) rethrows -> T {
        try lock.withLock { try body(&state) }
    }
}
