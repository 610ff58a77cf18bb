import Foundation
import Glibc
import Testing
@testable import BaseHTTPServer

/// A child process started with `posix_spawn` (Foundation's `Process` objects stay reachable
/// on Linux, which LeakSanitizer reports), its standard input and output on pipes and its
/// standard error in a file.
final class SpawnedChild {
    let pid: pid_t
    private let output: Int32
    private var input: Int32
    let errorLog: String
    private var reaped = false

    init(_ argv: [String]) throws {
        var outPipe: [Int32] = [0, 0]
        var inPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0 else { throw POSIXError(.EMFILE) }
        guard pipe(&inPipe) == 0 else {
            outPipe.forEach { close($0) }
            throw POSIXError(.EMFILE)
        }
        errorLog = NSTemporaryDirectory() + "child-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, errorLog, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // Nothing else of this process (other tests' sockets) leaks into the child.
        // (glibc 2.34's posix_spawn_file_actions_addclosefrom_np, which Glibc does not import.)
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        }
        let arguments = argv.map { strdup($0) } + [nil]
        defer { arguments.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, arguments, environ)
        close(outPipe[1])
        close(inPipe[0])
        guard spawned == 0 else {
            close(outPipe[0])
            close(inPipe[1])
            throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .ENOENT)
        }
        self.pid = pid
        output = outPipe[0]
        input = inPipe[1]
    }

    deinit {
        stop()
        close(output)
        unlink(errorLog)
    }

    /// Reads standard output up to the next newline ("" at EOF or after `seconds`).
    func readLine(timeout seconds: Double = 30) -> String {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            var ready = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let left = Int32(max(deadline.timeIntervalSinceNow, 0) * 1000)
            guard left > 0, poll(&ready, 1, left) == 1, read(output, &byte, 1) == 1, byte != 10 else { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Closes the child's standard input (its cue to finish).
    func closeInput() {
        if input >= 0 { close(input) }
        input = -1
    }

    /// Waits up to `seconds` for the child to exit, then kills it.
    func stop(waiting seconds: Double = 0) {
        closeInput()
        guard !reaped else { return }
        reaped = true
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if waitpid(pid, &status, WNOHANG) == pid { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
    }

    /// User plus system CPU time so far, in seconds (from /proc/PID/stat).
    var cpuSeconds: Double {
        guard let stat = readTextFile("/proc/\(pid)/stat"),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    var errorText: String { readTextFile(errorLog) ?? "" }
}

/// An executable built next to this test bundle (`swift build --build-tests` builds them all).
func siblingExecutable(_ name: String) -> String {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        .deletingLastPathComponent().appendingPathComponent(name).path
}

private let python3: String? = ["/usr/bin/python3", "/usr/local/bin/python3"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }

/// Opens N connections, makes one request on each, prints "ready N", then holds them all
/// until its standard input closes. It raises its own descriptor limit to the hard limit.
private let idleCrowdScript = """
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
port, count = int(sys.argv[1]), int(sys.argv[2])
held = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /crowd HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
    data = b""
    while not data.endswith(b"/crowd 0"):
        chunk = s.recv(4096)
        if not chunk:
            print("closed", i, flush=True)
            sys.exit(1)
        data += chunk
    held.append(s)
print("ready", len(held), flush=True)
sys.stdin.read()
"""

@Suite("Resource exhaustion: idle crowds, descriptor exhaustion", .serialized)
struct ResourceExhaustionTests {
    /// 10,000 idle keep-alive connections (held by a child process, so that the 20,000
    /// descriptor hard limit covers the server's 10,000 here) and one active client.
    @Test(.enabled(if: python3 != nil))
    func activeClientStaysFastBesideTenThousandIdleConnectionsAndMemoryRecovers() throws {
        raiseOpenFileLimit()
        let crowdSize = 10_000
        let running = try RunningServer(FaultHandler.self)
        defer { running.stop() }
        _ = try exchange(running.port, "GET /warm HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(waitForConnections(running) == 0)
        let baseline = try MemoryReading.now(trimmed: true)

        let started = Date()
        let crowd = try SpawnedChild([python3!, "-c", idleCrowdScript, String(running.port), String(crowdSize)])
        let ready = crowd.readLine()
        try #require(ready == "ready \(crowdSize)", "idle crowd: \(ready) \(crowd.errorText)")
        let crowdSeconds = Date().timeIntervalSince(started)
        #expect(liveConnections(running) == crowdSize + 0)
        let withCrowd = try MemoryReading.now()

        let active = try running.client()
        var latencies: [Double] = []
        for index in 0..<200 {
            let sent = Date()
            try active.send("GET /active\(index) HTTP/1.1\r\nHost: a\r\n\r\n")
            let response = try #require(try active.readResponse())
            latencies.append(Date().timeIntervalSince(sent) * 1000)
            #expect(response.bodyText == "/active\(index) 0")
        }
        latencies.sort()
        let p50 = latencies[100], p99 = latencies[197], worst = latencies[199]

        crowd.stop(waiting: 10)
        withExtendedLifetime(active) {}
        let left = waitForConnections(running, toReach: 1, within: 10)
        let after = try MemoryReading.now(trimmed: true)
        print("""
            idle crowd: \(crowdSize) connections in \(String(format: "%.1f", crowdSeconds)) s; \
            active client p50 \(String(format: "%.2f", p50)) ms, p99 \(String(format: "%.2f", p99)) ms, \
            max \(String(format: "%.2f", worst)) ms; heap \(baseline.heap) kB before, \(withCrowd.heap) kB with the crowd \
            (\((withCrowd.heap - baseline.heap) * 1024 / crowdSize) bytes per idle connection), \(after.heap) kB after; \
            \(left - 1) crowd connections left
            """)
        #expect(p99 < 50, "p99 \(p99) ms")
        #expect(left == 1)  // the active client only
        // Measured: heap +0.26 MB (plain, release, ASan), +0.55 MB (TSan); RSS -4 to +0.8 MB
        // (plain, release; TSan +13 MB). With every connection kept (tried): heap +2.2-2.7 MB,
        // which RSS did not show in release.
        expectMemoryGrowth(from: baseline, to: after, "after the idle crowd left",
                           heapBelow: 1024, rssBelow: 8 * 1024)
    }

    /// `bench-server` as a child with 64 descriptors: past EMFILE it keeps serving the
    /// connections it has, does not spin, and serves newcomers once descriptors free up.
    @Test func descriptorExhaustionInAChildServerKeepsServingAndRecovers() throws {
        let benchServer = siblingExecutable("bench-server")
        try #require(FileManager.default.isExecutableFile(atPath: benchServer), "\(benchServer) not built")
        // stdbuf: bench-server prints its address without flushing; a pipe is block-buffered.
        let child = try SpawnedChild(["/bin/sh", "-c", "ulimit -n 64 && exec stdbuf -oL \"$0\" 0 127.0.0.1", benchServer])
        defer { child.stop() }
        let line = child.readLine()
        let port = try #require(line.split(separator: ":").last.flatMap { Int($0) }, "\(line) \(child.errorText)")

        // Open keep-alive connections until the server can take no more.
        var served: [RawClient] = []
        var refused = 0
        while served.count < 100 && refused < 3 {
            let client = try RawClient(port: port, timeoutSeconds: 1)
            try? client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            if let response = try? client.readResponse(), response.status == 200 {
                served.append(client)
            } else {
                refused += 1
            }
        }
        #expect(served.count > 20 && served.count < 64, "\(served.count) served")
        #expect(refused == 3)

        // At EMFILE, with newcomers knocking every 20 ms, the server stays (nearly) idle.
        let cpuBefore = child.cpuSeconds
        let measured = Date()
        var knocks: [RawClient] = []
        while Date().timeIntervalSince(measured) < 1 {
            if let knock = try? RawClient(port: port, timeoutSeconds: 1) {
                try? knock.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                knocks.append(knock)
            }
            usleep(20_000)
        }
        let cpu = child.cpuSeconds - cpuBefore
        let wall = Date().timeIntervalSince(measured)
        knocks.removeAll()
        print("fd exhaustion: \(served.count) connections served at 64 descriptors; "
              + "CPU \(String(format: "%.3f", cpu)) s over \(String(format: "%.2f", wall)) s at EMFILE")
        #expect(cpu < 0.3, "the server used \(cpu) s of CPU in \(wall) s at EMFILE")

        // Existing connections are still served.
        for (index, client) in served.enumerated() {
            try client.send("GET /again HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(try client.readResponse()?.status == 200, "connection \(index)")
        }

        // Free half of them: newcomers are served again.
        served.removeLast(served.count / 2)
        var recovered = false
        let deadline = Date().addingTimeInterval(5)
        while !recovered && Date() < deadline {
            if let client = try? RawClient(port: port, timeoutSeconds: 1) {
                try? client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                recovered = (try? client.readResponse())??.status == 200
            }
            if !recovered { usleep(50_000) }
        }
        #expect(recovered, "no new connection served after descriptors were freed")
        let fresh = try (0..<10).map { _ in try RawClient(port: port, timeoutSeconds: 2) }
        for client in fresh {
            try client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(try client.readResponse()?.bodyText == "Hello, World!")
        }
        // (libuv's reserve-descriptor trick accepts and closes the connections it cannot keep,
        // so the refused ones see their connection closed rather than hanging in the backlog.)
        #expect(!child.errorText.contains("Fatal"), "\(child.errorText)")
    }
}
