import Foundation
import Glibc
import Testing

/// Runs a tool (curl, python3) found on `PATH` with this process's environment; returns its
/// exit status and standard output. Standard error is dropped.
func runTool(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
    var outPipe: [Int32] = [0, 0]
    var inPipe: [Int32] = [0, 0]
    guard pipe(&outPipe) == 0, pipe(&inPipe) == 0 else { throw POSIXError(.EMFILE) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    closeFrom(&actions, 3)
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
    close(outPipe[1])
    close(inPipe[0])
    guard spawned == 0 else {
        close(outPipe[0])
        close(inPipe[1])
        throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .ENOENT)
    }
    if let input {
        _ = Array(input.utf8).withUnsafeBytes { write(inPipe[1], $0.baseAddress, $0.count) }
    }
    close(inPipe[1])
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(outPipe[0], $0.baseAddress, $0.count) }
        guard count > 0 else { break }
        bytes += buffer[0..<count]
    }
    close(outPipe[0])
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return ((status >> 8) & 0xff, String(decoding: bytes, as: UTF8.self))
}

/// A served directory (`root`, with `sub/` and a link `escape` to a sibling `outside/`) and
/// an `http-server --upload` child serving it; everything is removed at the end.
final class UploadFixture {
    let base: String
    let root: String
    let outside: String
    let child: ChildServer
    let port: Int
    let errorLog: String

    init(_ extraArguments: [String] = ["--upload"]) throws {
        base = NSTemporaryDirectory() + "upload-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        root = base + "/root"
        outside = base + "/outside"
        let files = FileManager.default
        try files.createDirectory(atPath: root + "/sub", withIntermediateDirectories: true)
        try files.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try files.createSymbolicLink(atPath: root + "/escape", withDestinationPath: "../outside")
        try "small\n".write(toFile: root + "/small.txt", atomically: true, encoding: .utf8)
        errorLog = base + "/server.log"
        child = try ChildServer(extraArguments + ["-b", "127.0.0.1", "-d", root, "0"], errorLog: errorLog)
        let line = child.firstLine()
        guard let match = line.firstMatch(of: #/port (\d+) /#), let port = Int(match.1) else {
            throw POSIXError(.EIO)
        }
        self.port = port
    }

    deinit {
        kill(child.pid, SIGTERM)
        _ = child.waitForExit()
        try? FileManager.default.removeItem(atPath: base)
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// `curl` with `arguments`, printing the status code only.
    func curlStatus(_ arguments: [String]) throws -> Int {
        let result = try runTool(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "60"] + arguments)
        return Int(result.output) ?? -result.output.count
    }

    /// Every name under `path`, recursively, relative to it.
    func names(under path: String) -> [String] {
        ((try? FileManager.default.subpathsOfDirectory(atPath: path)) ?? []).sorted()
    }

    /// Temporary upload files left anywhere in the fixture.
    var leftovers: [String] {
        names(under: base).filter { $0.contains(".upload-") }
    }

    /// Waits (polling, at most `seconds`) until no temporary upload file is left.
    func waitForNoLeftovers(seconds: Double = 10) -> [String] {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end && !leftovers.isEmpty { usleep(10_000) }
        return leftovers
    }

    /// The server's resident set now and at its peak, in KiB (`/proc/PID/status`).
    func memory() -> (rss: Int, peak: Int) {
        let status = (try? String(contentsOfFile: "/proc/\(child.pid)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int {
            status.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") } ?? 0
        }
        return (field("VmRSS"), field("VmHWM"))
    }
}

/// A file of `count` random bytes (from `/dev/urandom`, through the shell).
func makeFile(_ path: String, _ count: Int) throws {
    guard try runTool(["sh", "-c", "head -c \(count) /dev/urandom > \"$0\"", path]).status == 0 else {
        throw POSIXError(.EIO)
    }
}

func sameContents(_ a: String, _ b: String) -> Bool {
    FileManager.default.contentsEqual(atPath: a, andPath: b)
}

/// Whether AddressSanitizer or ThreadSanitizer is in the process (and in the server, built alike).
private let underSanitizer = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil
    || dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil

/// Free bytes where the tests write.
private func freeSpace() -> Int {
    var info = statvfs()
    guard statvfs(NSTemporaryDirectory(), &info) == 0 else { return 0 }
    return Int(info.f_bavail) * Int(info.f_frsize)
}

@Suite("http-server --upload")
struct UploadTests {
    @Test func putStoresRenamesAndRefusesWhatItShould() throws {
        let fixture = try UploadFixture()
        let source = fixture.base + "/source.bin"
        try makeFile(source, 3 << 20)  // curl sends Expect: 100-continue above 1 MiB
        #expect(try fixture.curlStatus(["-T", source, fixture.url + "/sub/a.bin"]) == 201)
        #expect(sameContents(source, fixture.root + "/sub/a.bin"))
        #expect(try fixture.curlStatus(["-H", "Expect:", "-T", source, fixture.url + "/sub/a.bin"]) == 204)
        #expect(sameContents(source, fixture.root + "/sub/a.bin"))
        #expect(try fixture.curlStatus(["-H", "Transfer-Encoding: chunked", "-T", source, fixture.url + "/c.bin"]) == 201)
        #expect(sameContents(source, fixture.root + "/c.bin"))
        #expect(try fixture.curlStatus(["-T", source, fixture.url + "/missing/x.bin"]) == 409)
        // (`curl -T` would add the file's name to a URL ending in `/`.)
        #expect(try fixture.curlStatus(["-X", "PUT", "--data-binary", "@\(source)", fixture.url + "/sub/"]) == 405)
        #expect(try fixture.curlStatus(["-T", source, fixture.url + "/sub"]) == 405)
        // The upload is served back.
        let back = try runTool(["curl", "-s", fixture.url + "/sub/a.bin", "-o", fixture.base + "/back.bin"])
        #expect(back.status == 0 && sameContents(source, fixture.base + "/back.bin"))
        // A replacement is what the next GET gets, even though the old file was just served
        // (and kept open): a PUT empties the open-file cache.
        let other = fixture.base + "/other.bin"
        try makeFile(other, 100_000)
        #expect(try fixture.curlStatus(["-T", other, fixture.url + "/sub/a.bin"]) == 204)
        let again = try runTool(["curl", "-s", fixture.url + "/sub/a.bin", "-o", fixture.base + "/again.bin"])
        #expect(again.status == 0 && sameContents(other, fixture.base + "/again.bin"))
        #expect(fixture.leftovers.isEmpty)
        #expect(fixture.names(under: fixture.root) == ["c.bin", "escape", "small.txt", "sub", "sub/a.bin"])
    }

    @Test func pathsThatLeaveTheDirectoryAreRefusedAndNothingIsWrittenOutside() throws {
        let fixture = try UploadFixture()
        let source = fixture.base + "/source.bin"
        try makeFile(source, 1000)
        for target in ["/escape/x", "/../outside/x", "/sub/../../outside/x", "/%2e%2e/outside/x",
                       "/sub/%2e%2e/%2e%2e/outside/x", "/..%2foutside%2fx", "/x%00.txt", "/sub%2f..%2f..%2foutside%2fx",
                       "/..%5coutside%5cx"] {
            let status = try fixture.curlStatus(["--path-as-is", "-T", source, fixture.url + target])
            #expect(status == 403 || status == 409 || status == 404, "\(target): \(status)")
        }
        let form = try fixture.curlStatus(["-F", "file=@\(source);filename=../evil", fixture.url + "/sub/"])
        #expect(form == 400)
        let backslash = try fixture.curlStatus(["-F", "file=@\(source);filename=..\\\\evil", fixture.url + "/sub/"])
        #expect(backslash == 400)
        #expect(try fixture.curlStatus(["-F", "file=@\(source)", fixture.url + "/escape/"]) == 403)
        #expect(fixture.names(under: fixture.outside).isEmpty)
        #expect(fixture.names(under: fixture.root) == ["escape", "small.txt", "sub"])
        #expect(fixture.waitForNoLeftovers().isEmpty)
    }

    @Test func multipartFormsSaveEachFileWithoutReplacingAny() throws {
        let fixture = try UploadFixture()
        let first = fixture.base + "/notes.txt", second = fixture.base + "/photo.jpg"
        try makeFile(first, 200_000)
        try makeFile(second, 70_000)
        let page = try runTool(["curl", "-s", "-F", "file=@\(first)", "-F", "file=@\(second)", "-F", "comment=hello",
                                fixture.url + "/sub/"])
        #expect(page.output.contains("<a href=\"notes.txt\">notes.txt</a>"), "\(page.output)")
        #expect(sameContents(first, fixture.root + "/sub/notes.txt"))
        #expect(sameContents(second, fixture.root + "/sub/photo.jpg"))
        // The same name again: a new name, the first file untouched.
        let again = try runTool(["curl", "-s", "-w", "%{http_code}", "-F", "file=@\(second);filename=notes.txt", fixture.url + "/sub/"])
        #expect(again.output.hasSuffix("201"))
        #expect(again.output.contains("notes-1.txt"))
        #expect(sameContents(first, fixture.root + "/sub/notes.txt"))
        #expect(sameContents(second, fixture.root + "/sub/notes-1.txt"))
        // Not a form, or not to a directory.
        #expect(try fixture.curlStatus(["-H", "Content-Type: text/plain", "--data-binary", "@\(first)", fixture.url + "/sub/"]) == 415)
        #expect(try fixture.curlStatus(["-F", "file=@\(first)", fixture.url + "/small.txt"]) == 405)
        // The listing offers the form.
        let listing = try runTool(["curl", "-s", fixture.url + "/sub/"])
        #expect(listing.output.contains("<form method=\"post\" enctype=\"multipart/form-data\">"))
        #expect(fixture.leftovers.isEmpty)
    }

    @Test func anUploadTheClientAbandonsLeavesNothing() throws {
        let fixture = try UploadFixture()
        let script = """
            import socket, sys
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
            s.sendall(b"PUT /sub/partial.bin HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 50000000\\r\\n\\r\\n")
            s.sendall(b"x" * 3000000)
            s.close()
            """
        #expect(try runTool(["python3", "-c", script, String(fixture.port)]).status == 0)
        let form = """
            import socket, sys
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
            head = b"POST /sub/ HTTP/1.1\\r\\nHost: a\\r\\nContent-Type: multipart/form-data; boundary=XyZ\\r\\nContent-Length: 50000000\\r\\n\\r\\n"
            part = b"--XyZ\\r\\nContent-Disposition: form-data; name=\\"f\\"; filename=\\"half.bin\\"\\r\\n\\r\\n"
            s.sendall(head + part + b"y" * 3000000)
            s.close()
            """
        #expect(try runTool(["python3", "-c", form, String(fixture.port)]).status == 0)
        #expect(fixture.waitForNoLeftovers().isEmpty)
        #expect(fixture.names(under: fixture.root + "/sub").isEmpty)
        let log = (try? String(contentsOfFile: fixture.errorLog, encoding: .utf8)) ?? ""
        #expect(log.contains("abandoned: clientGone"), "\(log)")
    }

    @Test func theUploadSizeLimitAnswers413AndLeavesNothing() throws {
        let fixture = try UploadFixture(["--upload", "--max-upload-size", "100000"])
        let source = fixture.base + "/big.bin"
        try makeFile(source, 300_000)
        #expect(try fixture.curlStatus(["-T", source, fixture.url + "/sub/big.bin"]) == 413)
        #expect(try fixture.curlStatus(["-H", "Transfer-Encoding: chunked", "-T", source, fixture.url + "/sub/big.bin"]) == 413)
        #expect(try fixture.curlStatus(["-F", "file=@\(source)", fixture.url + "/sub/"]) == 413)
        let small = fixture.base + "/small.bin"
        try makeFile(small, 99_000)
        #expect(try fixture.curlStatus(["-T", small, fixture.url + "/sub/small.bin"]) == 201)
        #expect(fixture.waitForNoLeftovers().isEmpty)
        #expect(fixture.names(under: fixture.root + "/sub") == ["small.bin"])
    }

    @Test func aFullDiskAnswers507AndLeavesNothing() throws {
        let fixture = try UploadFixture()
        // The server's file-size limit stands in for a full disk: writes past it fail (EFBIG,
        // with SIGXFSZ ignored) as they would with ENOSPC, and get the same answer.
        #expect(try runTool(["prlimit", "--pid", String(fixture.child.pid), "--fsize=1000000"]).status == 0)
        let source = fixture.base + "/source.bin"
        try makeFile(source, 3 << 20)
        #expect(try fixture.curlStatus(["-T", source, fixture.url + "/sub/big.bin"]) == 507)
        #expect(try fixture.curlStatus(["-F", "file=@\(source)", fixture.url + "/sub/"]) == 507)
        #expect(fixture.waitForNoLeftovers().isEmpty)
        #expect(fixture.names(under: fixture.root + "/sub").isEmpty)
        #expect(try fixture.curlStatus([fixture.url + "/small.txt"]) == 200)  // still serving
    }

    @Test func withoutUploadPutAndPostAre501AndTheListingHasNoForm() throws {
        let fixture = try UploadFixture([])
        let source = fixture.base + "/source.bin"
        try makeFile(source, 1000)
        #expect(try fixture.curlStatus(["-T", source, fixture.url + "/sub/x"]) == 501)
        #expect(try fixture.curlStatus(["-F", "file=@\(source)", fixture.url + "/sub/"]) == 501)
        #expect(!(try runTool(["curl", "-s", fixture.url + "/sub/"]).output.contains("<form")))
        #expect(fixture.names(under: fixture.root + "/sub").isEmpty)
    }

    /// 20 curl processes upload 20 MiB each at once while one client fetches a small file over
    /// and over: each small GET is answered within 200 ms. (The uploads are separate processes
    /// so that the latencies measured are the server's, not a client's threads waiting for
    /// their turn.) Its name says "Alone": it runs in the serial pass, where no other test
    /// competes for the two cores.
    @Test func smallRequestsStayFastBesideTwentyConcurrentUploadsAlone() throws {
        let fixture = try UploadFixture()
        let source = fixture.base + "/twenty.bin"
        try makeFile(source, 20 << 20)
        let script = """
            import http.client, subprocess, sys, time
            port, source = int(sys.argv[1]), sys.argv[2]
            uploads = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-T", source,
                                         "http://127.0.0.1:%d/sub/u%d.bin" % (port, i)], stdout=subprocess.PIPE)
                       for i in range(20)]
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            latencies = []
            while any(u.poll() is None for u in uploads) or not latencies:
                t = time.monotonic()
                c.request("GET", "/small.txt")
                r = c.getresponse(); r.read()
                latencies.append(time.monotonic() - t)
            statuses = sorted(set(u.communicate()[0].decode() for u in uploads))
            print(statuses, len(latencies), "%.1f" % (max(latencies) * 1000))
            """
        let result = try runTool(["python3", "-c", script, String(fixture.port), source])
        print("twenty uploads: statuses, small GETs, slowest ms: \(result.output)", terminator: "")
        #expect(result.output.hasPrefix("['201'] "), "\(result.output)")
        let worst = Double(result.output.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? .infinity
        #expect(worst < 200, "slowest small GET \(worst) ms beside the uploads (\(result.output))")
        let stored = fixture.names(under: fixture.root + "/sub")
        #expect(stored.count == 20)
        #expect(stored.allSatisfy { sameContents(source, fixture.root + "/sub/" + $0) })
    }

    /// A 2 GiB PUT and a 300 MiB form upload: the server's resident memory grows by less than
    /// 64 MiB (not asserted under a sanitizer, whose allocator quarantines freed memory).
    @Test(.enabled(if: freeSpace() > 3 << 30, "needs 3 GiB of free disk"))
    func aTwoGiBPutAndA300MiBFormKeepTheServersMemoryFlat() throws {
        let fixture = try UploadFixture()
        let before = fixture.memory()
        let script = """
            import hashlib, socket, sys
            port, size, form = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "form"
            piece = bytes(range(256)) * 1024
            s = socket.create_connection(("127.0.0.1", port))
            if form:
                start = b"--B0undary\\r\\nContent-Disposition: form-data; name=\\"f\\"; filename=\\"form.bin\\"\\r\\n\\r\\n"
                end = b"\\r\\n--B0undary--\\r\\n"
                s.sendall(b"POST /sub/ HTTP/1.1\\r\\nHost: a\\r\\nContent-Type: multipart/form-data; boundary=B0undary\\r\\nContent-Length: %d\\r\\n\\r\\n" % (len(start) + size + len(end)) + start)
            else:
                s.sendall(b"PUT /sub/put.bin HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: %d\\r\\n\\r\\n" % size)
            digest = hashlib.md5()
            for _ in range(size // len(piece)):
                s.sendall(piece); digest.update(piece)
            if form: s.sendall(end)
            print(s.recv(100).split(b"\\r\\n")[0].decode(), digest.hexdigest())
            """
        let put = try runTool(["python3", "-c", script, String(fixture.port), String(2 << 30), "put"])
        let form = try runTool(["python3", "-c", script, String(fixture.port), String(300 << 20), "form"])
        let after = fixture.memory()
        #expect(put.output.hasPrefix("HTTP/1.1 201 "), "\(put.output)")
        #expect(form.output.hasPrefix("HTTP/1.1 201 "), "\(form.output)")
        let md5 = { (path: String) in try runTool(["md5sum", path]).output.split(separator: " ").first.map(String.init) }
        #expect(try md5(fixture.root + "/sub/put.bin") == put.output.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(try md5(fixture.root + "/sub/form.bin") == form.output.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines))
        print("upload memory: RSS \(before.rss) KiB before, peak \(after.peak) KiB after 2 GiB + 300 MiB")
        if !underSanitizer {
            #expect(after.peak - before.rss < 64 << 10, "RSS \(before.rss) KiB → peak \(after.peak) KiB")
        }
        #expect(fixture.leftovers.isEmpty)
    }
}
