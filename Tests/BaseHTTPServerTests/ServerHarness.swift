import Foundation
import Glibc
import Testing
@testable import BaseHTTPServer

/// A server on port 0 serving on its own thread, for tests that talk to it over loopback.
final class RunningServer: @unchecked Sendable {
    let server: HTTPServer
    private let stopped = DispatchSemaphore(value: 0)
    private(set) var serveError: (any Error)?

    /// `beforeServing` runs on the test's thread before the serving thread starts: for
    /// settings that are not in the configuration.
    convenience init(_ handler: BaseHTTPRequestHandler.Type, host: String = "127.0.0.1",
                     configure: (inout HTTPServer.Configuration) -> Void = { _ in },
                     beforeServing: (HTTPServer) -> Void = { _ in }) throws {
        try self.init(server: HTTPServer((host, 0), handler), configure: configure,
                      beforeServing: beforeServing)
    }

    /// Serves `server` (made on port 0), configured by `configure` first.
    init(server: HTTPServer, configure: (inout HTTPServer.Configuration) -> Void = { _ in },
         beforeServing: (HTTPServer) -> Void = { _ in }) {
        self.server = server
        configure(&server.configuration)
        beforeServing(server)
        let thread = Thread { [self] in
            do { try server.serveForever() } catch { serveError = error }
            stopped.signal()
        }
        thread.stackSize = 1 << 22
        thread.start()
    }

    var port: Int { server.serverPort }

    /// Shuts the server down, checks that `serveForever()` returned cleanly, and closes the
    /// server (its port and loop) unless `close` is false.
    func stop(close: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) {
        server.shutdown()
        let returned = stopped.wait(timeout: .now() + 20) == .success
        #expect(returned, "serveForever did not return", sourceLocation: sourceLocation)
        #expect(serveError == nil, "serveForever threw \(String(describing: serveError))",
                sourceLocation: sourceLocation)
        if returned && close { server.serverClose() }
    }

    func client() throws -> RawClient { try RawClient(port: port) }

    /// The bytes the server's connections have written and not yet sent, read on the loop
    /// thread.
    func queuedOutputBytes() -> Int {
        let done = DispatchSemaphore(value: 0)
        let server = self.server
        nonisolated(unsafe) var bytes = 0
        server.loop.execute {
            bytes = server.queuedOutputBytes
            done.signal()
        }
        done.wait()
        return bytes
    }

    /// The CGI scripts running and waiting for a slot, read on the loop thread.
    func cgiSlots() -> (running: Int, waiting: Int) {
        let done = DispatchSemaphore(value: 0)
        let server = self.server
        nonisolated(unsafe) var counts = (running: 0, waiting: 0)
        server.loop.execute {
            counts = (server.cgiSlots.running, server.cgiSlots.waiting.count)
            done.signal()
        }
        done.wait()
        return counts
    }

    /// Moves the server's deadline clock forward by `seconds` and checks every deadline, on
    /// the loop thread; returns once that is done. No test waits for a deadline.
    func advanceDeadlineClock(by seconds: Double) {
        let done = DispatchSemaphore(value: 0)
        let server = self.server
        server.loop.execute {
            server.advanceDeadlineClock(by: UInt64(seconds * 1000))
            done.signal()
        }
        done.wait()
    }
}

/// A response as a client reads it off the wire.
struct WireResponse: Sendable {
    var statusLine: String
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
    var bodyText: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

struct ClientError: Error, CustomStringConvertible {
    var description: String
}

/// A blocking loopback client that speaks raw bytes, with a receive timeout.
final class RawClient: @unchecked Sendable {
    let fd: Int32
    private var buffered: [UInt8] = []
    private(set) var sawEOF = false

    init(port: Int, host: String = "127.0.0.1", timeoutSeconds: Int = 10) throws {
        let ipv6 = host.contains(":")
        fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClientError(description: "socket: \(errno)") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let status: Int32
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET6, host, &address.sin6_addr)
            status = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, host, &address.sin_addr)
            status = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        // A throwing initializer of a class runs deinit once every property is set: deinit
        // closes the socket. Closing it here too would close whatever descriptor another
        // thread opened with the same number meanwhile.
        guard status == 0 else { throw ClientError(description: "connect: \(errno)") }
    }

    private var ownsDescriptor = true

    /// Takes over another client's socket with a longer timeout (after a read timed out, the
    /// partial state is dropped: nothing had arrived).
    init(port: Int, adopting other: RawClient, timeoutSeconds: Int = 10) throws {
        fd = other.fd
        other.ownsDescriptor = false
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { if ownsDescriptor { Glibc.close(fd) } }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw ClientError(description: "send: \(errno)") }
            offset += sent
        }
    }

    /// Half-closes the sending side.
    func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Resets the connection (RST instead of FIN).
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Reads more bytes into the buffer; false at EOF. Throws on timeout or error.
    @discardableResult
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count == 0 { sawEOF = true; return false }
        guard count > 0 else { throw ClientError(description: "recv: errno \(errno)") }
        buffered.append(contentsOf: chunk[0..<count])
        return true
    }

    private func takeLine() throws -> String? {
        while true {
            if let index = buffered.firstIndex(of: 10) {
                var line = Array(buffered[...index])
                buffered.removeFirst(index + 1)
                line.removeLast()
                if line.last == 13 { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            if try !fill() { return nil }
        }
    }

    private func take(_ count: Int) throws -> [UInt8] {
        while buffered.count < count {
            if try !fill() { throw ClientError(description: "EOF inside a body") }
        }
        defer { buffered.removeFirst(count) }
        return Array(buffered[0..<count])
    }

    /// Reads one response; `headRequest` says that no body follows whatever the headers say.
    /// Returns nil at a clean EOF before any byte.
    func readResponse(headRequest: Bool = false) throws -> WireResponse? {
        guard let statusLine = try takeLine() else { return nil }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else {
            throw ClientError(description: "bad status line \(statusLine.debugDescription)")
        }
        var headers: [(String, String)] = []
        while let line = try takeLine(), !line.isEmpty {
            let pieces = line.split(separator: ":", maxSplits: 1)
            headers.append((String(pieces[0]), pieces.count > 1 ? pieces[1].trimmingCharacters(in: .whitespaces) : ""))
        }
        var response = WireResponse(statusLine: statusLine, status: status, headers: headers, body: [])
        if headRequest || status < 200 || status == 204 || status == 304 { return response }
        if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
            while true {
                guard let sizeLine = try takeLine(), let size = Int(sizeLine, radix: 16) else {
                    throw ClientError(description: "bad chunk size line")
                }
                if size == 0 {
                    while let trailer = try takeLine(), !trailer.isEmpty {}
                    break
                }
                response.body += try take(size)
                _ = try takeLine()
            }
        } else if let length = response.header("Content-Length").flatMap({ Int($0) }) {
            response.body = try take(length)
        } else {
            while try fill() {}
            response.body = buffered
            buffered = []
        }
        return response
    }

    /// Reads until the server closes the connection; returns everything not yet consumed.
    func readToEOF() throws -> [UInt8] {
        while try fill() {}
        defer { buffered = [] }
        return buffered
    }

    /// Whether the server closed the connection (EOF) with nothing more to read.
    func isClosedByServer() -> Bool {
        guard buffered.isEmpty else { return false }
        return (try? fill()) == false
    }
}

/// Sends one request on a new connection and reads one response.
func exchange(_ port: Int, _ request: String, headRequest: Bool = false) throws -> WireResponse {
    let client = try RawClient(port: port)
    try client.send(request)
    guard let response = try client.readResponse(headRequest: headRequest) else {
        throw ClientError(description: "connection closed without a response")
    }
    return response
}

/// A file's text read with plain POSIX calls (Foundation's `String(contentsOfFile:)` leaks
/// a buffer on Linux, which LeakSanitizer reports).
func readTextFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { Glibc.close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
}
