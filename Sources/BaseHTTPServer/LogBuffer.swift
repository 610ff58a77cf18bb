import Glibc
import UVLoop

/// A server's log lines on their way to standard error, written in batches: one `write(2)`
/// per loop iteration that logged, instead of one per line (issue 14).
///
/// A line logged on the thread that runs the server's loop waits in a buffer, which is written
/// - once per loop iteration in which lines were logged, just before the loop waits for I/O
///   again (a `.beforeWait` `LoopHook`, started only while lines wait, so an idle server
///   sleeps): a line never waits for another event, only for the callbacks already due, which
///   on a terminal is at once to the eye;
/// - at once when `batchLimit` bytes wait;
/// - when the run that logged it ends (`serveForever()` and `handleRequest()` flush before
///   returning) and when the server closes;
/// - before any line written directly, so the order of lines is kept.
///
/// A line logged while the calling thread is not running the loop (a handler used outside a
/// serve, connections closed by `serverClose()`) is written directly, after whatever waits:
/// there may be no next iteration to write it. The text is never changed, and every write
/// holds whole lines only (see `writeAll`).
///
/// Belongs to the loop thread, or to any thread while none runs the loop, as the server does.
final class LogBuffer {
    /// How many waiting bytes make the buffer write at once, without waiting for the end of
    /// the iteration.
    static let batchLimit = 64 * 1024

    let loop: Loop
    /// Where the lines go: standard error. Internal so that a test can read them from a pipe
    /// (set it before serving).
    var descriptor: Int32 = STDERR_FILENO
    /// Whole lines, waiting. Appended to once per line, on the loop thread (or the one thread
    /// serving), and no access to it overlaps another (none is held across a call out of this
    /// class). Unchecked: 140 instructions fewer per access-log line (Scripts/callgrind --f1).
    @exclusivity(unchecked) private var pending = ByteBuffer()
    /// Writes `pending` before the loop next waits; made on first use, started only while
    /// lines wait.
    private var flusher: LoopHook?
    /// Whether `close()` ran: every line is then written directly.
    private var isClosed = false

    init(loop: Loop) {
        self.loop = loop
    }

    /// Writes `line` (a finished line, newline included) in the next batch, or directly when
    /// no batch is sure to follow.
    func write(_ line: String) {
        guard canBatch() else {
            // Another thread running the loop owns `pending`; otherwise what waits goes first.
            if loop.isOnLoopThread { flush() }
            writeAll(to: descriptor, line)
            return
        }
        var line = line
        line.withUTF8 { pending.append(UnsafeRawBufferPointer($0)) }
        if pending.count >= LogBuffer.batchLimit {
            flush()
        } else if let flusher, !flusher.isActive {
            flusher.start()
        }
    }

    /// Writes the line `host - - [date] message` and a newline, as `write` does, its pieces
    /// appended where they are instead of joined into a string first: 2,300 instructions a
    /// request with string interpolation (callgrind, http-server on a 4 KiB file). The pieces
    /// go in with one access to `pending`: 1,030 instructions a line fewer than an access
    /// (each checked for exclusivity at run time) per piece (Scripts/callgrind --f1).
    func writeLine(host: String, date: String, message: String) {
        guard canBatch() else {
            write("\(host) - - [\(date)] \(message)\n")
            return
        }
        let waiting = LogBuffer.appendLine(to: &pending, host: host, date: date, message: message)
        if waiting >= LogBuffer.batchLimit {
            flush()
        } else if let flusher, !flusher.isActive {
            flusher.start()
        }
    }

    /// Appends `host - - [date] message` and a newline to `buffer`; returns its new size.
    private static func appendLine(to buffer: inout ByteBuffer, host: String, date: String,
                                   message: String) -> Int {
        withUTF8(of: host) { buffer.append($0) }
        buffer.append(logLineAfterHost)
        withUTF8(of: date) { buffer.append($0) }
        buffer.append(logLineAfterDate)
        withUTF8(of: message) { buffer.append($0) }
        buffer.append(UInt8(ascii: "\n"))
        return buffer.count
    }

    /// Whether a line logged now can wait: the calling thread runs the loop, so the flusher
    /// runs before the loop sleeps, or the run returns to code that flushes.
    private func canBatch() -> Bool {
        guard !isClosed, loop.isRunningOnCurrentThread else { return false }
        if let flusher { return !flusher.isClosed }  // closed only by the loop's `close()`
        flusher = LoopHook(loop: loop, .beforeWait) { [unowned self] in flush() }
        return true
    }

    /// Writes what waits, in one `write(2)` (more only when the kernel takes part of it).
    func flush() {
        if let flusher, flusher.isActive { flusher.stop() }
        guard !pending.isEmpty else { return }
        writeAll(to: descriptor, pending.bytes)
        pending.removeAll(keepingAtMost: 2 * LogBuffer.batchLimit)
    }

    /// Writes what waits and stops batching: later lines are written directly. Called when
    /// the server closes, before its loop does. Calling it twice is harmless.
    func close() {
        flush()
        isClosed = true
        flusher?.close()
        flusher = nil
    }
}

@available(*, unavailable)
extension LogBuffer: Sendable {}

private let logLineAfterHost = Array(" - - [".utf8)
private let logLineAfterDate = Array("] ".utf8)
