import Glibc
import Testing
@testable import UVLoop

/// Runs `loop` until `done()` holds, failing the test after `seconds`.
func run(_ loop: Loop, seconds: UInt64 = 30, until done: () -> Bool,
         sourceLocation: SourceLocation = #_sourceLocation) {
    var timedOut = false
    let watchdog = LoopTimer(loop: loop)
    watchdog.start(after: seconds * 1000) { timedOut = true }
    while !done() && !timedOut {
        loop.runOnce()
    }
    watchdog.close()
    #expect(!timedOut, "timed out", sourceLocation: sourceLocation)
}

/// Closes `loop` and checks that libuv found no leaked handle.
func closeCleanly(_ loop: Loop, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(throws: Never.self, sourceLocation: sourceLocation) { try loop.close() }
    #expect(loop.liveConnections == 0, sourceLocation: sourceLocation)
}

/// Raises the soft open-file limit to the hard one, for tests with many sockets.
func raiseFileLimit() {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// A delegate made of closures, for tests that need one behaviour per stream.
final class StreamCallbacks<Connection: StreamConnection>: TransportDelegate {
    var onRead: (Connection, UnsafeRawBufferPointer) -> Void = { _, _ in }
    var onEOF: (Connection) -> Void = { $0.close() }
    var onFail: (Connection, UVError) -> Void = { connection, _ in connection.close() }
    var onWrite: (Connection) -> Void = { _ in }
    var onClose: (Connection) -> Void = { _ in }

    func transport(_ transport: any Transport, didRead bytes: UnsafeRawBufferPointer) {
        onRead(transport as! Connection, bytes)
    }
    func transportDidReadEOF(_ transport: any Transport) {
        onEOF(transport as! Connection)
    }
    func transport(_ transport: any Transport, didFail error: UVError) {
        onFail(transport as! Connection, error)
    }
    func transportDidWrite(_ transport: any Transport) {
        onWrite(transport as! Connection)
    }
    func transportDidClose(_ transport: any Transport) {
        onClose(transport as! Connection)
    }
}

/// The delegate the TCP tests use.
typealias Callbacks = StreamCallbacks<TCPConnection>

/// Makes a new directory `/tmp/<prefix>-XXXXXX` (`mkdtemp`); returns its path with symbolic
/// links resolved, as a process that moves there sees it.
func makeTemporaryDirectory(_ prefix: String) -> String {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(made != nil, "mkdtemp failed")
    let resolved = realpath(template, nil)!
    defer { free(resolved) }
    return String(cString: resolved)
}

/// A small deterministic generator, so failures replay.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Whether this machine can bind the IPv6 loopback address.
func hasIPv6Loopback() -> Bool {
    let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { Glibc.close(fd) }
    var address = sockaddr_in6()
    address.sin6_family = sa_family_t(AF_INET6)
    address.sin6_addr = in6addr_loopback
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
        }
    }
}

/// The descriptors this process has open (`/proc/self/fd`), each with what it links to, such
/// as `"anon_inode:[eventpoll]"` or a path.
func openDescriptors() -> [(descriptor: Int32, target: String)] {
    guard let directory = opendir("/proc/self/fd") else { return [] }
    defer { closedir(directory) }
    var found: [(descriptor: Int32, target: String)] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) {
            String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard let descriptor = Int32(name), descriptor != dirfd(directory) else { continue }
        var target = [UInt8](repeating: 0, count: 4096)
        let length = readlink("/proc/self/fd/\(name)", &target, target.count)
        guard length >= 0 else { continue }
        found.append((descriptor, String(decoding: target.prefix(length), as: UTF8.self)))
    }
    return found
}
