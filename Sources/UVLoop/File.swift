import CLibUV
import Glibc

/// What `File.stat` reports about an open file.
public struct FileStatus: Sendable, Equatable {
    /// The size in bytes.
    public var size: Int
    /// The last modification time, in whole seconds since the Unix epoch.
    public var modificationTime: Int
    /// Whether the file is a regular file (not a directory, device, socket, …).
    public var isRegularFile: Bool
    /// Whether the file is a directory.
    public var isDirectory: Bool

    /// A status with these facts (for tests, and for files known otherwise).
    public init(size: Int, modificationTime: Int, isRegularFile: Bool, isDirectory: Bool) {
        self.size = size
        self.modificationTime = modificationTime
        self.isRegularFile = isRegularFile
        self.isDirectory = isDirectory
    }
}

/// An open file whose reads and writes run on libuv's thread pool, so that the loop never waits for a disk.
///
/// Every operation is one `uv_fs_t` request: heap-allocated, owned by a `FileRequest` box that
/// `req->data` retains, and freed (with `uv_fs_req_cleanup`) in its callback, which also
/// releases the box exactly once. Completions run on the loop thread. The descriptor belongs to
/// this object, and stays open while a request that uses it (`read`, `write`, `stat`) is in flight: the
/// thread pool must never read a closed descriptor, or one reused by a file opened meanwhile.
/// So each such request's box retains the `File` until its callback, and `close(completion:)`
/// waits for them before it closes the descriptor on the thread pool. A `File` dropped while
/// still open closes it synchronously once its last request finished (a safety net, not the
/// way to use it). Every operation needs the loop open: after the loop's `close()` it stops
/// the process.
public final class File {
    /// The loop whose thread pool runs the requests and whose thread runs the completions.
    public let loop: Loop
    /// The file descriptor, or -1 once `close` was called.
    public private(set) var descriptor: Int32

    /// Requests that read the descriptor and have not called back yet.
    private var requestsInFlight = 0
    /// A `close` that waits for `requestsInFlight` to reach zero: the descriptor to close and
    /// the completion to run then.
    private var pendingClose: (descriptor: Int32, completion: ((UVError?) -> Void)?)?

    /// Takes ownership of an open descriptor (from `open(2)` or `File.open`).
    public init(adopting descriptor: Int32, loop: Loop) {
        self.loop = loop
        self.descriptor = descriptor
    }

    /// Runs once no request is in flight (each retains the `File`), so no read can race it.
    deinit {
        if descriptor >= 0 { Glibc.close(descriptor) }
    }

    /// Opens `path` read-only (`O_RDONLY | O_CLOEXEC`) on the thread pool. Called on the loop thread.
    /// - Parameter completion: runs on the loop thread with the open file or the error
    ///   (`UV_ENOENT`, `UV_EACCES`, …).
    public static func open(_ path: String, loop: Loop,
                            completion: @escaping (Result<File, UVError>) -> Void) {
        loop.assertOpen("File.open")
        loop.assertOnLoopThread("File.open")
        let request = FileRequest.start { request in
            let result = request.pointee.result
            if result < 0 {
                completion(.failure(UVError(code: Int32(result))))
            } else {
                completion(.success(File(adopting: Int32(result), loop: loop)))
            }
        }
        let status = uv_fs_open(loop.raw, request, path, O_RDONLY | O_CLOEXEC, 0) { request in
            FileRequest.finish(request!)
        }
        FileRequest.checkStarted(request, status)
    }

    /// Reads the file's status (`fstat`) on the thread pool. Called on the loop thread.
    public func stat(completion: @escaping (Result<FileStatus, UVError>) -> Void) {
        loop.assertOpen("File.stat")
        loop.assertOnLoopThread("File.stat")
        guard descriptor >= 0 else {
            completion(.failure(UVError(code: Int32(UV_EBADF.rawValue))))
            return
        }
        let request = FileRequest.start(readingFrom: self) { request in
            let result = request.pointee.result
            guard result >= 0 else {
                completion(.failure(UVError(code: Int32(result))))
                return
            }
            let info = request.pointee.statbuf
            let type = info.st_mode & UInt64(Glibc.S_IFMT)
            completion(.success(FileStatus(size: Int(info.st_size),
                                           modificationTime: Int(info.st_mtim.tv_sec),
                                           isRegularFile: type == UInt64(Glibc.S_IFREG),
                                           isDirectory: type == UInt64(Glibc.S_IFDIR))))
        }
        let status = uv_fs_fstat(loop.raw, request, descriptor) { request in
            FileRequest.finish(request!)
        }
        FileRequest.checkStarted(request, status)
    }

    /// Reads up to `count` bytes at `offset` on the thread pool. Called on the loop thread.
    ///
    /// The bytes live in a buffer this request owns; `completion` borrows them and must copy
    /// what it keeps. An empty buffer means the end of the file.
    /// - Parameter completion: runs on the loop thread with the bytes read or the error.
    public func read(count: Int, at offset: Int,
                     completion: @escaping (Result<UnsafeRawBufferPointer, UVError>) -> Void) {
        loop.assertOpen("File.read")
        loop.assertOnLoopThread("File.read")
        guard descriptor >= 0 else {
            completion(.failure(UVError(code: Int32(UV_EBADF.rawValue))))
            return
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        let request = FileRequest.start(readingFrom: self, owning: buffer) { request in
            let result = request.pointee.result
            if result < 0 {
                completion(.failure(UVError(code: Int32(result))))
            } else {
                completion(.success(UnsafeRawBufferPointer(rebasing: buffer[0..<Int(result)])))
            }
        }
        var buf = cuv_buf(buffer.baseAddress, count)
        let status = uv_fs_read(loop.raw, request, descriptor, &buf, 1, Int64(offset)) { request in
            FileRequest.finish(request!)
        }
        FileRequest.checkStarted(request, status)
    }

    /// Writes a copy of `bytes` at `offset` on the thread pool. Called on the loop thread.
    ///
    /// A regular file takes the bytes whole unless the disk fills (or a limit is reached):
    /// the count says how many went.
    /// - Parameter completion: runs on the loop thread with the number of bytes written or the
    ///   error (`UV_ENOSPC`, `UV_EDQUOT`, `UV_EFBIG`, …).
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int,
                      completion: @escaping (Result<Int, UVError>) -> Void) {
        write(Array(bytes), at: offset, completion: completion)
    }

    /// Writes `bytes` at `offset` on the thread pool, without copying them: the request holds
    /// the array until it calls back. Called on the loop thread.
    /// - Parameter completion: runs on the loop thread with the number of bytes written (all
    ///   of them, unless the disk fills or a limit is reached) or the error (`UV_ENOSPC`,
    ///   `UV_EDQUOT`, `UV_EFBIG`, …).
    public func write(_ bytes: [UInt8], at offset: Int,
                      completion: @escaping (Result<Int, UVError>) -> Void) {
        loop.assertOpen("File.write")
        loop.assertOnLoopThread("File.write")
        guard descriptor >= 0 else {
            completion(.failure(UVError(code: Int32(UV_EBADF.rawValue))))
            return
        }
        let request = FileRequest.start(readingFrom: self, keeping: bytes) { request in
            let result = request.pointee.result
            completion(result < 0 ? .failure(UVError(code: Int32(result))) : .success(result))
        }
        // The array's storage stays where it is while the request holds the array and nobody
        // mutates it (the caller's copy, if any, is copied on its first write): the thread
        // pool may read it after this scope. This saves a copy of every byte of an upload.
        let base = bytes.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress) }
        var buf = cuv_buf(base, bytes.count)
        let status = uv_fs_write(loop.raw, request, descriptor, &buf, 1, Int64(offset)) { request in
            FileRequest.finish(request!)
        }
        FileRequest.checkStarted(request, status)
    }

    /// Closes the descriptor on the thread pool, once every read and stat already started has
    /// called back; later ones fail with `EBADF` at once. Called on the loop thread; a second
    /// call does nothing (its completion runs with nil).
    public func close(completion: ((UVError?) -> Void)? = nil) {
        loop.assertOpen("File.close")
        loop.assertOnLoopThread("File.close")
        guard descriptor >= 0 else {
            completion?(nil)
            return
        }
        let closing = descriptor
        descriptor = -1
        if requestsInFlight > 0 {
            pendingClose = (closing, completion)
        } else {
            startClose(closing, completion: completion)
        }
    }

    /// Counts a request that reads the descriptor; `requestDidFinish()` balances it.
    fileprivate func requestDidStart() {
        requestsInFlight += 1
    }

    /// Called by a request's box after its completion ran: the last one starts a waiting close.
    fileprivate func requestDidFinish() {
        requestsInFlight -= 1
        if requestsInFlight == 0, let (closing, completion) = pendingClose {
            pendingClose = nil
            startClose(closing, completion: completion)
        }
    }

    private func startClose(_ closing: Int32, completion: ((UVError?) -> Void)?) {
        let request = FileRequest.start { request in
            let result = request.pointee.result
            completion?(result < 0 ? UVError(code: Int32(result)) : nil)
        }
        let status = uv_fs_close(loop.raw, request, closing) { request in
            FileRequest.finish(request!)
        }
        FileRequest.checkStarted(request, status)
    }
}

@available(*, unavailable)
extension File: Sendable {}

/// The owner of one `uv_fs_t`: its completion, the buffer a read fills (or a write reads), the
/// array a write reads and the `File` whose descriptor the thread pool uses.
///
/// `start` allocates the request and stores a retained box in `data`; `finish` (the libuv
/// callback, or `checkStarted` when libuv refused the request) takes the box back, runs the
/// completion, cleans the request up and frees it: the one balancing release. Until then the
/// box keeps the `File` alive, so its descriptor cannot be closed under the thread pool.
private final class FileRequest {
    let completion: (UnsafeMutablePointer<uv_fs_t>) -> Void
    let buffer: UnsafeMutableRawBufferPointer?
    let file: File?
    /// The bytes a write reads from, when they are the caller's array.
    let kept: [UInt8]

    private init(completion: @escaping (UnsafeMutablePointer<uv_fs_t>) -> Void,
                 buffer: UnsafeMutableRawBufferPointer?, file: File?, kept: [UInt8]) {
        self.completion = completion
        self.buffer = buffer
        self.file = file
        self.kept = kept
    }

    deinit { buffer?.deallocate() }

    static func start(readingFrom file: File? = nil,
                      owning buffer: UnsafeMutableRawBufferPointer? = nil,
                      keeping kept: [UInt8] = [],
                      _ completion: @escaping (UnsafeMutablePointer<uv_fs_t>) -> Void)
        -> UnsafeMutablePointer<uv_fs_t> {
        let request = UnsafeMutablePointer<uv_fs_t>.allocate(capacity: 1)
        request.initialize(to: uv_fs_t())
        let box = FileRequest(completion: completion, buffer: buffer, file: file, kept: kept)
        request.pointee.data = Unmanaged.passRetained(box).toOpaque()
        file?.requestDidStart()
        return request
    }

    /// The request's callback: on the loop thread, once.
    static func finish(_ request: UnsafeMutablePointer<uv_fs_t>) {
        let owner = Unmanaged<FileRequest>.fromOpaque(request.pointee.data).takeRetainedValue()
        if let loop = request.pointee.loop { Loop.owner(of: loop).events &+= 1 }
        owner.completion(request)
        uv_fs_req_cleanup(request)
        request.deallocate()
        owner.file?.requestDidFinish()
    }

    /// libuv returns an error at once (and never calls back) when it cannot queue a request:
    /// report it through the same path, so the completion still runs exactly once.
    static func checkStarted(_ request: UnsafeMutablePointer<uv_fs_t>, _ status: Int32) {
        guard status < 0 else { return }
        request.pointee.result = Int(status)
        finish(request)
    }
}
