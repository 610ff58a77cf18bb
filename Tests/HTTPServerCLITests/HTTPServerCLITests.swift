import Foundation
import Glibc
import Testing

/// The `http-server` binary next to this test bundle (the test target depends on it).
private let binary: URL = {
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return executable.deletingLastPathComponent().appendingPathComponent("http-server")
}()

/// A running `http-server` child process, with its standard output and error captured.
private final class ChildServer {
    let process = Process()
    private let output = Pipe()
    private let errors = Pipe()

    init(_ arguments: [String]) throws {
        process.executableURL = binary
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = errors
        try process.run()
    }

    /// Reads standard output up to the first newline.
    func firstLine() -> String {
        var bytes: [UInt8] = []
        let handle = output.fileHandleForReading
        while true {
            let byte = handle.readData(ofLength: 1)
            guard let first = byte.first, first != 10 else { break }
            bytes.append(first)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Waits for the process to exit (at most `seconds`), killing it if it does not.
    func waitForExit(seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return false
        }
        return true
    }

    var standardError: String {
        String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    var standardOutputRest: String {
        String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }
}

/// Sends one HTTP/1.0 request over loopback and returns everything the server sends back.
private func fetch(port: Int, _ request: String) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
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
    guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
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

        child.process.terminate()  // SIGTERM
        #expect(child.waitForExit())
        #expect(child.process.terminationReason == .exit)
        #expect(child.process.terminationStatus == 0)
        let log = child.standardError
        #expect(log.contains("\"GET /hello.txt HTTP/1.0\" 200 -"), "\(log)")
    }

    @Test func sigintAlsoShutsDownGracefully() throws {
        let child = try ChildServer(["-b", "127.0.0.1", "-d", NSTemporaryDirectory(), "0"])
        _ = child.firstLine()
        kill(child.process.processIdentifier, SIGINT)
        #expect(child.waitForExit())
        #expect(child.process.terminationReason == .exit)
        #expect(child.process.terminationStatus == 0)
    }

    @Test func helpDescribesTheFlagsAndTheLoopbackDefault() throws {
        let child = try ChildServer(["--help"])
        #expect(child.waitForExit())
        #expect(child.process.terminationStatus == 0)
        let help = child.standardOutputRest
        for flag in ["--bind", "--directory", "--protocol", "port", "default: 8000", "default: 127.0.0.1"] {
            #expect(help.contains(flag), "\(flag)")
        }
    }

    @Test func badArgumentsExitWithStatus2() throws {
        for arguments in [["--nope"], ["notaport"], ["-p", "HTTP/9"], ["-d", "/nonexistent/dir"], ["-b"]] {
            let child = try ChildServer(arguments)
            #expect(child.waitForExit())
            #expect(child.process.terminationStatus == 2, "\(arguments)")
            #expect(child.standardError.contains("usage: http-server"), "\(arguments)")
        }
    }
}
