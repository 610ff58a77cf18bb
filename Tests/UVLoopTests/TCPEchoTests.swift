import Testing
@testable import UVLoop

/// Echoes every byte back on the connection it came from.
private func startEchoServer(on loop: Loop, host: String = "127.0.0.1") throws -> TCPListener {
    let listener = try TCPListener(loop: loop, host: host, port: 0)
    let echo = Callbacks()
    echo.onRead = { connection, bytes in connection.write(bytes) }
    listener.onConnection = { connection in
        connection.delegate = echo
        connection.startReading()
    }
    return listener
}

/// A client that sends `payload` in random-sized writes and checks that it comes back whole.
private final class EchoClient {
    let payload: [UInt8]
    var received: [UInt8] = []
    var finished = false
    var failure: UVError?

    init(size: Int, generator: inout SplitMix) {
        payload = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
        received.reserveCapacity(size)
    }

    func start(_ connection: TCPConnection, generator: inout SplitMix) {
        let callbacks = Callbacks()
        callbacks.onRead = { [unowned self] connection, bytes in
            received.append(contentsOf: bytes)
            if received.count >= payload.count { connection.close() }
        }
        callbacks.onFail = { [unowned self] connection, error in
            failure = error
            connection.close()
        }
        callbacks.onClose = { [unowned self] _ in finished = true }
        connection.delegate = callbacks
        connection.startReading()
        var offset = 0
        while offset < payload.count {
            let piece = min(Int.random(in: 1...9000, using: &generator), payload.count - offset)
            payload[offset..<offset + piece].withUnsafeBytes { connection.write($0) }
            offset += piece
        }
    }
}

@Suite("TCP echo over loopback")
struct TCPEchoTests {
    @Test func listenerOnPortZeroReportsTheRealPort() throws {
        let loop = try Loop()
        let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
        #expect(listener.localAddress.port > 0)
        #expect(listener.localAddress.host == "127.0.0.1")
        #expect(!listener.localAddress.isIPv6)
        closeCleanly(loop)
    }

    /// Nagle's algorithm is off and the listener's unsent-bytes limit is set on every accepted
    /// socket, without a system call of its own; a nil limit leaves the kernel's default.
    @Test(arguments: [TCPListener.defaultUnsentLimit, 256 << 10, nil])
    func acceptedConnectionsHaveNagleOffAndTheListenersUnsentLimit(_ limit: Int?) throws {
        let loop = try Loop()
        let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0, unsentLimit: limit)
        var seen: [Int?] = []
        var noDelay: [Bool?] = []
        listener.onConnection = { connection in
            seen.append(connection.unsentLimit)
            noDelay.append(connection.isNoDelay)
            connection.close()
        }
        var clients: [TCPConnection] = []
        for _ in 0..<2 {
            TCPConnection.connect(loop: loop, host: "127.0.0.1", port: listener.localAddress.port) { result in
                if case .success(let client) = result { clients.append(client) }
            }
        }
        run(loop, until: { seen.count == 2 })
        #expect(seen == [limit ?? 0, limit ?? 0])
        #expect(noDelay == [true, true])
        #expect(TCPListener.defaultUnsentLimit == 64 << 10)
        for client in clients { client.close() }
        listener.close()
        closeCleanly(loop)
    }

    @Test func bindingAPortInUseThrowsAddressInUse() throws {
        let loop = try Loop()
        let first = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
        #expect(throws: UVError.addressInUse) {
            _ = try TCPListener(loop: loop, host: "127.0.0.1", port: first.localAddress.port)
        }
        closeCleanly(loop)
    }

    @Test func errorsCarryLibuvNames() {
        #expect(UVError.addressInUse.name == "EADDRINUSE")
        #expect(UVError.addressInUse.description.hasPrefix("EADDRINUSE: "))
    }

    @Test func thousandConcurrentConnectionsEachEcho64KiBExactly() throws {
        raiseFileLimit()
        let loop = try Loop()
        let listener = try startEchoServer(on: loop)
        var generator = SplitMix(state: 42)
        var clients: [EchoClient] = []
        var connectErrors: [UVError] = []
        for _ in 0..<1000 {
            let client = EchoClient(size: 64 * 1024, generator: &generator)
            clients.append(client)
            var clientGenerator = SplitMix(state: generator.next())
            TCPConnection.connect(loop: loop, host: "127.0.0.1", port: listener.localAddress.port) { result in
                switch result {
                case .success(let connection): client.start(connection, generator: &clientGenerator)
                case .failure(let error): connectErrors.append(error); client.finished = true
                }
            }
        }
        run(loop, seconds: 120) { clients.allSatisfy(\.finished) }
        #expect(connectErrors.isEmpty)
        #expect(clients.allSatisfy { $0.failure == nil })
        #expect(clients.allSatisfy { $0.received == $0.payload })
        // The server side closes on EOF; wait for it, then nothing is left.
        run(loop) { loop.liveConnections == 0 }
        closeCleanly(loop)
    }

    @Test(.enabled(if: hasIPv6Loopback()))
    func echoWorksOverIPv6Loopback() throws {
        let loop = try Loop()
        let listener = try startEchoServer(on: loop, host: "::1")
        #expect(listener.localAddress.isIPv6)
        var generator = SplitMix(state: 7)
        let client = EchoClient(size: 10_000, generator: &generator)
        var remote: SocketAddress?
        TCPConnection.connect(loop: loop, host: "::1", port: listener.localAddress.port) { result in
            let connection = try! result.get()
            remote = connection.remoteAddress
            client.start(connection, generator: &generator)
        }
        run(loop) { client.finished }
        #expect(client.received == client.payload)
        #expect(remote == listener.localAddress)
        closeCleanly(loop)
    }

    @Test func connectingToAClosedPortFailsWithAnError() throws {
        let loop = try Loop()
        let port = try TCPListener(loop: loop, host: "127.0.0.1", port: 0).localAddress.port
        closeCleanly(loop)
        let second = try Loop()
        var result: Result<TCPConnection, UVError>?
        TCPConnection.connect(loop: second, host: "127.0.0.1", port: port) { result = $0 }
        run(second) { result != nil }
        if case .failure(let error) = result {
            #expect(error.name == "ECONNREFUSED")
        } else {
            Issue.record("connect to a closed port succeeded")
        }
        closeCleanly(second)
    }

    @Test func peerHalfCloseIsReportedAsEOFNotAsZeroRead() throws {
        let loop = try Loop()
        let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
        var serverSaw: [String] = []
        let server = Callbacks()
        server.onRead = { _, bytes in serverSaw.append("data \(bytes.count)") }
        server.onEOF = { connection in
            serverSaw.append("eof")
            // Writing still works after the peer's half-close.
            connection.write(Array("bye".utf8)) { error in
                serverSaw.append(error == nil ? "wrote" : "write failed")
                connection.close()
            }
        }
        listener.onConnection = { $0.delegate = server; $0.startReading() }
        var clientGot: [UInt8] = []
        var clientClosed = false
        TCPConnection.connect(loop: loop, host: "127.0.0.1", port: listener.localAddress.port) { result in
            let connection = try! result.get()
            let client = Callbacks()
            client.onRead = { _, bytes in clientGot.append(contentsOf: bytes) }
            client.onClose = { _ in clientClosed = true }
            connection.delegate = client
            connection.startReading()
            connection.write(Array("hello".utf8))
            connection.shutdown()
        }
        run(loop) { clientClosed }
        #expect(serverSaw == ["data 5", "eof", "wrote"])
        #expect(clientGot == Array("bye".utf8))
        closeCleanly(loop)
    }
}
