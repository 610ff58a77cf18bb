import Foundation
import Glibc
import Testing

/// The `http-server` binary next to this test bundle (the test target depends on it).
private let binary: URL = {
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return executable.deletingLastPathComponent().appendingPathComponent("http-server")
}()

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which Swift's Glibc module does
/// not export: asks the spawn to close every descriptor from `lowest` up.
func closeFrom(_ actions: inout posix_spawn_file_actions_t, _ lowest: Int32) {
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np")
    precondition(symbol != nil, "glibc 2.34 or later is needed to spawn a clean child")
    _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, lowest)
}

/// A running `http-server` child process, with its standard output and error on pipes.
///
/// Spawned with `posix_spawn` rather than Foundation's `Process`, whose objects stay reachable
/// for ever on Linux (which LeakSanitizer reports).
final class ChildServer {
    let pid: pid_t
    private let output: Int32
    private let errors: Int32
    /// The raw `waitpid` status once the child has exited.
    private(set) var status: Int32?

    /// `errorLog`: a file for standard error instead of a pipe (a server that logs much
    /// would fill the pipe and block). `environment`: the child's whole environment, as
    /// `NAME=value` strings (none by default).
    init(_ arguments: [String], errorLog: String? = nil, environment: [String] = []) throws {
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else { throw POSIXError(.EMFILE) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        if let errorLog {
            posix_spawn_file_actions_addopen(&actions, 2, errorLog, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        } else {
            posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        }
        // Nothing else crosses over: the tests running beside this one hold sockets and pipes
        // whose closing they watch for, and a copy in the child would keep them open.
        closeFrom(&actions, 3)
        let argv = ([binary.path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, binary.path, &actions, nil, argv, envp)
        close(outPipe[1])
        close(errPipe[1])
        guard spawned == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .ENOENT)
        }
        self.pid = pid
        output = outPipe[0]
        errors = errPipe[0]
    }

    deinit {
        if status == nil {
            kill(pid, SIGKILL)
            var raw: Int32 = 0
            waitpid(pid, &raw, 0)
        }
        close(output)
        close(errors)
    }

    /// Reads standard output up to the first newline.
    func firstLine() -> String {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(output, &byte, 1) == 1, byte != 10 { bytes.append(byte) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads the next line of standard output (without its newline); nil when none comes
    /// within `seconds` or the output ends first.
    func nextLine(seconds: Double = 10) -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        var bytes: [UInt8] = []
        var poller = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
        while true {
            let left = Int32(max(deadline.timeIntervalSinceNow * 1000, 0))
            guard poll(&poller, 1, left) == 1 else { return nil }
            var byte: UInt8 = 0
            guard read(output, &byte, 1) == 1 else { return nil }
            if byte == 10 { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }

    /// Waits for the process to exit (at most `seconds`), killing it if it does not.
    func waitForExit(seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var raw: Int32 = 0
        while Date() < deadline {
            if waitpid(pid, &raw, WNOHANG) == pid {
                status = raw
                return true
            }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &raw, 0)
        status = raw
        return false
    }

    /// Whether the child exited by itself (not killed by a signal).
    var exitedNormally: Bool { status.map { $0 & 0x7f == 0 } ?? false }
    /// The child's exit status.
    var exitStatus: Int32? { status.map { ($0 >> 8) & 0xff } }

    private func readAll(_ descriptor: Int32) -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Everything on standard error (call after the child exited).
    var standardError: String { readAll(errors) }
    /// The rest of standard output (call after the child exited).
    var standardOutputRest: String { readAll(output) }
}

/// A socket connected to `port` on 127.0.0.1, with a 10 s receive timeout and, when given, a
/// receive buffer of `receiveBuffer` bytes (set before connecting, so that it holds).
func connectLoopback(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    if var size = receiveBuffer {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else {
        close(fd)
        throw POSIXError(.ECONNREFUSED)
    }
    return fd
}

/// Sends one HTTP/1.0 request over loopback and returns everything the server sends back.
func fetch(port: Int, _ request: String) throws -> String {
    let fd = try connectLoopback(port: port)
    defer { close(fd) }
    _ = Array(request.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { break }
        received += buffer[0..<count]
    }
    return String(decoding: received, as: UTF8.self)
}

/// A fresh directory to serve: `hello.txt`, `notes.unknownext` and an empty `sub/`.
func makeServedDirectory() throws -> String {
    let directory = NSTemporaryDirectory() + "http-server-cli-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: directory + "/sub", withIntermediateDirectories: true)
    try "from the CLI\n".write(toFile: directory + "/hello.txt", atomically: true, encoding: .utf8)
    try "notes\n".write(toFile: directory + "/notes.unknownext", atomically: true, encoding: .utf8)
    return directory
}

/// A file's text, read with plain POSIX calls (Foundation's `String(contentsOfFile:)` leaks
/// a buffer on Linux, which LeakSanitizer reports); nil when it cannot be opened.
func contents(of path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { break }
        bytes += chunk[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The port in the `Serving HTTP on … port N …` line.
func servingPort(_ line: String) -> Int? {
    line.firstMatch(of: #/ port (\d+) /#).flatMap { Int($0.1) }
}

@Suite("http-server command")
struct HTTPServerCLITests {
    @Test func servesADirectoryPrintsTheServingLineAndExitsZeroOnSIGTERM() throws {
        let directory = NSTemporaryDirectory() + "http-server-cli-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "from the CLI\n".write(toFile: directory + "/hello.txt", atomically: true, encoding: .utf8)

        let child = try ChildServer(["-b", "127.0.0.1", "-d", directory, "0"])
        let line = child.firstLine()
        let pattern = /Serving HTTP on 127\.0\.0\.1 port (\d+) \(http:\/\/127\.0\.0\.1:(\d+)\/\) \.\.\./
        let match = try #require(line.wholeMatch(of: pattern), "\(line)")
        let port = try #require(Int(match.1))
        #expect(port > 0 && match.1 == match.2)

        let response = try fetch(port: port, "GET /hello.txt HTTP/1.0\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(response.contains("Server: SimpleHTTP/0.6 Swift/"))
        #expect(response.hasSuffix("\r\n\r\nfrom the CLI\n"))
        #expect(try fetch(port: port, "GET /../etc/passwd HTTP/1.0\r\n\r\n").hasPrefix("HTTP/1.1 404"))

        kill(child.pid, SIGTERM)
        #expect(child.waitForExit())
        #expect(child.exitedNormally)
        #expect(child.exitStatus == 0)
        let log = child.standardError
        #expect(log.contains("\"GET /hello.txt HTTP/1.0\" 200 -"), "\(log)")
    }

    /// The access log is written in batches (one write per loop turn); the lines stay
    /// Python's, whole and in order, and none is lost when the server stops.
    @Test func pipelinedRequestsLogTheirLinesWholeAndInOrder() throws {
        let directory = try makeServedDirectory()
        let log = directory + ".log"
        defer {
            try? FileManager.default.removeItem(atPath: directory)
            unlink(log)
        }
        let child = try ChildServer(["-b", "127.0.0.1", "-d", directory, "0"], errorLog: log)
        let port = try #require(servingPort(child.firstLine()))
        let count = 300
        let requests = (0..<count).map {
            "GET /hello.txt?\($0) HTTP/1.1\r\nHost: a\r\n\($0 == count - 1 ? "Connection: close\r\n" : "")\r\n"
        }
        let response = try fetch(port: port, requests.joined())
        #expect(response.components(separatedBy: "HTTP/1.1 200 OK\r\n").count == count + 1)
        kill(child.pid, SIGTERM)
        #expect(child.waitForExit())
        #expect(child.exitStatus == 0)
        let lines = try #require(contents(of: log)).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == count + 1 && lines.last == "", "\(lines.count) lines")
        let pattern = /127\.0\.0\.1 - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4} \d{2}:\d{2}:\d{2}\] "GET \/hello\.txt\?(\d+) HTTP\/1\.1" 200 -/
        let order = lines.dropLast().map { $0.wholeMatch(of: pattern).flatMap { Int($0.1) } }
        #expect(order == Array(0..<count), "\(lines.prefix(3))")
    }

    @Test func headersFromTheCommandLineGoOnEveryResponse() throws {
        let directory = try makeServedDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let child = try ChildServer(["-H", "Access-Control-Allow-Origin", "*", "-H", "X-Extra", "one",
                                     "--header", "X-Extra", "two", "-b", "127.0.0.1", "-d", directory, "0"])
        let port = try #require(servingPort(child.firstLine()))
        for (target, status) in [("/hello.txt", 200), ("/", 200), ("/sub", 301), ("/missing.txt", 404)] {
            let response = try fetch(port: port, "GET \(target) HTTP/1.0\r\n\r\n")
            let head = try #require(response.firstRange(of: "\r\n\r\n").map { response[..<$0.lowerBound] })
            #expect(head.hasPrefix("HTTP/1.1 \(status) "), "\(target): \(head)")
            #expect((head + "\r\n").contains("\r\nAccess-Control-Allow-Origin: *\r\nX-Extra: one\r\nX-Extra: two\r\n"),
                    "\(target): \(head)")
        }
        kill(child.pid, SIGTERM)
        #expect(child.waitForExit())
    }

    @Test func contentTypeSetsTheTypeOfUnknownExtensionsOnly() throws {
        let directory = try makeServedDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let child = try ChildServer(["--content-type", "text/plain; charset=utf-8", "-b", "127.0.0.1",
                                     "-d", directory, "0"])
        let port = try #require(servingPort(child.firstLine()))
        let unknown = try fetch(port: port, "GET /notes.unknownext HTTP/1.0\r\n\r\n")
        #expect(unknown.contains("\r\nContent-type: text/plain; charset=utf-8\r\n"), "\(unknown)")
        let known = try fetch(port: port, "GET /hello.txt HTTP/1.0\r\n\r\n")
        #expect(known.contains("\r\nContent-type: text/plain\r\n"), "\(known)")
        kill(child.pid, SIGTERM)
        #expect(child.waitForExit())

        let plain = try ChildServer(["-b", "127.0.0.1", "-d", directory, "0"])
        let plainPort = try #require(servingPort(plain.firstLine()))
        let octets = try fetch(port: plainPort, "GET /notes.unknownext HTTP/1.0\r\n\r\n")
        #expect(octets.contains("\r\nContent-type: application/octet-stream\r\n"), "\(octets)")
        kill(plain.pid, SIGTERM)
        #expect(plain.waitForExit())
    }

    @Test func helpDescribesTheFlagsAndTheLoopbackDefault() throws {
        let child = try ChildServer(["--help"])
        #expect(child.waitForExit())
        #expect(child.exitStatus == 0)
        let help = child.standardOutputRest
        for flag in ["--bind", "--directory", "--protocol", "--header NAME VALUE", "--content-type TYPE",
                     "port", "default: 8000", "default: 127.0.0.1"] {
            #expect(help.contains(flag), "\(flag)")
        }
    }

    @Test func badArgumentsExitWithStatus2() throws {
        for arguments in [["--nope"], ["notaport"], ["-p", "HTTP/9"], ["-d", "/nonexistent/dir"], ["-b"],
                          ["-H", "X-Only-A-Name"], ["-H", "Bad Name", "v"], ["-H", "X-Split", "a\r\nInjected: 1"],
                          ["--header=X-A", "b"], ["--content-type", ""], ["--content-type"]] {
            let child = try ChildServer(arguments)
            #expect(child.waitForExit())
            #expect(child.exitStatus == 2, "\(arguments)")
            #expect(child.standardError.contains("usage: http-server"), "\(arguments)")
        }
    }
}
