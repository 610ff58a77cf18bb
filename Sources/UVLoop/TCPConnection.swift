import CLibUV
import Glibc

/// One TCP stream, accepted by a `TCPListener` or made with `connect`.
///
/// Reading, ordered writes, half-close and close are `StreamConnection`'s; a TCP connection
/// adds its addresses and `sendFile`. `TCP_NODELAY` is on.
public final class TCPConnection: StreamConnection {
    init(loop: Loop) {
        let handle = UnsafeMutablePointer<uv_tcp_t>.allocate(capacity: 1)
        // uv_tcp_init makes no socket for AF_UNSPEC (accept and connect make it later), so it
        // always returns 0: a failure is a libuv that broke its contract. Stop rather than
        // use a handle that is not set up; throwing would burden every caller for nothing.
        let status = uv_tcp_init(loop.raw, handle)
        precondition(status == 0, "uv_tcp_init failed: \(UVError(code: status))")
        super.init(loop: loop, stream: cuv_tcp_as_stream(handle))
    }

    /// The handle, a `uv_tcp_t` (owned by this connection: see `stream`).
    var handle: UnsafeMutablePointer<uv_tcp_t> {
        UnsafeMutableRawPointer(stream).assumingMemoryBound(to: uv_tcp_t.self)
    }

    // MARK: Addresses

    /// The peer's address, or nil once the connection is closing or the peer is gone.
    public override var remoteAddress: SocketAddress? {
        guard isOpen else { return nil }
        return try? SocketAddress.of(handle, uv_tcp_getpeername)
    }

    /// The local address of the connection, or nil once it is closing.
    public var localAddress: SocketAddress? {
        guard isOpen else { return nil }
        return try? SocketAddress.of(handle, uv_tcp_getsockname)
    }

    /// Whether `TCP_NODELAY` is on for the socket (accepted sockets inherit it from the
    /// listener on Linux); nil when the socket cannot be asked.
    var isNoDelay: Bool? { integerOption(Int32(IPPROTO_TCP), TCP_NODELAY).map { $0 != 0 } }

    /// `TCP_NOTSENT_LOWAT` of the socket (0: the kernel's default), or nil when it cannot be
    /// read. For tests.
    var unsentLimit: Int? { integerOption(Int32(IPPROTO_TCP), TCP_NOTSENT_LOWAT).map { Int($0) } }

    private func integerOption(_ level: Int32, _ name: Int32) -> Int32? {
        var fd: uv_os_fd_t = -1
        guard uv_fileno(cuv_tcp_as_handle(handle), &fd) == 0 else { return nil }
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, level, name, &value, &length) == 0 else { return nil }
        return value
    }

    /// Writes `prefix`, then sends up to `count` bytes of the file `descriptor` from `offset`
    /// with `sendfile(2)` when nothing written before is still queued (so the order holds):
    /// the bytes go from the page cache to the socket without a copy through user space.
    /// `prefix` is sent with `MSG_MORE`, so a response head leaves in one segment with the
    /// file's first bytes; what the kernel does not take of it is queued like a `write`.
    /// Returns the file bytes the kernel took now: 0 when writes are queued or the socket's
    /// buffer is full. The socket is non-blocking, so the call never waits; the file is read
    /// in the calling thread, which for a file in the page cache is a copy inside the kernel.
    public override func sendFile(prefix: UnsafeRawBufferPointer, _ descriptor: Int32,
                                  offset: Int, count: Int) -> Result<Int, UVError>? {
        guard isOpen else { return .failure(.brokenPipe) }
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
}
