import Foundation
import Glibc
import Testing

/// A loopback client socket with a small receive buffer, so that a response it does not read
/// stays in flight at the server instead of filling the kernel's buffers.
private final class SlowClient {
    let fd: Int32

    init(port: Int) throws {
        fd = try connectLoopback(port: port, receiveBuffer: 64 * 1024)
    }

    deinit { close(fd) }

    func send(_ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads at most `limit` bytes (fewer when the server closes first); returns the count.
    func read(upTo limit: Int) -> Int {
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while total < limit {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, limit - total), 0) }
            guard count > 0 else { break }
            total += count
        }
        return total
    }
}

/// A served directory holding `big.bin`, a sparse file of `size` bytes.
private func directoryWithBigFile(size: Int) throws -> String {
    let directory = try makeServedDirectory()
    let path = directory + "/big.bin"
    guard FileManager.default.createFile(atPath: path, contents: nil), truncate(path, off_t(size)) == 0 else {
        throw POSIXError(.EIO)
    }
    return directory
}

@Suite("http-server stopping")
struct StoppingTests {
    static let bigSize = 64 << 20

    @Test func anIdleServerExitsAtOnceOnTheFirstSIGINT() throws {
        let directory = try makeServedDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let child = try ChildServer(["-b", "127.0.0.1", "-d", directory, "0"])
        let port = try #require(servingPort(child.firstLine()))
        // A keep-alive connection, idle after its request, does not hold the exit up.
        let idle = try SlowClient(port: port)
        idle.send("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(idle.read(upTo: 1) == 1)
        usleep(100_000)
        let started = Date()
        kill(child.pid, SIGINT)
        #expect(child.waitForExit())
        #expect(Date().timeIntervalSince(started) < 2)
        #expect(child.exitedNormally)
        #expect(child.exitStatus == 0)
        let output = child.standardOutputRest
        #expect(output == "\nKeyboard interrupt received, exiting.\n", "\(output.debugDescription)")
    }

    /// The download is cut off by the second signal, long before the 5 s grace period ends.
    @Test(arguments: [SIGINT, SIGTERM])
    func aSecondSignalCutsASlowDownloadOff(second: Int32) throws {
        let directory = try directoryWithBigFile(size: Self.bigSize)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let child = try ChildServer(["-b", "127.0.0.1", "-d", directory, "0"])
        let port = try #require(servingPort(child.firstLine()))
        let download = try SlowClient(port: port)
        download.send("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(download.read(upTo: 1) == 1)  // under way; then the client stops reading
        usleep(100_000)

        kill(child.pid, SIGINT)
        #expect(child.nextLine() == "")
        #expect(child.nextLine() == "Keyboard interrupt received, exiting.")
        #expect(child.nextLine() == "Waiting up to 5 s for 1 response in flight; Ctrl-C again to stop now.")
        let started = Date()
        kill(child.pid, second)
        #expect(child.waitForExit())
        #expect(Date().timeIntervalSince(started) < 2)
        #expect(child.exitedNormally)
        #expect(child.exitStatus == 0)
        #expect(download.read(upTo: Self.bigSize) + 1 < Self.bigSize)  // cut off
    }

    /// After one signal, a download the client goes on reading finishes, and the server then
    /// exits by itself.
    @Test func oneSIGINTLetsADownloadInFlightFinish() throws {
        let directory = try directoryWithBigFile(size: Self.bigSize)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let child = try ChildServer(["-b", "127.0.0.1", "-d", directory, "0"])
        let port = try #require(servingPort(child.firstLine()))
        let download = try SlowClient(port: port)
        download.send("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        var received = download.read(upTo: 1)
        usleep(100_000)

        kill(child.pid, SIGINT)
        #expect(child.nextLine() == "")
        #expect(child.nextLine() == "Keyboard interrupt received, exiting.")
        #expect(child.nextLine()?.hasPrefix("Waiting up to 5 s for 1 response in flight") == true)
        received += download.read(upTo: 2 * Self.bigSize)
        #expect(received > Self.bigSize)  // the head and every byte of the file
        #expect(child.waitForExit())
        #expect(child.exitStatus == 0)
    }
}
