import Foundation
import Glibc
import Testing
@testable import BaseHTTPServer
import UVLoop

/// A fresh directory per test (these tests change files while the server serves them).
final class ScratchDirectory: @unchecked Sendable {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "static-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` to `name` (relative; raw bytes, so a name need not be UTF-8) in place.
    func write(_ name: [UInt8], _ bytes: [UInt8]) {
        let fd = open((Array(path.utf8) + [UInt8(ascii: "/")] + name).map { CChar(bitPattern: $0) } + [0],
                      O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0, "open: \(errno)")
        bytes.withUnsafeBytes { precondition(Glibc.write(fd, $0.baseAddress, $0.count) == $0.count) }
        close(fd)
    }

    func write(_ name: String, _ text: String) { write(Array(name.utf8), Array(text.utf8)) }

    /// Replaces `name` by a new file (a new inode), as an editor that saves by renaming does.
    func replace(_ name: String, _ text: String) {
        write(".new", text)
        precondition(rename(path + "/.new", path + "/" + name) == 0)
    }

    func makeDirectory(_ name: [UInt8]) {
        let full = (Array(path.utf8) + [UInt8(ascii: "/")] + name).map { CChar(bitPattern: $0) } + [0]
        precondition(mkdir(full, 0o755) == 0)
    }

    /// Serves the directory on port 0 with `configure` applied.
    func serve(configure: (inout HTTPServer.Configuration) -> Void = { _ in }) throws -> RunningServer {
        RunningServer(server: try DirectoryHTTPServer(("127.0.0.1", 0), QuietFileHandler.self, directory: path),
                      configure: configure)
    }
}

@Suite("Static files: validators, the open-file cache, names, zero copy")
struct StaticFileTests {
    private func get(_ running: RunningServer, _ target: String, _ headers: String = "") throws -> WireResponse {
        try exchange(running.port, "GET \(target) HTTP/1.1\r\nHost: x\r\n\(headers)\r\n")
    }

    @Test func filesCarryAnETagThatIfNoneMatchRevalidates() throws {
        let scratch = ScratchDirectory()
        scratch.write("a.txt", "first")
        let running = try scratch.serve()
        defer { running.stop() }
        let first = try get(running, "/a.txt")
        let etag = try #require(first.header("ETag"))
        #expect(etag.hasPrefix("\"") && etag.hasSuffix("\"") && etag.count > 4)
        #expect(try get(running, "/a.txt").header("ETag") == etag, "the same version keeps its tag")

        let notModified = try get(running, "/a.txt", "If-None-Match: \(etag)\r\n")
        #expect(notModified.status == 304)
        #expect(notModified.header("ETag") == etag)
        #expect(notModified.body.isEmpty)
        #expect(try get(running, "/a.txt", "If-None-Match: \"other\", W/\(etag)\r\n").status == 304,
                "If-None-Match compares weakly, in a list")
        #expect(try get(running, "/a.txt", "If-None-Match: *\r\n").status == 304)
        #expect(try get(running, "/a.txt", "If-None-Match: \"other\"\r\n").status == 200)
        // If-None-Match wins over If-Modified-Since (RFC 9110 section 13.2.2).
        let mismatch = try get(running, "/a.txt",
                               "If-None-Match: \"other\"\r\nIf-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n")
        #expect(mismatch.status == 200)
        #expect(mismatch.bodyText == "first")

        // An edit in place that keeps the size still changes the tag (nanoseconds count).
        var info = stat()
        stat(scratch.path + "/a.txt", &info)
        scratch.write("a.txt", "FIRST")
        var times = [timespec(tv_sec: info.st_mtim.tv_sec, tv_nsec: 0),
                     timespec(tv_sec: info.st_mtim.tv_sec, tv_nsec: (info.st_mtim.tv_nsec + 1) % 1_000_000_000)]
        utimensat(AT_FDCWD, scratch.path + "/a.txt", &times, 0)
        let edited = try get(running, "/a.txt", "If-None-Match: \(etag)\r\n")
        #expect(edited.status == 200)
        #expect(edited.bodyText == "FIRST")
        #expect(edited.header("ETag") != etag)
    }

    @Test func ifMatchAndIfUnmodifiedSinceFailWith412() throws {
        let scratch = ScratchDirectory()
        scratch.write("a.txt", "body")
        let running = try scratch.serve()
        defer { running.stop() }
        let etag = try #require(try get(running, "/a.txt").header("ETag"))
        #expect(try get(running, "/a.txt", "If-Match: \(etag)\r\n").status == 200)
        #expect(try get(running, "/a.txt", "If-Match: *\r\n").status == 200)
        let failed = try get(running, "/a.txt", "If-Match: \"stale\"\r\n")
        #expect(failed.status == 412)
        #expect(failed.body.isEmpty)
        #expect(try get(running, "/a.txt", "If-Match: W/\(etag)\r\n").status == 412,
                "If-Match compares strongly")
        #expect(try get(running, "/a.txt", "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n").status == 412)
        #expect(try get(running, "/a.txt", "If-Unmodified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n").status == 200)
    }

    @Test func ifRangeWithAnETagSendsTheRangeOnlyForThatVersion() throws {
        let scratch = ScratchDirectory()
        scratch.write("a.txt", "0123456789")
        let running = try scratch.serve()
        defer { running.stop() }
        let first = try get(running, "/a.txt")
        let etag = try #require(first.header("ETag"))
        let lastModified = try #require(first.header("Last-Modified"))
        let current = try get(running, "/a.txt", "Range: bytes=2-4\r\nIf-Range: \(etag)\r\n")
        #expect(current.status == 206)
        #expect(current.bodyText == "234")
        let byDate = try get(running, "/a.txt", "Range: bytes=2-4\r\nIf-Range: \(lastModified)\r\n")
        #expect(byDate.status == 206)
        let stale = try get(running, "/a.txt", "Range: bytes=2-4\r\nIf-Range: \"stale\"\r\n")
        #expect(stale.status == 200)
        #expect(stale.bodyText == "0123456789")
        let weak = try get(running, "/a.txt", "Range: bytes=2-4\r\nIf-Range: W/\(etag)\r\n")
        #expect(weak.status == 200, "If-Range needs a strong match")
    }

    @Test func conditionalAndRangeFieldsAreFoundInAnyCaseAmongOtherFields() throws {
        let scratch = ScratchDirectory()
        scratch.write("a.txt", "0123456789")
        let running = try scratch.serve()
        defer { running.stop() }
        let etag = try #require(try get(running, "/a.txt").header("ETag"))
        let other = "X-Other: 1\r\nAccept: */*\r\n"
        #expect(try get(running, "/a.txt", other + "if-none-match: \(etag)\r\n").status == 304)
        #expect(try get(running, "/a.txt", other + "iF-mOdIfIeD-sInCe: Fri, 01 Jan 2100 00:00:00 GMT\r\n").status == 304)
        #expect(try get(running, "/a.txt", other + "IF-MATCH: \"stale\"\r\n").status == 412)
        #expect(try get(running, "/a.txt", other + "if-unmodified-since: Sun, 06 Nov 1994 08:49:37 GMT\r\n").status == 412)
        let range = try get(running, "/a.txt", other + "RANGE: bytes=2-4\r\n")
        #expect(range.status == 206)
        #expect(range.bodyText == "234")
        #expect(try get(running, "/a.txt", "range: bytes=2-4\r\n" + other + "IF-RANGE: \"stale\"\r\n").status == 200)
        #expect(try get(running, "/a.txt", other + "If-Ranges: x\r\nRanges: bytes=2-4\r\n").status == 200)
    }

    @Test func aFileEditedInPlaceIsServedWholeAtOnce() throws {
        let scratch = ScratchDirectory()
        scratch.write("page.html", "short")
        let running = try scratch.serve()
        defer { running.stop() }
        #expect(try get(running, "/page.html").bodyText == "short")
        scratch.write("page.html", "a longer version of the page")
        let grown = try get(running, "/page.html")
        #expect(grown.bodyText == "a longer version of the page")
        #expect(grown.header("Content-Length") == "28")
        scratch.write("page.html", "tiny")
        #expect(try get(running, "/page.html").bodyText == "tiny")
    }

    @Test func aFileEditedBetweenTwoRequestsOnOneConnectionIsServedNew() throws {
        let scratch = ScratchDirectory()
        scratch.write("page.html", "short")
        let running = try scratch.serve()
        defer { running.stop() }
        let client = try running.client()
        for text in ["a longer version of the page", "tiny", "x"] {
            try client.send("GET /page.html HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try #require(try client.readResponse())
            // The next request is read in a later loop turn than the status just taken.
            scratch.write("page.html", text)
            try client.send("GET /page.html HTTP/1.1\r\nHost: x\r\n\r\n")
            let response = try #require(try client.readResponse())
            #expect(response.bodyText == text)
            #expect(response.header("Content-Length") == String(text.utf8.count))
        }
    }

    /// The open-file cache keeps a file's `fstat` for the rest of the loop turn it was taken
    /// in, and only in a running loop.
    @Test func aFilesStatusIsKeptUntilTheLoopNextPolls() throws {
        let scratch = ScratchDirectory()
        scratch.write("a.txt", "abc")
        let loop = try Loop()
        defer { try? loop.close() }
        let cache = OpenFileCache(loop: loop)
        defer { cache.close() }
        let path = Array((scratch.path + "/a.txt").utf8)
        let file = OpenFile(adopting: open(scratch.path + "/a.txt", O_RDONLY))
        let entry = cache.insert(file, contentType: "text/plain", for: .bytes(path), now: 0, validity: 60_000)
        var taken = stat()
        #expect(fstat(file.descriptor, &taken) == 0)
        var seen = stat()
        cache.keep(taken, for: entry)
        #expect(!cache.status(of: entry, into: &seen), "outside a running loop nothing is kept")

        var inTheSameTurn = false
        var afterAPoll = true
        let first = LoopTimer(loop: loop)
        let second = LoopTimer(loop: loop)
        first.start(after: 0) {
            cache.keep(taken, for: entry)
            inTheSameTurn = cache.status(of: entry, into: &seen) && seen.st_size == 3
            // Due 1 ms later: the loop polls for I/O (with a timeout) before it runs.
            second.start(after: 1) {
                afterAPoll = cache.status(of: entry, into: &seen)
                loop.stop()
            }
        }
        loop.run()
        first.close()
        second.close()
        #expect(inTheSameTurn)
        #expect(!afterAPoll)
    }

    @Test func aReplacedFileIsServedFromTheOldOneAtMostForTheCacheValidity() throws {
        let scratch = ScratchDirectory()
        scratch.write("a.txt", "old")
        let running = try scratch.serve { $0.openFileCacheValidity = 1 }
        defer { running.stop() }
        #expect(try get(running, "/a.txt").bodyText == "old")
        scratch.replace("a.txt", "new!")
        #expect(try get(running, "/a.txt").bodyText == "old", "within the bound, the open file is served")
        running.advanceDeadlineClock(by: 1.001)
        #expect(try get(running, "/a.txt").bodyText == "new!")
        // A deleted file is gone once the bound has passed.
        unlink(scratch.path + "/a.txt")
        running.advanceDeadlineClock(by: 1.001)
        #expect(try get(running, "/a.txt").status == 404)
    }

    @Test func withTheCacheOffAReplacedFileIsServedAtOnce() throws {
        let scratch = ScratchDirectory()
        scratch.write("a.txt", "old")
        let running = try scratch.serve { $0.openFileCacheValidity = 0 }
        defer { running.stop() }
        #expect(try get(running, "/a.txt").bodyText == "old")
        scratch.replace("a.txt", "new!")
        #expect(try get(running, "/a.txt").bodyText == "new!")
    }

    @Test func theCacheKeepsIndexPagesAndNeverLeaksAcrossDirectories() throws {
        let scratch = ScratchDirectory()
        scratch.makeDirectory(Array("one".utf8))
        scratch.makeDirectory(Array("two".utf8))
        scratch.write("one/index.html", "<p>one</p>")
        scratch.write("two/index.html", "<p>two</p>")
        let running = try scratch.serve()
        defer { running.stop() }
        for _ in 0..<2 {
            let one = try get(running, "/one/")
            #expect(one.bodyText == "<p>one</p>")
            #expect(one.header("Content-type") == "text/html")
            #expect(try get(running, "/two/").bodyText == "<p>two</p>")
            #expect(try get(running, "/one").status == 301)
            #expect(try get(running, "/one/index.html/").status == 404)
        }
    }

    @Test func namesThatAreNotUTF8AreServedFromTheirPercentEncodedBytes() throws {
        let scratch = ScratchDirectory()
        scratch.write([0x63, 0x61, 0x66, 0xE9, 0x2E, 0x74, 0x78, 0x74], Array("latin-1 name".utf8))  // café.txt in ISO-8859-1
        scratch.makeDirectory([0x64, 0xFF])
        scratch.write([0x64, 0xFF, 0x2F, 0x69, 0x6E, 0x2E, 0x74, 0x78, 0x74], Array("inside".utf8))
        let running = try scratch.serve()
        defer { running.stop() }
        let file = try get(running, "/caf%E9.txt")
        #expect(file.status == 200)
        #expect(file.bodyText == "latin-1 name")
        #expect(file.header("Content-type") == "text/plain")
        #expect(try get(running, "/caf%e9.txt?x=1").bodyText == "latin-1 name")
        #expect(try get(running, "/d%FF/in.txt").bodyText == "inside")
        #expect(try get(running, "/d%FF").status == 301)
        let folder = try get(running, "/d%FF/")
        #expect(folder.status == 200, "a folder whose name is not UTF-8 opens")
        #expect(folder.bodyText.contains("<a href=\"in.txt\">in.txt</a>"))
        #expect(folder.bodyText.contains("Directory listing for /d\u{FFFD}/"))
        // The root's listing links both names by their bytes, and the links lead back.
        let root = try get(running, "/")
        #expect(root.bodyText.contains("href=\"caf%E9.txt\""))
        #expect(root.bodyText.contains("href=\"d%FF/\""))
        #expect(try get(running, "/caf%C3%A9.txt").status == 404, "the UTF-8 spelling is another name")
        #expect(try get(running, "/d%FF/..%2Fcaf%E9.txt").status == 404)
    }

    @Test func aFIFOIsRefusedWithoutBlockingTheServer() throws {
        let scratch = ScratchDirectory()
        mkfifo(scratch.path + "/pipe", 0o644)
        scratch.write("a.txt", "fine")
        let running = try scratch.serve()
        defer { running.stop() }
        #expect(try get(running, "/pipe").status == 404)
        #expect(try get(running, "/a.txt").bodyText == "fine")
    }

    @Test func linksInsideTheRootAreFollowedAndLinksOutAreRefused() throws {
        let scratch = ScratchDirectory()
        let outside = ScratchDirectory()
        outside.write("secret.txt", "secret")
        scratch.write("a.txt", "inside")
        scratch.makeDirectory(Array("sub".utf8))
        symlink("../a.txt", scratch.path + "/sub/relative.txt")
        symlink(scratch.path + "/a.txt", scratch.path + "/absolute.txt")  // absolute, but inside
        symlink(outside.path + "/secret.txt", scratch.path + "/out.txt")
        symlink("../" + (outside.path as NSString).lastPathComponent, scratch.path + "/outdir")
        let running = try scratch.serve()
        defer { running.stop() }
        #expect(try get(running, "/sub/relative.txt").bodyText == "inside")
        #expect(try get(running, "/absolute.txt").bodyText == "inside")
        #expect(try get(running, "/out.txt").status == 404)
        #expect(try get(running, "/outdir/secret.txt").status == 404)
        #expect(try get(running, "/outdir/").status == 404)
    }

    /// A file larger than the small-file limit goes with sendfile; a client that reads slowly
    /// (its receive buffer small) makes the socket fill and drain many times over.
    @Test func aLargeFileToASlowReaderArrivesIntact() throws {
        let scratch = ScratchDirectory()
        let size = 6 << 20
        let content = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 13) }
        scratch.write(Array("big.bin".utf8), content)
        let running = try scratch.serve()
        defer { running.stop() }
        let client = try running.client()
        var small: Int32 = 16 << 10
        setsockopt(client.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        try client.send("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=100-\r\n\r\n")
        let whole = try #require(try client.readResponse())
        #expect(whole.status == 200)
        #expect(whole.body.count == size)
        #expect(whole.body == content)
        let tail = try #require(try client.readResponse())
        #expect(tail.status == 206)
        #expect(tail.body == Array(content[100...]))
        // The connection is still good for the next request.
        try client.send("GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n")
        #expect(try client.readResponse()?.body == Array(content[0..<10]))
    }
}
