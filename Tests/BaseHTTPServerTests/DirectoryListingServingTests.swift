import Foundation
import Glibc
import Synchronization
import Testing
import UVLoop
@testable import BaseHTTPServer

/// A directory to list, made once per test process: names that are not UTF-8, a
/// subdirectory, a file.
final class ListingFixture: Sendable {
    static let shared = ListingFixture()

    let root: String

    private init() {
        root = NSTemporaryDirectory() + "listing-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        makeDirectory(root)
        makeDirectory(root + "/sub")
        makeFile(root + "/sub/inner.txt")
        makeFile(root + "/plain.txt", contents: "plain\n")
        makeFile(bytes: Array((root + "/caf").utf8) + [0xE9] + Array(".txt".utf8))
        makeDirectory(bytes: Array((root + "/dir").utf8) + [0xFF])
        atexit { try? FileManager.default.removeItem(atPath: ListingFixture.shared.root) }
    }
}

/// Makes a directory at the path `bytes` (not necessarily UTF-8).
func makeDirectory(_ path: String) { makeDirectory(bytes: Array(path.utf8)) }

func makeDirectory(bytes: [UInt8]) {
    let status = mkdir((bytes + [0]).map { CChar(bitPattern: $0) }, 0o755)
    precondition(status == 0 || errno == EEXIST, "mkdir failed: \(errno)")
}

/// Makes a file at `path` (or the path `bytes`) holding `contents`.
func makeFile(_ path: String, contents: String = "") { makeFile(bytes: Array(path.utf8), contents: contents) }

func makeFile(bytes: [UInt8], contents: String = "") {
    let descriptor = open((bytes + [0]).map { CChar(bitPattern: $0) }, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
    precondition(descriptor >= 0, "open failed: \(errno)")
    let written = Array(contents.utf8).withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    precondition(written == contents.utf8.count)
    close(descriptor)
}

/// Serves `ListingFixture`, silently.
final class ListingFixtureHandler: SimpleHTTPRequestHandler {
    override class var directory: String { ListingFixture.shared.root }
    override func logMessage(_ message: String) {}
}

/// Lists a directory that does not exist, as if the one asked for could not be read (the
/// tests run as root, who may read any directory).
final class UnreadableListingHandler: SimpleHTTPRequestHandler {
    override class var directory: String { ListingFixture.shared.root }
    override func logMessage(_ message: String) {}
    override func listDirectory(_ path: String) -> Body? {
        super.listDirectory(path + "/vanished")
    }
}

/// For the test whose client leaves while its listing is made: says when a listing whose
/// query says `leave` was asked for, and records in `LogBook` the status the listing sends
/// (`listed TARGET STATUS`, the target kept from the request: once the client has gone, the
/// request's attributes are).
final class ObservedListingHandler: SimpleHTTPRequestHandler {
    static let listingStarted = DispatchSemaphore(value: 0)
    private var listed: String?
    override class var directory: String { ListingFixture.shared.root }
    override func logMessage(_ message: String) {}
    override func listDirectory(_ path: String) -> Body? {
        listed = self.path
        defer { if self.path.contains("leave") { Self.listingStarted.signal() } }
        return super.listDirectory(path)
    }
    override func sendResponse(_ code: Int, message: String? = nil) {
        if let listed { LogBook.shared.add("listed \(listed) \(code)") }
        super.sendResponse(code, message: message)
    }
}

@Suite("Directory listings over the wire")
struct DirectoryListingServingTests {
    let fixture = ListingFixture.shared

    private func get(_ running: RunningServer, _ target: String, method: String = "GET") throws -> WireResponse {
        try exchange(running.port, "\(method) \(target) HTTP/1.1\r\nHost: x\r\n\r\n", headRequest: method == "HEAD")
    }

    @Test func namesThatAreNotUTF8AreLinkedByTheirBytes() throws {
        let running = try RunningServer(ListingFixtureHandler.self)
        defer { running.stop() }
        let response = try get(running, "/")
        #expect(response.status == 200)
        #expect(response.header("Content-Length") == String(response.body.count))
        let page = response.bodyText
        #expect(page.contains("<li><a href=\"caf%E9.txt\">caf\u{FFFD}.txt</a></li>\n"))
        #expect(page.contains("<li><a href=\"dir%FF/\">dir\u{FFFD}/</a></li>\n"))
        #expect(page.contains("<li><a href=\"plain.txt\">plain.txt</a></li>\n"))
        #expect(page.contains("<li><a href=\"sub/\">sub/</a></li>\n"))
        // The page is valid UTF-8 whatever the names.
        #expect(Array(String(decoding: response.body, as: UTF8.self).utf8) == response.body)
    }

    /// The listing is answered later (from the thread pool); requests pipelined behind it
    /// wait for it, and a HEAD gets the same head without the page.
    @Test func pipelinedRequestsAroundListingsAreAnsweredInOrder() throws {
        let running = try RunningServer(ListingFixtureHandler.self)
        defer { running.stop() }
        let client = try running.client()
        let request = { (method: String, target: String) in "\(method) \(target) HTTP/1.1\r\nHost: x\r\n\r\n" }
        try client.send(request("GET", "/") + request("HEAD", "/") + request("GET", "/plain.txt")
                        + request("GET", "/sub/") + request("GET", "/plain.txt"))
        let listing = try #require(try client.readResponse())
        #expect(listing.status == 200)
        #expect(listing.bodyText.contains("Directory listing for /</title>"))
        let head = try #require(try client.readResponse(headRequest: true))
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == String(listing.body.count))
        #expect(head.header("Content-Type") == "text/html; charset=utf-8")
        #expect(try client.readResponse()?.bodyText == "plain\n")
        let sub = try #require(try client.readResponse())
        #expect(sub.bodyText.contains("<li><a href=\"inner.txt\">inner.txt</a></li>"))
        #expect(sub.bodyText.contains("Directory listing for /sub/</title>"))
        #expect(try client.readResponse()?.bodyText == "plain\n")
    }

    /// The directory is read on the thread pool, so its failure is found after the response
    /// was deferred: still Python's 404 (which, as Python's `send_error`, closes), for GET and HEAD.
    @Test func anUnreadableDirectoryIs404AfterTheListingWasDeferred() throws {
        let running = try RunningServer(UnreadableListingHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /plain.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        let missing = try #require(try client.readResponse())
        #expect(missing.status == 404)
        #expect(missing.bodyText.contains("No permission to list directory"))
        #expect(missing.header("Content-Length") == String(missing.body.count))
        #expect(client.isClosedByServer())
        let head = try get(running, "/sub/", method: "HEAD")
        #expect(head.status == 404)
        #expect(try get(running, "/plain.txt").bodyText == "plain\n")
    }

    /// The client leaves while its listing is being made (libuv's pool is held meanwhile): with
    /// a reset alone, which the server sees at once, so the page is made for a connection that
    /// is gone; or after a half-close, which the server answers, finding the socket reset when
    /// it writes. Either way the page goes nowhere and the server goes on serving.
    @Test func aClientThatLeavesWhileItsListingIsMadeLeavesTheServerServing() throws {
        let running = try RunningServer(ObservedListingHandler.self)
        defer { running.stop() }
        for resetOnly in [true, false] {
            let target = resetOnly ? "/sub/?leave-reset" : "/sub/?leave-half-close"
            let gate = ThreadPoolGate(running.server.loop)
            do {
                let client = try running.client()
                try client.send("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n")
                ObservedListingHandler.listingStarted.wait()
                if !resetOnly { client.shutdownWrite() }
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            }  // closed here: a reset
            if resetOnly { #expect(waitForConnections(running) == 0) }
            gate.open()
            // The listing completes with nobody to send it to: it answers as usual, in vain.
            let line = "listed \(target) 200"
            let deadline = Date().addingTimeInterval(10)
            while !LogBook.shared.contains(line) && Date() < deadline { usleep(2000) }
            #expect(LogBook.shared.contains(line))
            #expect(waitForConnections(running) == 0)
            let after = try get(running, "/sub/")
            #expect(after.status == 200)
            #expect(after.bodyText.contains("inner.txt"))
        }
    }
}

/// Holds every thread of libuv's pool (shared by every loop in the process) until `open()`,
/// so that work queued meanwhile waits.
struct ThreadPoolGate {
    private let gate = DispatchSemaphore(value: 0)
    private let threads = getenv("UV_THREADPOOL_SIZE").flatMap { Int(String(cString: $0)) }
        .map { min(max($0, 1), 1024) } ?? 4

    /// Queues one blocking work per pool thread on `loop`, and returns once they are queued.
    init(_ loop: UVLoop.Loop) {
        let queued = DispatchSemaphore(value: 0)
        loop.execute { [gate, threads] in
            for _ in 0..<threads { loop.runInThreadPool({ gate.wait() }, then: {}) }
            queued.signal()
        }
        queued.wait()
    }

    func open() {
        for _ in 0..<threads { gate.signal() }
    }
}

/// A directory of 100,000 empty files (`big/`) beside a small file, made when first used.
final class BigListingFixture: Sendable {
    static let shared = BigListingFixture()
    static let entries = 100_000

    let root: String

    private init() {
        root = NSTemporaryDirectory() + "big-listing-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        makeDirectory(root)
        makeDirectory(root + "/big")
        makeFile(root + "/small.txt", contents: "small\n")
        for index in 0..<Self.entries {
            makeFile(root + "/big/entry-\(index).txt")
        }
        atexit { try? FileManager.default.removeItem(atPath: BigListingFixture.shared.root) }
    }
}

final class BigListingHandler: SimpleHTTPRequestHandler {
    override class var directory: String { BigListingFixture.shared.root }
    override func logMessage(_ message: String) {}
}

@Suite("Large directory listings")
struct LargeDirectoryListingTests {
    /// While a client fetches the listing of 100,000 entries three times, another asks for a
    /// small file over and over: the longest any of those waits is printed, and bounded
    /// loosely (the listing itself takes hundreds of milliseconds, seconds in a debug build; made
    /// on the loop thread, it held every other connection up that long). Its name says
    /// "Alone": it runs in the serial pass, where no other test competes for the two cores.
    @Test func aHundredThousandEntryListingStallsNoOtherConnectionAlone() throws {
        _ = BigListingFixture.shared  // made before anything is timed
        let running = try RunningServer(BigListingHandler.self)
        defer { running.stop() }

        let stop = Atomic<Bool>(false)
        let samples = Samples()
        let finished = DispatchSemaphore(value: 0)
        let port = running.port
        Thread {
            defer { finished.signal() }
            guard let client = try? RawClient(port: port) else { return }
            while !stop.load(ordering: .relaxed) {
                let start = monotonicSeconds()
                try? client.send("GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                guard let response = try? client.readResponse(), response.bodyText == "small\n" else { return }
                let elapsed = monotonicSeconds() - start
                samples.add(start: start, seconds: elapsed)
            }
        }.start()
        while samples.all.count < 10 { sched_yield() }

        let client = try running.client()
        let listingStart = monotonicSeconds()
        var listingTimes: [Double] = []
        for _ in 0..<3 {
            let start = monotonicSeconds()
            try client.send("GET /big/ HTTP/1.1\r\nHost: x\r\n\r\n")
            let listing = try #require(try client.readResponse())
            listingTimes.append(monotonicSeconds() - start)
            #expect(listing.status == 200)
            #expect(listing.body.count > BigListingFixture.entries * 40)
            #expect(listing.bodyText.contains("<li><a href=\"entry-99999.txt\">entry-99999.txt</a></li>"))
        }
        let listingEnd = monotonicSeconds()
        stop.store(true, ordering: .relaxed)
        finished.wait()

        let during = samples.all.filter { $0.start + $0.seconds >= listingStart && $0.start <= listingEnd }
        let slowest = during.map(\.seconds).max() ?? .infinity
        print("""
            listing of \(BigListingFixture.entries) entries: \(listingTimes.map { "\(Int($0 * 1000)) ms" }) each; \
            \(during.count) small GETs meanwhile, slowest \(String(format: "%.1f", slowest * 1000)) ms
            """)
        #expect(during.count >= 10, "the small GETs stopped while the listings were made")
        #expect(slowest < 0.25, "a small GET waited \(slowest * 1000) ms beside the listing")
    }
}

/// Timed requests, handed from the thread that makes them to the test.
private final class Samples: Sendable {
    private let samples = Locked<[(start: Double, seconds: Double)]>([])
    func add(start: Double, seconds: Double) { samples.withLock { $0.append((start, seconds)) } }
    var all: [(start: Double, seconds: Double)] { samples.withLock { $0 } }
}

private func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}
