import CLibUV
import Glibc

/// One TCP stream, accepted by a `TCPListener` or made with `connect`.
///
/// Reads arrive through the delegate from the loop's shared buffer. Writes are ordered: each
/// is tried at once with `uv_try_write`, and only what the kernel did not take is copied and
/// queued with `uv_write`. `TCP_NODELAY` is on.
public final class TCPConnection: Transport, LoopResource {
    /// The loop the connection lives on.
    public let loop: Loop

    /// The receiver of reads, EOF, errors and the close. Held strongly until the connection
    /// has closed, then released. Set and read on the loop thread only.
    public var delegate: (any TransportDelegate)? {
        get { delegateStorage }
        set { delegateStorage = newValue }
    }
    /// `delegate`'s storage, read on every callback. Being private, it is checked for
    /// exclusive access at compile time, where the public property would be checked at run
    /// time on every read (76 instructions per request, Scripts/callgrind).
    private var delegateStorage: (any TransportDelegate)?

    /// Owned by this connection; `data` holds a retain of it, released in the close callback,
    /// which is also the only place the handle is freed.
    let handle: UnsafeMutablePointer<uv_tcp_t>

    private enum State { case open, closing, closed }
    private var state = State.open
    private var reading = false

    init(loop: Loop) {
        self.loop = loop
        handle = .allocate(capacity: 1)
        // uv_tcp_init makes no socket for AF_UNSPEC (accept and connect make it later), so it
        // always returns 0: a failure is a libuv that broke its contract. Stop rather than
        // use a handle that is not set up; throwing would burden every caller for nothing.
        let status = uv_tcp_init(loop.raw, handle)
        precondition(status == 0, "uv_tcp_init failed: \(UVError(code: status))")
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        loop.liveConnections += 1
    }

    var stream: UnsafeMutablePointer<uv_stream_t> { cuv_tcp_as_stream(handle) }

    static func owner(of stream: UnsafeMutablePointer<uv_stream_t>) -> TCPConnection {
        Unmanaged<TCPConnection>.fromOpaque(stream.pointee.data).takeUnretainedValue()
    }

    /// Runs `body` with the connection of a libuv callback, borrowed without reference
    /// counting: the handle's `data` keeps it alive until the close callback.
    @inline(__always)
    static func withOwner<R>(of stream: UnsafeMutablePointer<uv_stream_t>, _ body: (TCPConnection) -> R) -> R {
        Unmanaged<TCPConnection>.fromOpaque(stream.pointee.data)._withUnsafeGuaranteedRef(body)
    }

    // MARK: Addresses

    /// The peer's address, or nil once the connection is closing or the peer is gone.
    public var remoteAddress: SocketAddress? {
        guard state == .open else { return nil }
        return try? SocketAddress.of(handle, uv_tcp_getpeername)
    }

    /// The local address of the connection, or nil once it is closing.
    public var localAddress: SocketAddress? {
        guard state == .open else { return nil }
        return try? SocketAddress.of(handle, uv_tcp_getsockname)
    }

    /// Whether `TCP_NODELAY` is on for the socket (accepted sockets inherit it from the
    /// listener on Linux); nil when the socket cannot be asked.
    var isNoDelay: Bool? {
        var fd: uv_os_fd_t = -1
        guard uv_fileno(cuv_tcp_as_handle(handle), &fd) == 0 else { return nil }
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &value, &length) == 0 else { return nil }
        return value != 0
    }

    /// Whether the connection is open (neither closing nor closed).
    public var isOpen: Bool { state == .open }

    // MARK: Reading

    /// Starts delivering reads to the delegate. Harmless when already reading or closing.
    public func startReading() {
        guard state == .open, !reading else { return }
        // Both callbacks borrow their owner, so a read costs no reference counting of the loop
        // or the connection.
        let status = uv_read_start(stream, { handle, _, buf in
            Loop.withOwner(of: handle!.pointee.loop) { loop in
                buf!.pointee = cuv_buf(loop.readBuffer, loop.readBufferSize)
            }
        }, { stream, count, buf in
            TCPConnection.withOwner(of: stream!) { $0.didRead(count, buf!.pointee.base) }
        })
        // libuv refuses a closing handle (ruled out above) and, with ENOTCONN, a stream that
        // can no longer be read: after its end of input, which the delegate has heard of.
        precondition(status == 0 || status == Int32(UV_ENOTCONN.rawValue),
                     "uv_read_start failed: \(UVError(code: status))")
        reading = status == 0
    }

    /// Stops delivering reads; the kernel buffers what arrives, and the peer feels TCP's
    /// backpressure once that fills.
    public func stopReading() {
        guard state == .open, reading else { return }
        uv_read_stop(stream)  // Never fails.
        reading = false
    }

    /// Whether reads are being delivered.
    public var isReading: Bool { reading }

    private func didRead(_ count: Int, _ base: UnsafeMutablePointer<CChar>?) {
        if count != 0 { loop.events &+= 1 }
        if count > 0 {
            delegateStorage?.transport(self, didRead: UnsafeRawBufferPointer(start: base, count: count))
        } else if count == Int(UV_EOF.rawValue) {
            reading = false  // libuv stops reading by itself at EOF.
            delegateStorage?.transportDidReadEOF(self)
        } else if count < 0 {
            reading = false  // libuv stops reading by itself after an error too.
            delegateStorage?.transport(self, didFail: UVError(code: Int32(count)))
        }
        // Zero means "nothing this time" (EAGAIN): not an end of file.
    }

    // MARK: Writing

    /// Bytes handed to `uv_write` that have not left yet: the measure for backpressure.
    public var queuedBytes: Int { uv_stream_get_write_queue_size(stream) }

    /// Writes `bytes` after everything written before.
    ///
    /// The bytes are borrowed for the call only: what the kernel does not take at once is
    /// copied. `completion`, when given, runs exactly once, with nil or the error; it runs
    /// before `write` returns when every byte left at once. Without a completion a failure
    /// reaches the delegate's `didFail`. After `close()` the write fails with `.brokenPipe`.
    public func write(_ bytes: UnsafeRawBufferPointer, completion: ((UVError?) -> Void)?) {
        var buf = cuv_buf(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count)
        withUnsafeMutablePointer(to: &buf) { bufs in
            write(UnsafeMutableBufferPointer(start: bufs, count: 1), total: bytes.count,
                  completion: completion)
        }
    }

    /// Writes several buffers in order, with one `writev` where the kernel takes them.
    public func write(_ buffers: [UnsafeRawBufferPointer], completion: ((UVError?) -> Void)? = nil) {
        var total = 0
        let bufs = buffers.map { buffer -> uv_buf_t in
            total += buffer.count
            return cuv_buf(UnsafeMutableRawPointer(mutating: buffer.baseAddress), buffer.count)
        }
        bufs.withUnsafeBufferPointer { bufs in
            write(UnsafeMutableBufferPointer(mutating: bufs), total: total, completion: completion)
        }
    }


    private func write(_ bufs: UnsafeMutableBufferPointer<uv_buf_t>, total: Int,
                       completion: ((UVError?) -> Void)?) {
        guard state == .open else {
            completion?(.brokenPipe)
            return
        }
        // uv_try_write answers EAGAIN while earlier writes are queued, so order is kept.
        let tried = total == 0 ? 0 : uv_try_write(stream, bufs.baseAddress, UInt32(bufs.count))
        let sent = max(Int(tried), 0)
        if sent == total {
            completion?(nil)
            return
        }
        // Queue the rest. On a hard error (not EAGAIN) uv_write fails the request again and
        // reports it through the write callback, on a later iteration: never re-entrantly.
        let request = WriteRequest.make(copying: bufs, skipping: sent, total: total)
        if let completion {
            request.pointee.data = Unmanaged.passRetained(WriteCompletion(completion)).toOpaque()
        }
        var tail = cuv_buf(WriteRequest.tail(of: request), total - sent)
        let status = uv_write(request, stream, &tail, 1) { request, status in
            TCPConnection.withOwner(of: request!.pointee.handle) { $0.didWrite(request!, status) }
        }
        if status < 0 {
            didWrite(request, status)
        }
    }

    private func didWrite(_ request: UnsafeMutablePointer<uv_write_t>, _ status: Int32) {
        loop.events &+= 1
        let completion = request.pointee.data.map {
            Unmanaged<WriteCompletion>.fromOpaque($0).takeRetainedValue()
        }
        WriteRequest.free(request)
        let error = status < 0 ? UVError(code: status) : nil
        if let completion {
            completion.body(error)
        } else if let error, state == .open {
            delegateStorage?.transport(self, didFail: error)
        }
        if error == nil, state == .open {
            delegateStorage?.transportDidWrite(self)
        }
    }

    /// Writes `prefix`, then sends up to `count` bytes of the file `descriptor` from `offset`
    /// with `sendfile(2)` when nothing written before is still queued (so the order holds):
    /// the bytes go from the page cache to the socket without a copy through user space.
    /// `prefix` is sent with `MSG_MORE`, so a response head leaves in one segment with the
    /// file's first bytes; what the kernel does not take of it is queued like a `write`.
    /// Returns the file bytes the kernel took now: 0 when writes are queued or the socket's
    /// buffer is full. The socket is non-blocking, so the call never waits; the file is read
    /// in the calling thread, which for a file in the page cache is a copy inside the kernel.
    public func sendFile(prefix: UnsafeRawBufferPointer, _ descriptor: Int32, offset: Int,
                         count: Int) -> Result<Int, UVError>? {
        guard state == .open else { return .failure(.brokenPipe) }
        var socket: uv_os_fd_t = -1
        guard queuedBytes == 0, uv_fileno(cuv_tcp_as_handle(handle), &socket) == 0 else {
            if !prefix.isEmpty { write(prefix, completion: nil) }
            return .success(0)
        }
        var taken = 0
        let flags = Int32(count > 0 ? MSG_MORE | MSG_NOSIGNAL : MSG_NOSIGNAL)
        while taken < prefix.count {
            let sent = Glibc.send(socket, prefix.baseAddress! + taken, prefix.count - taken, flags)
            if sent >= 0 {
                taken += sent
            } else if errno == EINTR {
                continue
            } else if errno == EAGAIN {
                break
            } else {
                return .failure(UVError(code: -errno))
            }
        }
        if taken < prefix.count {
            write(UnsafeRawBufferPointer(rebasing: prefix[taken...]), completion: nil)
            return .success(0)
        }
        guard count > 0 else { return .success(0) }
        var position = off_t(offset)
        while true {
            let sent = Glibc.sendfile(socket, descriptor, &position, count)
            if sent >= 0 { return .success(sent) }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .success(0)
            case let error: return .failure(UVError(code: -error))
            }
        }
    }

    // MARK: Shutdown and close

    /// Half-closes the connection once every queued write has left (`uv_shutdown`).
    ///
    /// `completion`, when given, runs exactly once with nil or the error; without one, a
    /// failure (the kernel refusing the half-close of a reset connection, say) reaches the
    /// delegate's `didFail`, on a later iteration. After `close()` it fails with
    /// `.brokenPipe`. A stream already shut down or shutting down (a second call), or one whose
    /// reading failed (already reported to the delegate), refuses at once with ENOTCONN: a
    /// completion hears that before `shutdown` returns; without one the call is harmless.
    public func shutdown(completion: ((UVError?) -> Void)? = nil) {
        guard state == .open else {
            completion?(.brokenPipe)
            return
        }
        let request = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        request.pointee.data = completion.map {
            Unmanaged.passRetained(WriteCompletion($0)).toOpaque()
        }
        let status = uv_shutdown(request, stream) { request, status in
            TCPConnection.withOwner(of: request!.pointee.handle) { $0.didShutdown(request!, status) }
        }
        if status < 0 {
            // libuv refuses (ENOTCONN) only a stream already shut down or shutting down, or no
            // longer writable after a read error the delegate has heard of; the handle is not
            // closing. Nothing new to report but to a completion, which asked.
            let completion = request.pointee.data.map {
                Unmanaged<WriteCompletion>.fromOpaque($0).takeRetainedValue()
            }
            request.deallocate()
            completion?.body(UVError(code: status))
        }
    }

    private func didShutdown(_ request: UnsafeMutablePointer<uv_shutdown_t>, _ status: Int32) {
        loop.events &+= 1
        let completion = request.pointee.data.map {
            Unmanaged<WriteCompletion>.fromOpaque($0).takeRetainedValue()
        }
        request.deallocate()
        let error = status < 0 ? UVError(code: status) : nil
        if let completion {
            completion.body(error)
        } else if let error, state == .open {
            // ECANCELED, from a close, is no news to the owner that closed: as for writes.
            delegateStorage?.transport(self, didFail: error)
        }
    }

    /// Closes the connection. Queued writes complete with `.cancelled` first, then the
    /// delegate's `transportDidClose` runs. Calling it twice is harmless.
    public func close() {
        guard state == .open else { return }
        state = .closing
        reading = false
        uv_close(cuv_tcp_as_handle(handle)) { handle in
            let stream = UnsafeMutableRawPointer(handle!).assumingMemoryBound(to: uv_stream_t.self)
            TCPConnection.owner(of: stream).didClose()
        }
    }

    private func didClose() {
        state = .closed
        loop.liveConnections -= 1
        let delegate = delegateStorage
        delegateStorage = nil
        delegate?.transportDidClose(self)
        handle.deallocate()
        Unmanaged.passUnretained(self).release()
    }
}

@available(*, unavailable)
extension TCPConnection: Sendable {}

/// A completion closure boxed so that a C request's `data` can hold it.
final class WriteCompletion {
    let body: (UVError?) -> Void
    init(_ body: @escaping (UVError?) -> Void) { self.body = body }
}

/// A `uv_write_t` and the bytes it writes, in one allocation freed in the write callback.
enum WriteRequest {
    private static let headerSize = (MemoryLayout<uv_write_t>.size + 15) & ~15

    /// Allocates a request and copies into it the bytes of `bufs` after the first `skip`.
    static func make(copying bufs: UnsafeMutableBufferPointer<uv_buf_t>, skipping skip: Int,
                     total: Int) -> UnsafeMutablePointer<uv_write_t> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: headerSize + total - skip, alignment: 16)
        let request = raw.bindMemory(to: uv_write_t.self, capacity: 1)
        request.pointee.data = nil
        var out = raw + headerSize
        var toSkip = skip
        for buf in bufs where buf.len > 0 {
            let count = Int(buf.len)
            if toSkip >= count {
                toSkip -= count
                continue
            }
            out.copyMemory(from: buf.base! + toSkip, byteCount: count - toSkip)
            out += count - toSkip
            toSkip = 0
        }
        return request
    }

    static func tail(of request: UnsafeMutablePointer<uv_write_t>) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(request) + headerSize
    }

    static func free(_ request: UnsafeMutablePointer<uv_write_t>) {
        UnsafeMutableRawPointer(request).deallocate()
    }
}
