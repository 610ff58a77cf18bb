import Glibc
import UVLoop

/// The files a server's `SimpleHTTPRequestHandler`s opened recently, kept open between
/// requests (nginx's `open_file_cache`), and the directories they serve.
///
/// A hit saves the path's resolution, the `open` and the `close`: the request costs the
/// read, and an `fstat` of the open descriptor once per loop turn (see `status(of:into:)`),
/// so a file changed in place is served whole, with its new length, time and `ETag`, to the
/// next request the loop reads. What can be stale for longer is which file a name means: a file
/// replaced by another (renamed over, or deleted and made again) is served from the old one
/// for at most `Configuration.openFileCacheValidity` after it was opened, as with nginx's
/// `open_file_cache_valid`. Then the name is resolved again.
///
/// Used on the loop thread only. At most `capacity` files are held; when full, the expired
/// ones go, or all of them.
final class OpenFileCache {
    /// An open file and what was learnt when it was opened.
    final class Entry {
        let file: OpenFile
        /// The `Content-Type` guessed for it (for a directory's index page, from its name).
        let contentType: String
        /// When it was opened, on the loop's clock (milliseconds).
        let openedAt: UInt64
        /// `Last-Modified` and `ETag` for the version last seen (modification time in
        /// nanoseconds, size): a file served often has them formatted once.
        var validators: (modified: Int64, size: Int, lastModified: String, entityTag: String)?
        /// That version's size in decimal: a whole file's `Content-Length`.
        var lengthText = ""
        /// The file's `fstat`, and the loop turn it was taken in (see `status(of:into:)`).
        fileprivate var status = stat()
        fileprivate var statusTurn: UInt64 = 0

        init(file: OpenFile, contentType: String, openedAt: UInt64) {
            self.file = file
            self.contentType = contentType
            self.openedAt = openedAt
        }
    }

    /// A translated path, hashed and compared as one run of bytes, whichever way it is held
    /// (an entry made from an array is found from a String with the same bytes): `[UInt8]`'s
    /// own hashing feeds the hasher a byte at a time (350 instructions a request for a 20-byte
    /// path, callgrind), and its `==` compares a byte at a time (325 instructions a request
    /// more than `memcmp` for an 80-byte path, Scripts/callgrind --f1).
    private struct Key: Hashable {
        let path: FileSystemPath

        func hash(into hasher: inout Hasher) {
            path.withBytes { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        }

        static func == (left: Key, right: Key) -> Bool {
            left.path.withBytes { left in
                right.path.withBytes { right in
                    left.count == right.count
                        && (left.isEmpty || memcmp(left.baseAddress!, right.baseAddress!, left.count) == 0)
                }
            }
        }
    }

    let loop: Loop
    let capacity: Int
    /// Looked up once per request, on the loop thread only, and no access to it overlaps
    /// another (none is held across a call out of this class). Unchecked: 140 instructions
    /// fewer per request (Scripts/callgrind --f1).
    @exclusivity(unchecked) private var entries: [Key: Entry] = [:]
    private var roots: [String: (file: OpenFile, openedAt: UInt64)] = [:]

    /// The loop turn statuses are kept for: advanced when the turn ends (by `turnEnd`) and
    /// when the cache is emptied. Starts at 1, so that an entry's 0 is never current.
    private var turn: UInt64 = 1
    /// Ends the turn just before the loop next waits for I/O; started only in a turn that
    /// kept a status, so an idle server sleeps. Made on first use.
    private var turnEnd: LoopHook?
    /// Whether `close()` ran: no status is kept from then on.
    private var isClosed = false

    init(loop: Loop, capacity: Int = 1024) {
        self.loop = loop
        self.capacity = capacity
    }

    /// Sets `status` to the `fstat` of `entry`'s file and returns true if one was taken in
    /// this loop turn (only a running loop's are kept; see `keep`): requests handled in
    /// the same turn share it. A turn ends just before the loop polls for I/O again, so every
    /// request handled in it comes from a connection the poll that began the turn found
    /// ready: the status was taken after the request had begun to arrive, and a client that
    /// changes a file after a response and then asks again sees the change. (libuv polls again
    /// within a turn when more than 1,024 connections are ready at once; then the bound is
    /// that turn's length.) Under load a turn serves dozens of requests: `Scripts/bench` F1
    /// (64 connections) made one `fstat` per 47 requests instead of one per request. nginx
    /// and lighttpd keep statuses for a second or more instead.
    func status(of entry: Entry, into status: inout stat) -> Bool {
        guard entry.statusTurn == turn else { return false }
        status = entry.status
        return true
    }

    /// Keeps `status`, just taken, as `entry`'s for the rest of this loop turn. Outside a
    /// running loop (no turn will end) it is not kept.
    func keep(_ status: stat, for entry: Entry) {
        guard !isClosed, loop.isRunningOnCurrentThread else { return }
        if turnEnd == nil {
            // Unowned, not weak: a weak reference would give the cache a side table, and every
            // retain of it (one a request) the slow path. The server closes the hook with the
            // cache (`close()`), before its loop can run it again.
            turnEnd = LoopHook(loop: loop, .beforeWait) { [unowned self] in endTurn() }
        }
        guard let turnEnd, !turnEnd.isClosed else { return }  // closed only by the loop's `close()`
        entry.status = status
        entry.statusTurn = turn
        if !turnEnd.isActive { turnEnd.start() }
    }

    private func endTurn() {
        turn &+= 1
        turnEnd?.stop()
    }

    /// The entry for the translated path `key`, unless it is older than `validity`
    /// milliseconds (it is dropped then).
    func entry(for key: FileSystemPath, now: UInt64, validity: UInt64) -> Entry? {
        guard let entry = entries[Key(path: key)] else { return nil }
        if now &- entry.openedAt < validity { return entry }
        entries[Key(path: key)] = nil
        return nil
    }

    /// Keeps `file` for `key`. The file stays open while the cache holds it.
    func insert(_ file: OpenFile, contentType: String, for key: FileSystemPath, now: UInt64,
                validity: UInt64) -> Entry {
        if entries.count >= capacity {
            entries = entries.filter { now &- $0.value.openedAt < validity }
            if entries.count >= capacity { entries.removeAll() }
        }
        file.isShared = true
        let entry = Entry(file: file, contentType: contentType, openedAt: now)
        entries[Key(path: key)] = entry
        return entry
    }

    /// A descriptor of the directory `path` to resolve names under, opened again
    /// when older than `validity` milliseconds (so a directory replaced under the same name
    /// is found); nil when it cannot be opened.
    func root(_ path: String, now: UInt64, validity: UInt64) -> OpenFile? {
        if let root = roots[path], now &- root.openedAt < validity { return root.file }
        roots[path] = nil
        let descriptor = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        let file = OpenFile(adopting: descriptor)
        if validity > 0 { roots[path] = (file, now) }
        return file
    }

    /// Lets every file go (each closes once no response is using it).
    func removeAll() {
        entries.removeAll()
        roots.removeAll()
        turn &+= 1
    }

    /// Lets every file go and stops ending turns: when the server closes, before its loop does.
    func close() {
        removeAll()
        isClosed = true
        turnEnd?.close()
        turnEnd = nil
    }
}

@available(*, unavailable)
extension OpenFileCache: Sendable {}
