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

/// The process's resident set size in bytes (`VmRSS`).
func residentSetSize() -> Int {
    guard let status = readTextFile("/proc/self/status"),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
    else { return 0 }
    return kilobytes * 1024
}

/// Whether AddressSanitizer or ThreadSanitizer is in the process.
let underSanitizer = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil
    || dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil

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
        let baseline = residentSetSize()
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
                peak = max(peak, residentSetSize())
            }
            if !paused && received > fixture.size / 2 {
                paused = true  // Stop reading for a while: the server must wait, not buffer.
                usleep(300_000)
                peak = max(peak, residentSetSize())
            }
        }
        let elapsed = Date().timeIntervalSince(started)
        side.stop()

        #expect(received == fixture.size)
        #expect(sum.value == fixture.checksum)
        let growth = peak - baseline
        // A sanitizer's allocator keeps freed memory in quarantine: RSS says nothing there.
        if !underSanitizer {
            #expect(growth < 20 << 20, "RSS grew by \(growth >> 20) MB")
        }
        #expect(side.answered >= 3, "answered \(side.answered) side requests")
        #expect(side.failures == 0)
        #expect(side.slowest < (underSanitizer ? 2 : 0.5), "slowest side answer took \(side.slowest) s")
        print("200 MB download: \(String(format: "%.2f", elapsed)) s, RSS growth "
              + "\(String(format: "%.1f", Double(growth) / 1_048_576)) MB, side answers \(side.answered), "
              + "slowest \(String(format: "%.3f", side.slowest)) s")
        // The connection is still usable afterwards.
        try client.send("GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try client.readResponse()?.bodyText == "small")
    }
}
