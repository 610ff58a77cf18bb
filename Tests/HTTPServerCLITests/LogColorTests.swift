import Foundation
import Glibc
import Testing

/// The start of every ANSI escape sequence.
private let escape = "\u{1B}["

/// A pseudo-terminal: the child writes to `path` (its standard error), the test reads `master`.
/// The test keeps the terminal side open itself, so what the child wrote stays readable after
/// it exits.
private final class PseudoTerminal {
    let master: Int32
    let path: String
    private let terminal: Int32

    init() throws {
        // grantpt, unlockpt and ptsname are not in Swift's Glibc module: looked up by name.
        typealias Call = @convention(c) (Int32) -> Int32
        typealias Name = @convention(c) (Int32) -> UnsafeMutablePointer<CChar>?
        guard let grant = dlsym(nil, "grantpt"), let unlock = dlsym(nil, "unlockpt"),
              let name = dlsym(nil, "ptsname") else { throw POSIXError(.ENOSYS) }
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        guard master >= 0, unsafeBitCast(grant, to: Call.self)(master) == 0,
              unsafeBitCast(unlock, to: Call.self)(master) == 0,
              let terminalName = unsafeBitCast(name, to: Name.self)(master) else {
            throw POSIXError(.ENOTTY)
        }
        path = String(cString: terminalName)
        terminal = open(path, O_RDWR | O_NOCTTY)
        guard terminal >= 0 else { throw POSIXError(.ENOTTY) }
    }

    deinit {
        close(terminal)
        close(master)
    }

    /// Everything written so far (waits until nothing more comes for 200 ms).
    func readAvailable() -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var poller = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
        while poll(&poller, 1, 200) == 1 {
            let count = buffer.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

@Suite("http-server log colours")
struct LogColorTests {
    /// Serves a fresh directory with `environment`, asks for a file, a missing file and a
    /// target holding an escape sequence, then stops the server. Returns the serving line and
    /// standard error (read from `terminal` when given).
    private func serve(environment: [String], terminal: PseudoTerminal? = nil) throws -> (line: String, log: String) {
        let directory = try makeServedDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let child = try ChildServer(["-b", "127.0.0.1", "-d", directory, "0"], errorLog: terminal?.path,
                                    environment: environment)
        let line = child.firstLine()
        let port = try #require(servingPort(line), "\(line.debugDescription)")
        _ = try fetch(port: port, "GET /hello.txt HTTP/1.0\r\n\r\n")
        _ = try fetch(port: port, "GET /missing.txt HTTP/1.0\r\n\r\n")
        _ = try fetch(port: port, "GET /\u{1B}[31mred HTTP/1.0\r\n\r\n")
        kill(child.pid, SIGTERM)
        #expect(child.waitForExit())
        #expect(child.exitStatus == 0)
        return (line, terminal?.readAvailable() ?? child.standardError)
    }

    @Test func forceColorColoursLikePython315EvenWithoutATerminal() throws {
        let (line, log) = try serve(environment: ["FORCE_COLOR=1"])
        #expect(line.hasPrefix("\u{1B}[32mServing HTTP on 127.0.0.1 port "), "\(line.debugDescription)")
        #expect(line.contains("(\u{1B}[36mhttp://127.0.0.1:"), "\(line.debugDescription)")
        // The time in grey, the request line in cyan, the status by its class, the size in grey.
        #expect(log.contains("127.0.0.1 - - [\u{1B}[90m"), "\(log.debugDescription)")
        #expect(log.contains("\u{1B}[36m\"GET /hello.txt HTTP/1.0\"\u{1B}[0m \u{1B}[32m200\u{1B}[0m \u{1B}[90m-\u{1B}[0m"),
                "\(log.debugDescription)")
        #expect(log.contains("\u{1B}[36m\"GET /missing.txt HTTP/1.0\"\u{1B}[0m \u{1B}[33m404\u{1B}[0m"),
                "\(log.debugDescription)")
        #expect(log.contains("\u{1B}[33mcode 404, message File not found\u{1B}[0m"), "\(log.debugDescription)")
        // What the client sent is still escaped: its escape sequence never reaches the terminal.
        #expect(log.contains("\"GET /\\x1b[31mred HTTP/1.0\""), "\(log.debugDescription)")
        #expect(!log.contains("\u{1B}[31mred"), "\(log.debugDescription)")
    }

    @Test(arguments: [
        ["NO_COLOR=1", "FORCE_COLOR=1"],  // NO_COLOR wins
        [],                               // not a terminal
        ["FORCE_COLOR="],                 // set but empty: as if unset
    ])
    func plainWithoutATerminalOrWithNoColor(environment: [String]) throws {
        let (line, log) = try serve(environment: environment)
        #expect(line.hasPrefix("Serving HTTP on 127.0.0.1 port "), "\(line.debugDescription)")
        #expect(!line.contains(escape) && !log.contains(escape), "\(log.debugDescription)")
        #expect(log.contains("\"GET /hello.txt HTTP/1.0\" 200 -"), "\(log.debugDescription)")
    }

    @Test func colourWhenStandardErrorIsATerminal() throws {
        let terminal = try PseudoTerminal()
        let (line, log) = try serve(environment: [], terminal: terminal)
        #expect(!line.contains(escape))  // standard output is a pipe
        #expect(log.contains("\u{1B}[36m\"GET /hello.txt HTTP/1.0\"\u{1B}[0m \u{1B}[32m200\u{1B}[0m"),
                "\(log.debugDescription)")
    }

    @Test(arguments: [["NO_COLOR=1"], ["TERM=dumb"]])
    func plainOnATerminalWithNoColorOrADumbTerminal(environment: [String]) throws {
        let terminal = try PseudoTerminal()
        let (_, log) = try serve(environment: environment, terminal: terminal)
        #expect(log.contains("\"GET /hello.txt HTTP/1.0\" 200 -"), "\(log.debugDescription)")
        #expect(!log.contains(escape), "\(log.debugDescription)")
    }
}
