import Glibc
import UVLoop

/// An open file a response body is read from (Python's file object in `Body`). It owns its
/// descriptor and closes it once: on `close()`, or when the last reference goes.
public final class OpenFile {
    /// The descriptor, or -1 once closed.
    public private(set) var descriptor: Int32

    /// Takes ownership of an open descriptor.
    public init(adopting descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit { close() }

    /// Closes the descriptor. Calling it twice is harmless.
    public func close() {
        guard descriptor >= 0 else { return }
        Glibc.close(descriptor)
        descriptor = -1
    }

    /// Reads up to `buffer.count` bytes at `offset` (`pread`, retried when interrupted).
    /// - Returns: the number of bytes read (0 at the end of the file), or nil on an error.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) -> Int? {
        guard descriptor >= 0, let base = buffer.baseAddress else { return nil }
        while true {
            let count = pread(descriptor, base, buffer.count, off_t(offset))
            if count >= 0 { return count }
            if errno != EINTR { return nil }
        }
    }
}

@available(*, unavailable)
extension OpenFile: Sendable {}

/// Streams a range of an open file into one connection, a chunk at a time, under backpressure.
///
/// File I/O in `SimpleHTTPRequestHandler` has one design: opens, `fstat`s and reads happen on
/// the loop thread with plain system calls, as nginx and lighttpd do by default. A read that
/// hits the page cache costs less than a hand-off to a thread pool (a futex wake-up each way);
/// what keeps a large download from holding up other connections is that it goes one chunk
/// per loop turn: the next chunk is read only when the connection's queued output is at or
/// below half its high-water mark (`waitForDrain(_:)`, the handlers' own mechanism). So the
/// server holds about one chunk plus half the high-water mark per download. If the client
/// goes first, the stream stops; the file is closed in every case.
final class FileStreamer {
    private let handler: BaseHTTPRequestHandler
    private let file: OpenFile
    private let deferred: DeferredResponse
    private var chunk: [UInt8]
    private var offset: Int
    private let end: Int

    init(handler: BaseHTTPRequestHandler, file: OpenFile, range: Range<Int>, chunkSize: Int) {
        self.handler = handler
        self.file = file
        chunk = [UInt8](repeating: 0, count: min(max(chunkSize, 4096), max(range.count, 1)))
        offset = range.lowerBound
        end = range.upperBound
        deferred = handler.deferResponse()
    }

    /// Sends the first chunk; each wait for the output to drain holds this streamer until
    /// the next.
    func start() {
        guard offset < end else {
            complete()
            return
        }
        sendChunk()
    }

    /// Reads and sends one chunk, then waits for the output to drain before the next.
    private func sendChunk() {
        let wanted = min(chunk.count, end - offset)
        let read = chunk.withUnsafeMutableBytes { file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<wanted]), at: offset) }
        guard let read, read > 0 else {
            fail(read == nil ? "read failed: \(String(cString: strerror(errno)))" : "file ended early")
            return
        }
        offset += read
        chunk.withUnsafeBytes { handler.writeBody(UnsafeRawBufferPointer(rebasing: $0[0..<read])) }
        if offset >= end {
            complete()
            return
        }
        handler.waitForDrain { [self] clientIsThere in
            if clientIsThere { sendChunk() } else { file.close() }
        }
    }

    /// The head has gone out already, so a failure can only cut the response short: the
    /// connection closes after what was sent (the framing check logs the shortfall).
    private func fail(_ reason: String) {
        handler.logError("streaming \(handler.path.debugDescription): \(reason)")
        handler.closeConnection = true
        complete()
    }

    private func complete() {
        file.close()
        deferred.finish()
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
