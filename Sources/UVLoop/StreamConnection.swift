import CLibUV

/// One libuv stream as a `Transport`: what a TCP connection and a pipe share.
///
/// Reads arrive through the delegate from the loop's shared buffer. Writes are ordered: each
/// is tried at once with `uv_try_write`, and only what the kernel did not take is copied and
/// queued with `uv_write`. Half-close is `uv_shutdown`; close is `uv_close`.
///
/// There are two kinds, made by their owners, never directly: `TCPConnection`, which adds
/// addresses and `sendFile`, and `PipeConnection`, an end of a pipe to a child process. The
/// members they share are final, so a read or a write through either costs no more dispatch
/// than it would on a class of its own.
public class StreamConnection: Transport, LoopResource {
    /// The loop the stream lives on.
    public let loop: Loop

    /// The receiver of reads, EOF, errors and the close. Held strongly until the stream has
    /// closed, then released. Set and read on the loop thread only.
    public final var delegate: (any TransportDelegate)? {
        get { delegateStorage }
        set { delegateStorage = newValue }
    }
    /// `delegate`'s storage, read on every callback. Being private, it is checked for
    /// exclusive access at compile time, where the public property would be checked at run
    /// time on every read (76 instructions per request, Scripts/callgrind).
    private final var delegateStorage: (any TransportDelegate)?

    /// The handle: a `uv_tcp_t` or a `uv_pipe_t`, which the subclass allocates and initialises.
    /// Owned by this stream from `init` on; `data` holds a retain of it, released in the close
    /// callback, which is also the only place the handle is freed.
    let stream: UnsafeMutablePointer<uv_stream_t>

    private enum State { case open, closing, closed }
    private final var state = State.open
    private final var reading = false

    /// Takes ownership of `stream`, a handle the subclass has just initialised on `loop`.
    init(loop: Loop, stream: UnsafeMutablePointer<uv_stream_t>) {
        self.loop = loop
        self.stream = stream
        stream.pointee.data = Unmanaged.passRetained(self).toOpaque()
        loop.liveConnections += 1
    }

    /// The stream of a libuv callback, taken unretained (its `data` keeps it alive).
    static func owner(of stream: UnsafeMutablePointer<uv_stream_t>) -> Self {
        Unmanaged<Self>.fromOpaque(stream.pointee.data).takeUnretainedValue()
    }

    /// Runs `body` with the stream of a libuv callback, borrowed without reference counting:
    /// the handle's `data` keeps it alive until the close callback.
    @inline(__always)
    static func withOwner<R>(of stream: UnsafeMutablePointer<uv_stream_t>,
                             _ body: (StreamConnection) -> R) -> R {
        Unmanaged<StreamConnection>.fromOpaque(stream.pointee.data)._withUnsafeGuaranteedRef(body)
    }

    /// The peer's address: none for a stream in general (a pipe); a TCP connection overrides it.
    public var remoteAddress: SocketAddress? { nil }

    /// Whether the stream is open (neither closing nor closed).
    public final var isOpen: Bool { state == .open }

    // MARK: Reading

    /// Starts delivering reads to the delegate. Harmless when already reading or closing.
    public final func startReading() {
        guard state == .open, !reading else { return }
        // Both callbacks borrow their owner, so a read costs no reference counting of the loop
        // or the stream.
        let status = uv_read_start(stream, { handle, _, buf in
            Loop.withOwner(of: handle!.pointee.loop) { loop in
                buf!.pointee = cuv_buf(loop.readBuffer, loop.readBufferSize)
            }
        }, { stream, count, buf in
            StreamConnection.withOwner(of: stream!) { $0.didRead(count, buf!.pointee.base) }
        })
        // libuv refuses a closing handle (ruled out above) and, with ENOTCONN, a stream that
        // can no longer be read: after its end of input, which the delegate has heard of, or
        // the write-only end of a pipe.
        precondition(status == 0 || status == Int32(UV_ENOTCONN.rawValue),
                     "uv_read_start failed: \(UVError(code: status))")
        reading = status == 0
    }

    /// Stops delivering reads; the kernel buffers what arrives, and the writer at the other
    /// end (a TCP peer, a child process) feels the backpressure once that fills.
    public final func stopReading() {
        guard state == .open, reading else { return }
        uv_read_stop(stream)  // Never fails.
        reading = false
    }

    /// Whether reads are being delivered.
    public final var isReading: Bool { reading }

    private final func didRead(_ count: Int, _ base: UnsafeMutablePointer<CChar>?) {
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
    public final var queuedBytes: Int { uv_stream_get_write_queue_size(stream) }

    /// Writes `bytes` after everything written before.
    ///
    /// The bytes are borrowed for the call only: what the kernel does not take at once is
    /// copied. `completion`, when given, runs exactly once, with nil or the error; it runs
    /// before `write` returns when every byte left at once. Without a completion a failure
    /// reaches the delegate's `didFail`. After `close()` the write fails with `.brokenPipe`.
    public final func write(_ bytes: UnsafeRawBufferPointer, completion: ((UVError?) -> Void)?) {
        var buf = cuv_buf(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count)
        withUnsafeMutablePointer(to: &buf) { bufs in
            write(UnsafeMutableBufferPointer(start: bufs, count: 1), total: bytes.count,
                  completion: completion)
        }
    }

    /// Writes several buffers in order, with one `writev` where the kernel takes them.
    public final func write(_ buffers: [UnsafeRawBufferPointer],
                            completion: ((UVError?) -> Void)? = nil) {
        var total = 0
        let bufs = buffers.map { buffer -> uv_buf_t in
            total += buffer.count
            return cuv_buf(UnsafeMutableRawPointer(mutating: buffer.baseAddress), buffer.count)
        }
        bufs.withUnsafeBufferPointer { bufs in
            write(UnsafeMutableBufferPointer(mutating: bufs), total: total, completion: completion)
        }
    }

    private final func write(_ bufs: UnsafeMutableBufferPointer<uv_buf_t>, total: Int,
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
        // uv_write itself refuses at once only a stream that cannot be written (the read end
        // of a pipe); that failure is reported before `write` returns.
        let request = WriteRequest.make(copying: bufs, skipping: sent, total: total)
        if let completion {
            request.pointee.data = Unmanaged.passRetained(WriteCompletion(completion)).toOpaque()
        }
        var tail = cuv_buf(WriteRequest.tail(of: request), total - sent)
        let status = uv_write(request, stream, &tail, 1) { request, status in
            StreamConnection.withOwner(of: request!.pointee.handle) { $0.didWrite(request!, status) }
        }
        if status < 0 {
            didWrite(request, status)
        }
    }

    private final func didWrite(_ request: UnsafeMutablePointer<uv_write_t>, _ status: Int32) {
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

    /// Sends no file's bytes as they are: a TCP connection overrides it (see `Transport`).
    public func sendFile(prefix: UnsafeRawBufferPointer, _ descriptor: Int32, offset: Int,
                         count: Int) -> Result<Int, UVError>? { nil }

    // MARK: Shutdown and close

    /// Half-closes the stream once every queued write has left (`uv_shutdown`): the reader at
    /// the other end (a TCP peer, a child reading its standard input) reads an end of input.
    ///
    /// `completion`, when given, runs exactly once with nil or the error; without one, a
    /// failure (the kernel refusing the half-close of a reset connection, say) reaches the
    /// delegate's `didFail`, on a later iteration. After `close()` it fails with
    /// `.brokenPipe`. A stream already shut down or shutting down (a second call), one whose
    /// reading failed (already reported to the delegate), or one that cannot be written (the
    /// read end of a pipe) refuses at once with ENOTCONN: a completion hears that before
    /// `shutdown` returns; without one the call is harmless.
    public final func shutdown(completion: ((UVError?) -> Void)? = nil) {
        guard state == .open else {
            completion?(.brokenPipe)
            return
        }
        let request = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        request.pointee.data = completion.map {
            Unmanaged.passRetained(WriteCompletion($0)).toOpaque()
        }
        let status = uv_shutdown(request, stream) { request, status in
            StreamConnection.withOwner(of: request!.pointee.handle) { $0.didShutdown(request!, status) }
        }
        if status < 0 {
            // libuv refuses (ENOTCONN) only a stream already shut down or shutting down, or not
            // writable (any more, after a read error the delegate has heard of); the handle is
            // not closing. Nothing new to report but to a completion, which asked.
            let completion = request.pointee.data.map {
                Unmanaged<WriteCompletion>.fromOpaque($0).takeRetainedValue()
            }
            request.deallocate()
            completion?.body(UVError(code: status))
        }
    }

    private final func didShutdown(_ request: UnsafeMutablePointer<uv_shutdown_t>, _ status: Int32) {
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

    /// Closes the stream. Queued writes complete with `.cancelled` first, then the delegate's
    /// `transportDidClose` runs. Calling it twice is harmless.
    public final func close() {
        guard state == .open else { return }
        state = .closing
        reading = false
        uv_close(cuv_stream_as_handle(stream)) { handle in
            let stream = UnsafeMutableRawPointer(handle!).assumingMemoryBound(to: uv_stream_t.self)
            StreamConnection.owner(of: stream).didClose()
        }
    }

    private final func didClose() {
        state = .closed
        loop.liveConnections -= 1
        let delegate = delegateStorage
        delegateStorage = nil
        delegate?.transportDidClose(self)
        // The subclass allocated the handle as its own type; the memory is freed as raw bytes.
        UnsafeMutableRawPointer(stream).deallocate()
        Unmanaged.passUnretained(self).release()
    }
}

/// Loop-bound, and so are `TCPConnection` and `PipeConnection`, which inherit this.
@available(*, unavailable)
extension StreamConnection: Sendable {}

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
