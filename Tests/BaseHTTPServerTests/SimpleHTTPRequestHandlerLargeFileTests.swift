import Foundation
import Glibc
import Testing
@testable import BaseHTTPServer

/// A directory holding one 200 MB file made of 1 MiB blocks, each different, with the checksum
/// of its contents computed while writing it.
final class LargeFileFixture: Sendable {
    static let shared = LargeFileFixture()
    static let blockSize = 1 << 20
    static let blocks = 200

    let root: String
    let size = LargeFileFixture.blockSize * LargeFileFixture.blocks
    let checksum: UInt64

    private init() {
        root = NSTemporaryDirectory() + "simplehttp-large-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try! FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: root + "/small.txt", contents: Data("small".utf8))
        let descriptor = open(root + "/big.bin", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(descriptor >= 0)
        var block = [UInt8](repeating: 0, count: Self.blockSize)
        var sum = Checksum()
        for index in 0..<Self.blocks {
            block.withUnsafeMutableBytes { bytes in
                let words = bytes.bindMemory(to: UInt64.self)
                for word in words.indices {
                    words[word] = (UInt64(index) << 40 | UInt64(word)) &* 0x9E37_79B9_7F4A_7C15
                }
            }
            block.withUnsafeBytes { bytes in
                sum.add(bytes)
                precondition(write(descriptor, bytes.baseAddress, bytes.count) == bytes.count)
            }
        }
        close(descriptor)
        checksum = sum.value
    }

    func remove() {
        unlink(root + "/big.bin")
        unlink(root + "/small.txt")
        rmdir(root)
    }
}

/// An order-sensitive checksum over a byte stream, however it is split.
struct Checksum {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var hash = value
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        value = hash
    }
}

final class LargeFileHandler: SimpleHTTPRequestHandler {
    override class var directory: String { LargeFileFixture.shared.root }
    override func logMessage(_ message: String) {}
}

/// Whether AddressSanitizer or ThreadSanitizer is in the process.
let underSanitizer = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil
    || dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil

/// What the memory-bound tests (their names say "Memory") measure, in kB. They assert their
/// bounds in every pass of `.ci/run`; `Scripts/test` runs them alone, after the rest, because
/// both figures are the whole process's.
struct MemoryReading {
    /// What the allocator holds for live allocations: glibc's (from `malloc_info`), or under a
    /// sanitizer the sanitizer allocator's (`__sanitizer_get_current_allocated_bytes`). No
    /// pages, no quarantine: its bounds are tight enough that leaked connection objects show.
    let heap: Int
    /// The resident set size (after `malloc_trim` when `trimmed`): coarse (freed pages stay
    /// resident, leaked objects fill holes in them), but it also sees memory that is not
    /// `malloc`'s. Under a sanitizer it says little (AddressSanitizer quarantines up to 256 MB
    /// of freed blocks, ThreadSanitizer's allocator caches and its shadow grow with them), so
    /// its bound applies only in the plain and release builds.
    let rss: Int

    /// Fails the test (never a silent pass) when there is no heap figure.
    static func now(trimmed: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) throws -> MemoryReading {
        let rss = trimmed ? trimmedResidentKilobytes() : residentKilobytes()
        let heap = try #require(underSanitizer ? sanitizerLiveBytes.map { $0() } : glibcBytesInUse(),
                                "no heap figure (malloc_info, __sanitizer_get_current_allocated_bytes)",
                                sourceLocation: sourceLocation)
        return MemoryReading(heap: heap / 1024, rss: rss)
    }

    /// The larger of each figure.
    func peak(_ other: MemoryReading) -> MemoryReading {
        MemoryReading(heap: max(heap, other.heap), rss: max(rss, other.rss))
    }

    private typealias Counter = @convention(c) () -> Int
    private static let sanitizerLiveBytes: Counter? = underSanitizer
        ? dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__sanitizer_get_current_allocated_bytes")
            .map { unsafeBitCast($0, to: Counter.self) }
        : nil

    /// glibc's bytes in use (mallinfo2's uordblks + hblkhd; neither function is imported), from
    /// the totals `malloc_info` prints after the last arena.
    private static func glibcBytesInUse() -> Int? {
        typealias MallocInfo = @convention(c) (Int32, UnsafeMutablePointer<FILE>?) -> Int32
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "malloc_info") else { return nil }
        var buffer: UnsafeMutablePointer<CChar>? = nil
        var length = 0
        guard let file = open_memstream(&buffer, &length) else { return nil }
        let status = unsafeBitCast(symbol, to: MallocInfo.self)(0, file)
        fclose(file)
        guard let buffer else { return nil }
        defer { free(buffer) }
        let lines = String(cString: buffer).split(separator: "\n")
        guard status == 0, let end = lines.lastIndex(of: "</malloc>") else { return nil }
        let totals = lines[(lines.lastIndex(of: "</heap>") ?? -1) + 1 ..< end]
        func size(_ prefix: String) -> Int? {
            guard let line = totals.first(where: { $0.hasPrefix(prefix) }),
                  let value = line.split(separator: "size=\"").last?.split(separator: "\"").first
            else { return nil }
            return Int(value)
        }
        guard let fast = size("<total type=\"fast\""), let rest = size("<total type=\"rest\""),
              let mapped = size("<total type=\"mmap\""), let system = size("<system type=\"current\"")
        else { return nil }
        return system - fast - rest + mapped
    }
}

/// Expects the heap to have grown by less than `heapBelow` kB from `before` to `after`, and
/// without a sanitizer the RSS by less than `rssBelow` kB; prints both.
func expectMemoryGrowth(from before: MemoryReading, to after: MemoryReading, _ what: String,
                        heapBelow: Int, rssBelow: Int, sourceLocation: SourceLocation = #_sourceLocation) {
    let heap = after.heap - before.heap, rss = after.rss - before.rss
    print("\(what): heap grew by \(heap) kB (bound \(heapBelow)), RSS by \(rss) kB (bound "
          + (underSanitizer ? "none under a sanitizer)" : "\(rssBelow))"))
    #expect(heap < heapBelow, "\(what): heap grew by \(heap) kB", sourceLocation: sourceLocation)
    if !underSanitizer {
        #expect(rss < rssBelow, "\(what): RSS grew by \(rss) kB", sourceLocation: sourceLocation)
    }
}

/// Counts answers another client gets while the download runs, and the slowest of them.
final class SideTraffic: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private(set) var answered = 0
    private(set) var failures = 0
    private(set) var slowest = 0.0
    private let finished = DispatchSemaphore(value: 0)

    func start(port: Int) {
        Thread {
            while self.lock.withLock({ self.running }) {
                let started = Date()
                let ok = (try? exchange(port, "GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n"))?.bodyText == "small"
                let elapsed = Date().timeIntervalSince(started)
                self.lock.withLock {
                    if ok { self.answered += 1 } else { self.failures += 1 }
                    self.slowest = max(self.slowest, elapsed)
                }
                usleep(20_000)
            }
            self.finished.signal()
        }.start()
    }

    func stop() {
        lock.withLock { running = false }
        finished.wait()
    }
}

@Suite("SimpleHTTPRequestHandler large files", .serialized)
struct SimpleHTTPRequestHandlerLargeFileTests {
    @Test func a200MBFileStreamsIntactInBoundedMemoryWhileOthersAreAnswered() throws {
        let fixture = LargeFileFixture.shared
        defer { fixture.remove() }
        let running = try RunningServer(LargeFileHandler.self)
        defer { running.stop() }
        #expect(try exchange(running.port, "GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n").status == 200)

        let client = try running.client()
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)  // The client's only buffer.
        let baseline = try MemoryReading.now()
        var peak = baseline
        let side = SideTraffic()
        side.start(port: running.port)
        let started = Date()
        try client.send("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")

        // The head, then the body straight from the socket into the checksum.
        var head: [UInt8] = []
        var inHead = true
        var received = 0
        var sum = Checksum()
        var paused = false
        while received < fixture.size {
            let count = buffer.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw ClientError(description: "recv ended after \(received) bytes") }
            try buffer.withUnsafeBytes { raw in
                var bytes = UnsafeRawBufferPointer(rebasing: raw[0..<count])
                if inHead {
                    // Still reading the head: take bytes up to its blank line.
                    var index = 0
                    while index < bytes.count && inHead {
                        head.append(bytes[index])
                        index += 1
                        inHead = head.suffix(4) != [13, 10, 13, 10]
                    }
                    bytes = UnsafeRawBufferPointer(rebasing: bytes[index...])
                    if !inHead {
                        let text = String(decoding: head, as: UTF8.self)
                        guard text.hasPrefix("HTTP/1.1 200"), text.contains("Content-Length: \(fixture.size)\r\n")
                        else { throw ClientError(description: "unexpected head \(text)") }
                    }
                }
                sum.add(bytes)
                received += bytes.count
            }
            if received / (8 << 20) != (received - count) / (8 << 20) {
                peak = try peak.peak(.now())
            }
            if !paused && received > fixture.size / 2 {
                paused = true  // Stop reading for a while: the server must wait, not buffer.
                usleep(300_000)
                peak = try peak.peak(.now())
            }
        }
        let elapsed = Date().timeIntervalSince(started)
        side.stop()

        #expect(received == fixture.size)
        #expect(sum.value == fixture.checksum)
        // Measured peak growth: heap 0.75-0.85 MB in every pass; RSS 1.4-2.0 MB (plain,
        // release; TSan 3.3 MB, ASan ~100 MB of quarantine). Buffering the file adds 200 MB.
        expectMemoryGrowth(from: baseline, to: peak, "200 MB download (peak)",
                           heapBelow: 8 * 1024, rssBelow: 20 * 1024)
        #expect(side.answered >= 3, "answered \(side.answered) side requests")
        #expect(side.failures == 0)
        #expect(side.slowest < (underSanitizer ? 2 : 0.5), "slowest side answer took \(side.slowest) s")
        print("200 MB download: \(String(format: "%.2f", elapsed)) s, side answers \(side.answered), "
              + "slowest \(String(format: "%.3f", side.slowest)) s")
        // The connection is still usable afterwards.
        try client.send("GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try client.readResponse()?.bodyText == "small")
    }
}
