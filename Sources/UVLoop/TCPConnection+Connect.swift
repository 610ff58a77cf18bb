import CLibUV

extension TCPConnection {
    /// Opens an outbound connection to `host`:`port` on `loop` (a client on the same loop, for
    /// tests and load tools). Called on the loop thread, before the loop's `close()`.
    ///
    /// - Parameter completion: runs once on the loop thread with the connected connection
    ///   (reading not started, `TCP_NODELAY` on) or the error; a failed connection is closed.
    public static func connect(loop: Loop, host: String, port: Int,
                               completion: @escaping (Result<TCPConnection, UVError>) -> Void) {
        loop.assertOpen("TCPConnection.connect")
        loop.assertOnLoopThread("TCPConnection.connect")
        var address: sockaddr_storage
        do {
            address = try SocketAddress.resolve(host: host, port: port)
        } catch {
            completion(.failure(error))
            return
        }
        let connection = TCPConnection(loop: loop)
        let request = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        request.pointee.data = Unmanaged.passRetained(ConnectCompletion(completion)).toOpaque()
        let status = uv_tcp_connect(request, connection.handle, cuv_sockaddr(&address)) { request, status in
            let completion = Unmanaged<ConnectCompletion>.fromOpaque(request!.pointee.data)
                .takeRetainedValue()
            let connection = TCPConnection.owner(of: request!.pointee.handle)
            request!.deallocate()
            connection.didConnect(status, completion.body)
        }
        if status < 0 {
            Unmanaged<ConnectCompletion>.fromOpaque(request.pointee.data).release()
            request.deallocate()
            connection.close()
            completion(.failure(UVError(code: status)))
        }
    }

    private func didConnect(_ status: Int32, _ completion: (Result<TCPConnection, UVError>) -> Void) {
        // The connection is promised with TCP_NODELAY on; setting it fails only for a socket
        // the kernel has already given up on, which is then reported as the connect's failure.
        let status = status == 0 ? uv_tcp_nodelay(handle, 1) : status
        guard status == 0 else {
            close()
            completion(.failure(UVError(code: status)))
            return
        }
        completion(.success(self))
    }
}

/// A connect completion boxed so that a `uv_connect_t`'s `data` can hold it.
private final class ConnectCompletion {
    let body: (Result<TCPConnection, UVError>) -> Void
    init(_ body: @escaping (Result<TCPConnection, UVError>) -> Void) { self.body = body }
}
