import CLibUV
import Glibc

/// A listening TCP socket that hands each accepted connection to `onConnection`.
///
/// Accepting can be paused (for a connection cap): a paused listener leaves the next
/// connection in libuv's hands without accepting it, which makes libuv stop polling the socket;
/// the kernel's backlog holds the rest. Resuming accepts that connection and polling restarts.
public final class TCPListener: LoopResource {
    /// The loop the listener lives on.
    public let loop: Loop

    /// The bound address; its port is the real one when port 0 was asked for.
    public let localAddress: SocketAddress

    /// Called with each accepted connection (reading not started, `TCP_NODELAY` on, the
    /// listener's `unsentLimit` set). The callee owns it from then on; with no callback set,
    /// the connection is closed.
    public var onConnection: ((TCPConnection) -> Void)?

    /// Called when accepting fails, e.g. with `.tooManyOpenFiles` (libuv then drops the
    /// waiting connection itself so that the loop does not spin).
    public var onError: ((UVError) -> Void)?

    /// Owned by this listener; `data` holds a retain of it, released in the close callback,
    /// which is also the only place the handle is freed.
    private let handle: UnsafeMutablePointer<uv_tcp_t>
    private var paused = false
    private var connectionWaiting = false
    private var isClosing = false

    /// Binds `host`:`port` and listens. Called on the loop thread, before the loop's `close()`.
    /// - Parameters:
    ///   - host: a numeric IPv4 or IPv6 address, `""` for every IPv4 interface, or a name.
    ///   - port: the port, or 0 for one the kernel picks (read it back from `localAddress`).
    ///   - backlog: the kernel's queue of connections not yet accepted (at least 511).
    ///   - reusePort: sets `SO_REUSEPORT` so several listeners can share the port.
    ///   - unsentLimit: the most bytes a connection's socket holds that it has not sent yet
    ///     (`TCP_NOTSENT_LOWAT`) before a write or `sendfile` would block, and half of which it
    ///     must fall to before it is writable again; nil leaves the kernel's (no limit: the
    ///     whole send buffer, which grows to megabytes). See `defaultUnsentLimit`.
    /// - Throws: `UVError`, e.g. `.addressInUse` (reported by `listen`, not by `bind`).
    public init(loop: Loop, host: String, port: Int, backlog: Int32 = 1024,
                reusePort: Bool = false, unsentLimit: Int? = defaultUnsentLimit) throws(UVError) {
        loop.assertOpen("TCPListener.init")
        loop.assertOnLoopThread("TCPListener.init")
        var address = try SocketAddress.resolve(host: host, port: port)
        let handle = UnsafeMutablePointer<uv_tcp_t>.allocate(capacity: 1)
        // uv_tcp_init_ex makes the socket now, so options can be set before bind.
        let initStatus = uv_tcp_init_ex(loop.raw, handle, UInt32(address.ss_family))
        guard initStatus == 0 else {
            handle.deallocate()
            throw UVError(code: initStatus)
        }
        do throws(UVError) {
            var fd: uv_os_fd_t = -1
            try UVError.check(uv_fileno(cuv_tcp_as_handle(handle), &fd))
            if reusePort { try TCPListener.setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            // Accepted sockets inherit TCP_NODELAY and TCP_NOTSENT_LOWAT from the listening
            // socket on Linux, which saves a system call per connection for each.
            try UVError.check(uv_tcp_nodelay(handle, 1))
            if let unsentLimit {
                try TCPListener.setOption(fd, Int32(IPPROTO_TCP), TCP_NOTSENT_LOWAT, Int32(clamping: unsentLimit))
            }
            try UVError.check(uv_tcp_bind(handle, cuv_sockaddr(&address), 0))
            let bound = try SocketAddress.of(handle, uv_tcp_getsockname)
            try UVError.check(uv_listen(cuv_tcp_as_stream(handle), max(backlog, 511)) { server, status in
                TCPListener.owner(of: server!).didReceiveConnection(status)
            })
            localAddress = bound!
        } catch {
            // The handle is initialised, so only its close callback may free it.
            handle.pointee.data = nil
            uv_close(cuv_tcp_as_handle(handle)) { handle in
                UnsafeMutableRawPointer(handle!).assumingMemoryBound(to: uv_tcp_t.self).deallocate()
            }
            throw error
        }
        self.loop = loop
        self.handle = handle
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// The unsent bytes a connection's socket holds at most (`TCP_NOTSENT_LOWAT`): 64 KiB.
    ///
    /// Linux lets a socket queue its whole send buffer unsent, which it grows to 4 MiB. Kept
    /// that full, a 256 MiB download over loopback cost 0.34-0.41 CPU s per GB; the shorter
    /// the queue, the less the kernel spends per byte: its segments and acknowledgements are
    /// fewer, and the pages it sends are still in the cache when it lets them go. On the F4
    /// file (server and client on their own CPUs, medians of five runs of at least 2 s,
    /// interleaved with lighttpd's 5,311 MB/s and 0.185 s): 2 MiB 0.32 s per GB; 512 KiB
    /// 0.20-0.22 s; 128 KiB 0.16-0.18 s; 64 KiB 0.12-0.14 s and 6.2-6.7 GB/s; 32 KiB 0.12 s.
    /// An HTTPS download of the same file cost 0.70-0.72 s per GB against 0.80-0.82 s with
    /// 512 KiB. Data in flight is not limited, only what waits behind it: a network path
    /// keeps its window full as long as the server refills the queue within the time half of
    /// it takes to send (26 us at 10 Gb/s; Cloudflare tunes its HTTP/2 servers to 16 KiB).
    public static let defaultUnsentLimit = 64 << 10

    private static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(UVError) {
        var value = value
        guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0
        else { throw UVError(code: -errno) }
    }

    private static func owner(of stream: UnsafeMutablePointer<uv_stream_t>) -> TCPListener {
        Unmanaged<TCPListener>.fromOpaque(stream.pointee.data).takeUnretainedValue()
    }

    /// Whether new connections are being accepted.
    public var isAccepting: Bool { !paused && !isClosing }

    /// Stops accepting; connections wait in the kernel's backlog.
    public func pauseAccepting() {
        paused = true
    }

    /// Accepts again, starting with the connection that arrived while paused, if any.
    public func resumeAccepting() {
        guard paused, !isClosing else { return }
        paused = false
        if connectionWaiting {
            connectionWaiting = false
            acceptOne()
        }
    }

    private func didReceiveConnection(_ status: Int32) {
        guard !isClosing else { return }
        if status < 0 {
            onError?(UVError(code: status))
        } else if paused {
            // Not accepting makes libuv stop polling until uv_accept is called.
            connectionWaiting = true
        } else {
            acceptOne()
        }
    }

    private func acceptOne() {
        loop.events &+= 1
        let connection = TCPConnection(loop: loop)
        let accepted = uv_accept(cuv_tcp_as_stream(handle), connection.stream)
        // Accepted sockets inherit TCP_NODELAY from the listening socket on Linux; elsewhere
        // it is set here, and failing to set it fails the accept.
        #if os(Linux)
        let status = accepted
        #else
        let status = accepted == 0 ? uv_tcp_nodelay(connection.handle, 1) : accepted
        #endif
        guard status == 0 else {
            connection.close()
            onError?(UVError(code: status))
            return
        }
        if let onConnection {
            onConnection(connection)
        } else {
            connection.close()
        }
    }

    /// Closes the listening socket. Connections already accepted are not affected. Calling it
    /// twice is harmless.
    public func close() {
        guard !isClosing else { return }
        isClosing = true
        onConnection = nil
        uv_close(cuv_tcp_as_handle(handle)) { handle in
            let stream = UnsafeMutableRawPointer(handle!).assumingMemoryBound(to: uv_stream_t.self)
            TCPListener.owner(of: stream).didClose()
        }
    }

    private func didClose() {
        handle.deallocate()
        Unmanaged.passUnretained(self).release()
    }
}

@available(*, unavailable)
extension TCPListener: Sendable {}
