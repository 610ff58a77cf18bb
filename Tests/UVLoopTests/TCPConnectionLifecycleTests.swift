import Glibc
import Testing
@testable import UVLoop

/// Connects a client to a fresh listener and hands both ends to `body` once accepted.
private func connectedPair(on loop: Loop) throws -> (server: TCPConnection, client: TCPConnection) {
    let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
    var server: TCPConnection?
    var client: TCPConnection?
    listener.onConnection = { server = $0 }
    TCPConnection.connect(loop: loop, host: "127.0.0.1", port: listener.localAddress.port) {
        client = try? $0.get()
    }
    run(loop) { server != nil && client != nil }
    listener.close()
    return (server!, client!)
}

/// Accepts a plain blocking client socket (not libuv's) on a fresh listener, so that the test
/// can reset it: `SO_LINGER` 0 makes `close` send a RST.
private func acceptResettableClient(on loop: Loop) throws -> (server: TCPConnection, client: Int32) {
    let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
    var server: TCPConnection?
    listener.onConnection = { server = $0 }
    let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(listener.localAddress.port).bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    #expect(connected == 0)
    run(loop) { server != nil }
    listener.close()
    return (server!, client)
}

/// Closes `socket` with a RST instead of a FIN.
private func reset(_ socket: Int32) {
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    setsockopt(socket, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    Glibc.close(socket)
}

@Suite("TCP connection lifecycle")
struct TCPConnectionLifecycleTests {
    @Test func writeAfterCloseFailsWithBrokenPipeAndNothingElse() throws {
        let loop = try Loop()
        let (server, client) = try connectedPair(on: loop)
        server.close()
        var results: [UVError?] = []
        server.write(Array("late".utf8)) { results.append($0) }
        #expect(results == [.brokenPipe])
        var shutdownResult: UVError?
        server.shutdown { shutdownResult = $0 }
        #expect(shutdownResult == .brokenPipe)
        server.close()  // twice is harmless
        client.close()
        closeCleanly(loop)
    }

    @Test func closingWithWritesPendingCompletesEachOnceThenClosesOnce() throws {
        let loop = try Loop()
        let (server, client) = try connectedPair(on: loop)
        // The client never reads, so the kernel's buffers fill and later writes queue.
        let megabyte = [UInt8](repeating: 0x61, count: 1 << 20)
        var events: [String] = []
        var completions = [Int](repeating: 0, count: 64)
        let callbacks = Callbacks()
        callbacks.onClose = { _ in events.append("close") }
        server.delegate = callbacks
        for index in 0..<64 {
            server.write(megabyte) { error in
                completions[index] += 1
                events.append(error == nil ? "ok" : "\(error!.name)")
            }
        }
        #expect(server.queuedBytes > 0)
        server.close()
        run(loop) { events.last == "close" }
        #expect(completions.allSatisfy { $0 == 1 })
        #expect(events.filter { $0 == "close" }.count == 1)
        #expect(events.last == "close")
        #expect(events.contains("ECANCELED"))
        client.close()
        closeCleanly(loop)
    }

    @Test func pausedReadingDeliversNothingUntilResumed() throws {
        let loop = try Loop()
        let (server, client) = try connectedPair(on: loop)
        var got: [UInt8] = []
        let callbacks = Callbacks()
        callbacks.onRead = { _, bytes in got.append(contentsOf: bytes) }
        server.delegate = callbacks
        server.startReading()
        server.stopReading()
        #expect(!server.isReading)
        client.write(Array("ping".utf8))
        var ticks = 0
        let timer = LoopTimer(loop: loop)
        timer.start(after: 50) { ticks += 1 }
        run(loop) { ticks == 1 }
        #expect(got.isEmpty)
        server.startReading()
        run(loop) { got.count == 4 }
        #expect(got == Array("ping".utf8))
        server.close()
        client.close()
        closeCleanly(loop)
    }

    /// After a read error libuv stops reading by itself, as at the end of input.
    @Test func aReadErrorStopsReading() throws {
        let loop = try Loop()
        let (server, client) = try acceptResettableClient(on: loop)
        var failures: [UVError] = []
        let callbacks = Callbacks()
        callbacks.onFail = { _, error in failures.append(error) }  // Stays open.
        server.delegate = callbacks
        server.startReading()
        reset(client)
        run(loop) { !failures.isEmpty }
        #expect(failures == [.connectionReset])
        #expect(!server.isReading)
        server.close()
        closeCleanly(loop)
    }

    /// A shutdown the kernel refuses (the peer reset the connection) fails in its callback:
    /// with no completion to hear it, the delegate does.
    @Test func aFailedShutdownWithoutACompletionReachesTheDelegate() throws {
        let loop = try Loop()
        let (server, client) = try acceptResettableClient(on: loop)
        var failures: [UVError] = []
        let callbacks = Callbacks()
        callbacks.onFail = { _, error in failures.append(error) }
        server.delegate = callbacks
        reset(client)
        // The RST crosses loopback within the close; the peer's address goes with it.
        var spins = 0
        while server.remoteAddress != nil && spins < 1_000_000 {
            sched_yield()
            spins += 1
        }
        #expect(server.remoteAddress == nil)
        server.shutdown()
        run(loop) { !failures.isEmpty }
        #expect(failures.map(\.name) == ["ENOTCONN"])
        server.close()
        closeCleanly(loop)
    }

    /// A second shutdown is refused (the stream is already shutting down): its completion
    /// hears ENOTCONN, and without a completion it is harmless.
    @Test func aSecondShutdownIsRefusedWithoutHarm() throws {
        let loop = try Loop()
        let (server, client) = try connectedPair(on: loop)
        var failures: [UVError] = []
        let callbacks = Callbacks()
        callbacks.onFail = { _, error in failures.append(error) }
        server.delegate = callbacks
        var results: [String] = []
        server.shutdown { results.append($0?.name ?? "ok") }
        server.shutdown { results.append($0?.name ?? "ok") }
        server.shutdown()
        var clientSawEOF = false
        let clientCallbacks = Callbacks()
        clientCallbacks.onEOF = { _ in clientSawEOF = true }
        client.delegate = clientCallbacks
        client.startReading()
        run(loop) { results.count == 2 && clientSawEOF }
        #expect(results == ["ENOTCONN", "ok"])
        #expect(failures.isEmpty)
        server.close()
        client.close()
        closeCleanly(loop)
    }

    @Test func liveConnectionCountReturnsToZeroAfterManyOpenAndClose() throws {
        raiseFileLimit()
        let loop = try Loop()
        let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
        listener.onConnection = { connection in
            let callbacks = Callbacks()
            connection.delegate = callbacks
            connection.startReading()
        }
        var closed = 0
        for _ in 0..<500 {
            TCPConnection.connect(loop: loop, host: "127.0.0.1", port: listener.localAddress.port) { result in
                let connection = try! result.get()
                let callbacks = Callbacks()
                callbacks.onClose = { _ in closed += 1 }
                connection.delegate = callbacks
                connection.close()
            }
        }
        run(loop) { closed == 500 && loop.liveConnections == 0 }
        #expect(loop.liveConnections == 0)
        closeCleanly(loop)
    }

    @Test func loopCloseClosesWhateverIsStillOpen() throws {
        let loop = try Loop()
        let (server, client) = try connectedPair(on: loop)
        server.startReading()
        client.write(Array(repeating: 1, count: 10))
        _ = LoopTimer(loop: loop)
        #expect(loop.liveConnections == 2)
        closeCleanly(loop)
    }

    @Test func pausedListenerLeavesConnectionsWaitingUntilResumed() throws {
        let loop = try Loop()
        let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
        var accepted: [TCPConnection] = []
        listener.onConnection = { accepted.append($0) }
        listener.pauseAccepting()
        var connected = 0
        for _ in 0..<3 {
            TCPConnection.connect(loop: loop, host: "127.0.0.1", port: listener.localAddress.port) { _ in
                connected += 1
            }
        }
        run(loop) { connected == 3 }  // The kernel completes the handshakes from its backlog.
        var ticks = 0
        let timer = LoopTimer(loop: loop)
        timer.start(after: 50) { ticks += 1 }
        run(loop) { ticks == 1 }
        #expect(accepted.isEmpty)
        listener.resumeAccepting()
        run(loop) { accepted.count == 3 }
        closeCleanly(loop)
    }
}
