import Foundation
import Glibc
import Testing
@testable import BaseHTTPServer

/// A directory tree to serve, made once per test process, with a sibling directory outside it
/// holding a secret that no request may reach.
final class FileFixture: Sendable {
    static let shared = FileFixture()

    let base: String
    let root: String
    let secret = "TOP-SECRET-\(getpid())"
    let medium: [UInt8] = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 9) }
    let data: [UInt8] = (0..<1000).map { UInt8(truncatingIfNeeded: $0) }

    private init() {
        base = NSTemporaryDirectory() + "simplehttp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        root = base + "/root"
        let fm = FileManager.default
        for directory in ["root/dir", "root/site", "root/evil.example/x", "root/linkindex", "outside"] {
            try! fm.createDirectory(atPath: base + "/" + directory, withIntermediateDirectories: true)
        }
        func file(_ path: String, _ bytes: [UInt8]) {
            _ = fm.createFile(atPath: base + "/" + path, contents: Data(bytes))
        }
        file("root/hello.txt", Array("Hello, file!\n".utf8))
        file("root/page.html", Array("<p>page</p>".utf8))
        file("root/archive.tar.gz", [0x1f, 0x8b])
        file("root/<script>.txt", Array("x".utf8))
        file("root/dir/a.txt", Array("a".utf8))
        file("root/site/index.html", Array("<h1>index</h1>".utf8))
        file("root/data.bin", data)
        file("root/notes.unknownext", Array("notes".utf8))
        file("root/README", Array("readme".utf8))
        file("root/medium.bin", medium)
        file("outside/secret.txt", Array(secret.utf8))
        symlink(base + "/outside", root + "/escape")
        symlink(base + "/outside/secret.txt", root + "/escape.txt")
        symlink(base + "/outside/secret.txt", root + "/linkindex/index.html")
        symlink("hello.txt", root + "/inside-link.txt")
        atexit { FileFixture.removeTree() }  // Tests share the tree until the process ends.
    }

    private static func removeTree() {
        try? FileManager.default.removeItem(atPath: shared.base)
    }
}

/// Serves the fixture through the class-level `directory`.
final class FixtureFileHandler: SimpleHTTPRequestHandler {
    override class var directory: String { FileFixture.shared.root }
    override func logMessage(_ message: String) {}
}

/// Serves whatever its server says, silently.
final class QuietFileHandler: SimpleHTTPRequestHandler {
    override func logMessage(_ message: String) {}
}

@Suite("SimpleHTTPRequestHandler")
struct SimpleHTTPRequestHandlerTests {
    let fixture = FileFixture.shared

    private func get(_ running: RunningServer, _ target: String, method: String = "GET",
                     headers: String = "") throws -> WireResponse {
        try exchange(running.port, "\(method) \(target) HTTP/1.1\r\nHost: x\r\n\(headers)\r\n",
                     headRequest: method == "HEAD")
    }

    @Test func eachTraversalAttemptIsAnswered404() throws {
        let running = try RunningServer(FixtureFileHandler.self)
        defer { running.stop() }
        let attempts = [
            "/../outside/secret.txt", "/dir/../../outside/secret.txt",
            "/%2e%2e/outside/secret.txt", "/%2E%2E/outside/secret.txt", "/dir/%2e%2e/%2e%2e/outside/secret.txt",
            "/..%2foutside/secret.txt", "/dir%2f..%2f..%2foutside%2fsecret.txt", "/%2f..%2f..%2foutside/secret.txt",
            "/hello.txt%00", "/hello.txt%00.html", "/dir/%00/../hello.txt",
            "/escape/secret.txt", "/escape/", "/escape.txt", "/linkindex/", "/linkindex/index.html",
            "/..%5coutside/secret.txt",
        ]
        for target in attempts {
            let response = try get(running, target)
            #expect(response.status == 404, "\(target)")
            #expect(!response.bodyText.contains(fixture.secret), "\(target)")
        }
        // A link that stays inside the root is served.
        #expect(try get(running, "/inside-link.txt").bodyText == "Hello, file!\n")
    }

    @Test func theListingEscapesNamesAndMarksDirectoriesAndLinks() throws {
        let running = try RunningServer(FixtureFileHandler.self)
        defer { running.stop() }
        let response = try get(running, "/")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "text/html; charset=utf-8")
        let page = response.bodyText
        #expect(page.contains("<a href=\"%3Cscript%3E.txt\">&lt;script&gt;.txt</a>"))
        #expect(!page.contains("<script>"))
        #expect(page.contains("<a href=\"dir/\">dir/</a>"))
        #expect(page.contains("<a href=\"escape/\">escape@</a>"))
        #expect(page.contains("<title>Directory listing for /</title>"))
        #expect(response.header("Content-Length") == String(response.body.count))
        let escaped = try get(running, "/dir/?q=%3Cb%3E")
        #expect(escaped.bodyText.contains("Directory listing for /dir/?q=&lt;b&gt;"))
    }

    @Test func aDirectoryWithoutSlashRedirectsToALocalPath() throws {
        let running = try RunningServer(FixtureFileHandler.self)
        defer { running.stop() }
        let plain = try get(running, "/dir")
        #expect(plain.status == 301)
        #expect(plain.header("Location") == "/dir/")
        #expect(plain.body.isEmpty)
        #expect(try get(running, "/dir?a=b#f").header("Location") == "/dir/?a=b#f")
        for target in ["//evil.example/x", "///evil.example/x", "////evil.example/x?y"] {
            let response = try get(running, target)
            #expect(response.status == 301, "\(target)")
            let location = response.header("Location") ?? ""
            #expect(location.hasPrefix("/evil.example/x/"), "\(target) → \(location)")
        }
        for target in ["/%2Fevil.example/x", "/%5Cevil.example/x", "/\\evil.example/x"] {
            let response = try get(running, target)
            #expect(response.status == 404 || response.status == 400, "\(target)")
            #expect(response.header("Location") == nil, "\(target)")
        }
    }

    @Test func filesCarryTheirTypeLengthAndModificationTime() throws {
        let running = try RunningServer(FixtureFileHandler.self)
        defer { running.stop() }
        let hello = try get(running, "/hello.txt")
        #expect(hello.status == 200)
        #expect(hello.bodyText == "Hello, file!\n")
        #expect(hello.header("Content-Type") == "text/plain")
        #expect(hello.header("Content-Length") == "13")
        #expect(hello.header("Server")?.hasPrefix("SimpleHTTP/0.6 Swift/") == true)
        let lastModified = try #require(hello.header("Last-Modified"))
        var info = stat()
        #expect(lstat(fixture.root + "/hello.txt", &info) == 0)
        #expect(HTTPDate.parse(lastModified) == Int(info.st_mtim.tv_sec))
        #expect(try get(running, "/page.html").header("Content-Type") == "text/html")
        #expect(try get(running, "/archive.tar.gz").header("Content-Type") == "application/gzip")
        #expect(try get(running, "/data.bin").header("Content-Type") == "application/octet-stream")
        #expect(try get(running, "/hello.txt?cache=1").bodyText == "Hello, file!\n")
        #expect(try get(running, "/hello.txt/").status == 404)
        #expect(try get(running, "/missing.txt").status == 404)
    }

    @Test func anIndexPageIsServedForItsDirectory() throws {
        let running = try RunningServer(FixtureFileHandler.self)
        defer { running.stop() }
        let response = try get(running, "/site/")
        #expect(response.status == 200)
        #expect(response.bodyText == "<h1>index</h1>")
        #expect(response.header("Content-Type") == "text/html")
    }

    @Test func ifModifiedSinceAnswers304UnlessTheFileIsNewer() throws {
        let running = try RunningServer(FixtureFileHandler.self)
        defer { running.stop() }
        let first = try get(running, "/hello.txt")
        let lastModified = try #require(first.header("Last-Modified"))
        let notModified = try get(running, "/hello.txt", headers: "If-Modified-Since: \(lastModified)\r\n")
        #expect(notModified.status == 304)
        #expect(notModified.header("Content-Length") == nil)
        let later = try get(running, "/hello.txt", headers: "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n")
        #expect(later.status == 304)
        let older = try get(running, "/hello.txt", headers: "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n")
        #expect(older.status == 200)
        #expect(older.bodyText == "Hello, file!\n")
        let withETag = try get(running, "/hello.txt",
                               headers: "If-Modified-Since: \(lastModified)\r\nIf-None-Match: \"x\"\r\n")
        #expect(withETag.status == 200)
        #expect(try get(running, "/hello.txt", headers: "If-Modified-Since: garbage\r\n").status == 200)
    }

    @Test func aSingleRangeIsAnswered206AndAnUnsatisfiableOne416() throws {
        let running = try RunningServer(FixtureFileHandler.self)
        defer { running.stop() }
        let middle = try get(running, "/data.bin", headers: "Range: bytes=10-19\r\n")
        #expect(middle.status == 206)
        #expect(middle.header("Content-Range") == "bytes 10-19/1000")
        #expect(middle.header("Content-Length") == "10")
        #expect(middle.body == Array(fixture.data[10..<20]))
        let suffix = try get(running, "/data.bin", headers: "Range: bytes=-5\r\n")
        #expect(suffix.body == Array(fixture.data[995...]))
        #expect(suffix.header("Content-Range") == "bytes 995-999/1000")
        let open = try get(running, "/data.bin", headers: "Range: bytes=990-\r\n")
        #expect(open.body == Array(fixture.data[990...]))
        let beyond = try get(running, "/data.bin", headers: "Range: bytes=1000-\r\n")
        #expect(beyond.status == 416)
        #expect(beyond.header("Content-Range") == "bytes */1000")
        #expect(beyond.body.isEmpty)
        let several = try get(running, "/data.bin", headers: "Range: bytes=0-1,5-6\r\n")
        #expect(several.status == 200)
        #expect(several.body == fixture.data)
        let stale = try get(running, "/data.bin",
                            headers: "Range: bytes=0-1\r\nIf-Range: Sun, 06 Nov 1994 08:49:37 GMT\r\n")
        #expect(stale.status == 200)
        // A range of a streamed file, across chunk boundaries.
        let streamed = try get(running, "/medium.bin", headers: "Range: bytes=1000-280000\r\n")
        #expect(streamed.status == 206)
        #expect(streamed.body == Array(fixture.medium[1000...280000]))
    }

    @Test func headSendsTheHeadersWithoutABody() throws {
        let running = try RunningServer(FixtureFileHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\nHEAD /medium.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                        + "HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        let small = try #require(try client.readResponse(headRequest: true))
        #expect(small.status == 200)
        #expect(small.header("Content-Length") == "13")
        let large = try #require(try client.readResponse(headRequest: true))
        #expect(large.header("Content-Length") == String(fixture.medium.count))
        let listing = try #require(try client.readResponse(headRequest: true))
        #expect(listing.status == 200)
        // Had any HEAD carried body bytes, this would not parse as the GET's response.
        let after = try #require(try client.readResponse())
        #expect(after.status == 200)
        #expect(after.bodyText == "Hello, file!\n")
    }

    @Test func streamedFilesKeepTheConnectionAndPipelinedOrder() throws {
        let running = try RunningServer(FixtureFileHandler.self)
        defer { running.stop() }
        let client = try running.client()
        let request = "GET /medium.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
        try client.send(request + request)
        for _ in 0..<2 {
            let big = try #require(try client.readResponse())
            #expect(big.body == fixture.medium)
            let small = try #require(try client.readResponse())
            #expect(small.bodyText == "Hello, file!\n")
        }
        let http10 = try exchange(running.port, "GET /medium.bin HTTP/1.0\r\n\r\n")
        #expect(http10.body == fixture.medium)
    }

    @Test func aClientLeavingMidStreamLeavesTheServerServing() throws {
        let running = try RunningServer(FixtureFileHandler.self)
        defer { running.stop() }
        for _ in 0..<5 {
            let client = try running.client()
            try client.send("GET /medium.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            client.reset()
        }
        #expect(try get(running, "/medium.bin").body == fixture.medium)
    }

    @Test func aDirectoryHTTPServerServesItsOwnDirectory() throws {
        let server = try DirectoryHTTPServer(("127.0.0.1", 0), QuietFileHandler.self,
                                             directory: fixture.root + "/dir")
        let stopped = DispatchSemaphore(value: 0)
        let thread = Thread {
            try? server.serveForever()
            stopped.signal()
        }
        thread.start()
        defer {
            server.shutdown()
            stopped.wait()
        }
        let response = try exchange(server.serverPort, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(response.bodyText == "a")
        #expect(try exchange(server.serverPort, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n").status == 404)
    }

    @Test func otherMethodsAre501() throws {
        let running = try RunningServer(FixtureFileHandler.self)
        defer { running.stop() }
        #expect(try get(running, "/hello.txt", method: "POST", headers: "Content-Length: 0\r\n").status == 501)
    }
}
