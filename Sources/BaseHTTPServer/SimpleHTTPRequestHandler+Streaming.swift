import Glibc
import UVLoop

/// Streams a range of an open file into one connection, a chunk at a time, under backpressure.
///
/// The response is deferred; each chunk is read on libuv's thread pool and handed to the
/// connection, and the next read starts at once while the connection's queued output is at or
/// below half its high-water mark, or else when the connection's `onDrain` says it got there.
/// At most one read is in flight, so the server holds about one chunk plus half the high-water
/// mark per download. If the connection closes first, `onAbandon` stops the stream; the file is
/// closed in every case. Everything runs on the loop thread.
final class FileStreamer {
    private let handler: BaseHTTPRequestHandler
    private let connection: HTTPConnection
    private let file: File
    private let deferred: DeferredResponse
    private let chunkSize: Int
    private var offset: Int
    private let end: Int
    private var reading = false
    private var waitingForDrain = false
    private var done = false

    init(handler: BaseHTTPRequestHandler, connection: HTTPConnection, file: File,
         range: Range<Int>, chunkSize: Int) {
        self.handler = handler
        self.connection = connection
        self.file = file
        self.chunkSize = max(chunkSize, 4096)
        offset = range.lowerBound
        end = range.upperBound
        deferred = handler.deferResponse()
    }

    /// Installs the connection hooks and reads the first chunk. The hooks hold this streamer
    /// until it ends.
    func start() {
        guard offset < end else {
            complete()
            return
        }
        guard let exchange = handler.exchange else {
            complete()
            return
        }
        exchange.onDrain = { [self] in didDrain() }
        exchange.onAbandon = { [self] in didAbandon() }
        readNext()
    }

    private func readNext() {
        guard !done, !reading else { return }
        reading = true
        file.read(count: min(chunkSize, end - offset), at: offset) { [self] result in
            didRead(result)
        }
    }

    private func didRead(_ result: Result<UnsafeRawBufferPointer, UVError>) {
        reading = false
        guard !done else {
            file.close()  // Abandoned while this read was in flight.
            return
        }
        switch result {
        case .failure(let error):
            fail("read failed: \(error)")
        case .success(let bytes) where bytes.isEmpty:
            fail("file ended early")
        case .success(let bytes):
            offset += bytes.count
            handler.writeBody(bytes)
            handler.flushBody()
            if offset >= end {
                complete()
            } else if connection.transport.queuedBytes > handler.server.configuration.outputHighWaterMark / 2 {
                waitingForDrain = true
            } else {
                readNext()
            }
        }
    }

    private func didDrain() {
        guard waitingForDrain else { return }
        waitingForDrain = false
        readNext()
    }

    /// The connection closed mid-stream: stop; close the file now or when the read returns.
    private func didAbandon() {
        done = true
        if !reading { file.close() }
    }

    /// The head has gone out already, so a failure can only cut the response short: the
    /// connection closes after what was sent (the framing check logs the shortfall).
    private func fail(_ reason: String) {
        handler.logError("streaming \(handler.path.debugDescription): \(reason)")
        handler.closeConnection = true
        complete()
    }

    private func complete() {
        done = true
        handler.exchange?.onDrain = nil
        handler.exchange?.onAbandon = nil
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

/// The entries of the directory at `path` as the listing needs them (every name but `.` and
/// `..`), or nil when it cannot be read.
func directoryEntries(_ path: String) -> [DirectoryListingEntry]? {
    guard let directory = opendir(path) else { return nil }
    defer { closedir(directory) }
    let descriptor = dirfd(directory)
    var entries: [DirectoryListingEntry] = []
    while let entry = readdir(directory) {
        let name = withUnsafePointer(to: &entry.pointee.d_name) {
            String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
        }
        if name == "." || name == ".." { continue }
        var info = stat()
        let isLink = fstatat(descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0
            && info.st_mode & Glibc.S_IFMT == Glibc.S_IFLNK
        let isDir = fstatat(descriptor, name, &info, 0) == 0 && isDirectory(info)
        entries.append((name: name, isDirectory: isDir, isSymlink: isLink))
    }
    return entries
}
