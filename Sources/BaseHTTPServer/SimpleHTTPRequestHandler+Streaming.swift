import Glibc
import UVLoop

/// An open file a response body is read from (Python's file object in `Body`). It owns its
/// descriptor and closes it once: on `close()`, or when the last reference goes. A file the
/// server's open-file cache holds (`isShared`) stays open for later requests: `close()` then
/// only says that this use is over, and the descriptor closes when the cache and every
/// response using it have let it go.
public final class OpenFile {
    /// The descriptor, or -1 once closed.
    public var descriptor: Int32 { openDescriptor }
    /// Whether the open-file cache holds the file (see above).
    public internal(set) var isShared: Bool {
        get { shared }
        set { shared = newValue }
    }
    /// The storage of `descriptor` and `isShared`. Being private, it is checked for exclusive
    /// access at compile time; the public properties themselves would be checked at run time,
    /// on every use (4 per small file: 335 instructions per request, Scripts/callgrind --f1).
    private var openDescriptor: Int32
    private var shared = false

    /// Takes ownership of an open descriptor.
    public init(adopting descriptor: Int32) {
        openDescriptor = descriptor
    }

    deinit {
        if openDescriptor >= 0 { Glibc.close(openDescriptor) }
    }

    /// Closes the descriptor, unless the open-file cache holds it. Calling it twice is
    /// harmless.
    public func close() {
        guard openDescriptor >= 0, !shared else { return }
        Glibc.close(openDescriptor)
        openDescriptor = -1
    }

    /// Reads up to `buffer.count` bytes at `offset` (`pread`, retried when interrupted).
    /// - Returns: the number of bytes read (0 at the end of the file), or nil on an error.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) -> Int? {
        guard openDescriptor >= 0, let base = buffer.baseAddress else { return nil }
        while true {
            let count = pread(openDescriptor, base, buffer.count, off_t(offset))
            if count >= 0 { return count }
            if errno != EINTR { return nil }
        }
    }
}

@available(*, unavailable)
extension OpenFile: Sendable {}

/// Streams a range of an open file into one connection, under backpressure.
///
/// File I/O in `SimpleHTTPRequestHandler` has one design: opens, `fstat`s and reads happen on
/// the loop thread with plain system calls, as nginx and lighttpd do by default. A read that
/// hits the page cache costs less than a hand-off to a thread pool (a futex wake-up each way).
///
/// Where the transport can (plain TCP), the bytes go with `sendfile(2)`: from the page cache
/// to the socket, never copied through user space, the response head in the same segment as
/// the first bytes. Each loop turn sends while the socket takes bytes, up to `turnBudget`,
/// so that a download over a fast link never holds up other connections. When the socket's
/// buffer is full, one chunk is read and written the ordinary way: libuv queues it and says
/// when it has left, which is when the socket can take more (libuv has no other way to watch
/// a stream for writability); the next `sendfile` waits for that.
///
/// Elsewhere (TLS), a chunk is read and written per loop turn: the next chunk is read only
/// when the connection's queued output is at or below half its high-water mark
/// (`waitForDrain(_:)`, the handlers' own mechanism). So the server holds about one chunk
/// plus half the high-water mark per download. If the client goes first, the stream stops;
/// the file is released in every case.
final class FileStreamer {
    private let handler: BaseHTTPRequestHandler
    private let file: OpenFile
    private let deferred: DeferredResponse
    private let chunkSize: Int
    private var chunk: [UInt8] = []
    private var offset: Int
    private let end: Int
    /// Whether to try `sendfile` (until the transport says it cannot).
    private var zeroCopy = true
    /// The most bytes `sendfile` sends for one connection per loop turn (nginx's
    /// `sendfile_max_chunk` is 2 MiB too).
    private let turnBudget = 2 << 20
    /// The most one `sendfile` call sends: a 1 GiB download ran at 3.45 GB/s and 0.28 CPU s
    /// per GB with 256 KiB, against 2.3-2.8 GB/s and 0.34-0.39 s with the whole turn's
    /// budget in one call (Scripts/bench F3, medians of 3).
    private let sendFileCall = 256 << 10
    /// The bytes read and written to learn when a full socket has room again: few, since
    /// they are copied three times (read, response buffer, libuv's queue).
    private let probeSize = 4 << 10

    init(handler: BaseHTTPRequestHandler, file: OpenFile, range: Range<Int>, chunkSize: Int) {
        self.handler = handler
        self.file = file
        self.chunkSize = min(max(chunkSize, 4096), max(range.count, 1))
        offset = range.lowerBound
        end = range.upperBound
        deferred = handler.deferResponse()
    }

    /// Sends the first bytes; each wait for the output to drain holds this streamer until
    /// the next.
    func start() {
        guard offset < end else {
            complete()
            return
        }
        sendMore()
    }

    private func sendMore() {
        if zeroCopy, sendFromPageCache() { return }
        zeroCopy = false
        guard sendChunk(size: chunkSize) else { return }
        if offset >= end {
            complete()
            return
        }
        handler.waitForDrain { [self] clientIsThere in
            if clientIsThere { sendMore() } else { release() }
        }
    }

    /// One turn's `sendfile`s. Returns false when the transport cannot (nothing was sent).
    private func sendFromPageCache() -> Bool {
        var budget = turnBudget
        while offset < end && budget > 0 {
            let wanted = min(end - offset, budget, sendFileCall)
            guard let sent = handler.sendFileBody(file.descriptor, offset: offset, count: wanted)
            else { return false }
            offset += sent
            budget -= sent
            if sent < wanted {
                // The socket is full (or earlier output is still queued): a few bytes written
                // the ordinary way are queued behind, and their leaving says it has room.
                if offset < end && !sendChunk(size: probeSize) { return true }
                break
            }
        }
        if offset >= end {
            complete()
            return true
        }
        handler.waitForEmptyOutput { [self] clientIsThere in
            if clientIsThere { sendMore() } else { release() }
        }
        return true
    }

    /// Reads up to `size` bytes at `offset` and writes them. Returns false after a failure
    /// (the stream has ended).
    private func sendChunk(size: Int) -> Bool {
        if chunk.count < min(size, chunkSize) { chunk = [UInt8](repeating: 0, count: min(size, chunkSize)) }
        let wanted = min(size, chunk.count, end - offset)
        let read = chunk.withUnsafeMutableBytes { file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<wanted]), at: offset) }
        guard let read, read > 0 else {
            fail(read == nil ? "read failed: \(String(cString: strerror(errno)))" : "file ended early")
            return false
        }
        offset += read
        chunk.withUnsafeBytes { handler.writeBody(UnsafeRawBufferPointer(rebasing: $0[0..<read])) }
        return true
    }

    /// The head has gone out already, so a failure can only cut the response short: the
    /// connection closes after what was sent (the framing check logs the shortfall).
    private func fail(_ reason: String) {
        handler.logError("streaming \(handler.path.debugDescription): \(reason)")
        handler.closeConnection = true
        complete()
    }

    private func complete() {
        release()
        deferred.finish()
    }

    private func release() {
        file.close()
    }
}

@available(*, unavailable)
extension FileStreamer: Sendable {}

// MARK: - File-system helpers

/// The process's current directory, or `"."` when it cannot be read.
func currentDirectory() -> String {
    guard let pointer = getcwd(nil, 0) else { return "." }
    defer { free(pointer) }
    return String(cString: pointer)
}

/// `path` with every symbolic link, `.` and `..` resolved (`realpath(3)`); nil when it does
/// not exist or cannot be reached.
func realPath(_ path: String) -> String? {
    guard let pointer = realpath(path, nil) else { return nil }
    defer { free(pointer) }
    return String(cString: pointer)
}

/// `stat(2)` of `path`, following symbolic links; nil when it fails.
func fileStatus(_ path: String) -> stat? {
    var info = stat()
    return fstatat(AT_FDCWD, path, &info, 0) == 0 ? info : nil
}

/// Whether a `stat` result describes a directory.
func isDirectory(_ info: stat) -> Bool {
    info.st_mode & Glibc.S_IFMT == Glibc.S_IFDIR
}

/// Splits a request target into its path and the `?query#fragment` that follows it.
func splitQuery(_ target: String) -> (path: String, suffix: String) {
    guard let index = target.utf8.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") })
    else { return (target, "") }
    return (String(target[..<index]), String(target[index...]))
}
