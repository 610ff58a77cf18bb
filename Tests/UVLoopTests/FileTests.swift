import Glibc
import Testing
@testable import UVLoop

/// A temporary file holding `bytes`, removed by `remove()`.
private struct TemporaryFile {
    let path: String

    init(_ bytes: [UInt8]) {
        var template = Array("/tmp/uvloop-file-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        precondition(descriptor >= 0, "mkstemp failed")
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        precondition(written == bytes.count)
        Glibc.close(descriptor)
    }

    func remove() { unlink(path) }
}

/// Holds every thread of libuv's pool in an `open` of a FIFO, which blocks until `open()`
/// opens the FIFO as well: requests queued meanwhile start only after that, in order.
private final class ThreadPoolGate {
    private let path: String
    private let loop: Loop
    private var held: [File] = []
    private let threads: Int

    init(loop: Loop) {
        self.loop = loop
        path = "/tmp/uvloop-gate-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        precondition(mkfifo(path, 0o600) == 0, "mkfifo failed")
        // libuv's pool has UV_THREADPOOL_SIZE threads (1...1024), 4 when it is not set.
        threads = getenv("UV_THREADPOOL_SIZE").flatMap { Int(String(cString: $0)) }
            .map { min(max($0, 1), 1024) } ?? 4
        for _ in 0..<threads {
            File.open(path, loop: loop) { [self] result in
                if case .success(let file) = result { held.append(file) }
            }
        }
    }

    /// Lets the pool go on, and waits until the blocked opens have completed.
    func open() {
        let writer = Glibc.open(path, O_RDWR | O_CLOEXEC)  // Never blocks for a FIFO on Linux.
        run(loop) { held.count == threads }
        Glibc.close(writer)
        for file in held { file.close() }
        unlink(path)
    }
}

@Suite("File")
struct FileTests {
    @Test func openStatReadAndCloseRunOnThePoolAndCallBackOnTheLoop() throws {
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let temporary = TemporaryFile(bytes)
        defer { temporary.remove() }
        let loop = try Loop()

        var opened: File?
        File.open(temporary.path, loop: loop) { result in opened = try? result.get() }
        run(loop) { opened != nil }
        let file = try #require(opened)
        #expect(file.descriptor >= 0)

        var status: FileStatus?
        file.stat { result in status = try? result.get() }
        run(loop) { status != nil }
        #expect(status?.size == bytes.count)
        #expect(status?.isRegularFile == true)
        #expect(status?.isDirectory == false)
        #expect((status?.modificationTime ?? 0) > 1_600_000_000)

        // Read it back in uneven chunks; each completion copies what it keeps.
        var received: [UInt8] = []
        var finished = false
        func next() {
            file.read(count: 65_537, at: received.count) { result in
                switch result {
                case .success(let chunk) where chunk.isEmpty: finished = true
                case .success(let chunk): received.append(contentsOf: chunk); next()
                case .failure(let error): Issue.record("read failed: \(error)"); finished = true
                }
            }
        }
        next()
        run(loop) { finished }
        #expect(received == bytes)

        var closed = false
        var closeError: UVError?
        file.close { error in closeError = error; closed = true }
        #expect(file.descriptor == -1)
        run(loop) { closed }
        #expect(closeError == nil)
        closeCleanly(loop)
    }

    @Test func readAtAnOffsetReturnsThatSliceAndEmptyAtTheEnd() throws {
        let bytes = Array("0123456789".utf8)
        let temporary = TemporaryFile(bytes)
        defer { temporary.remove() }
        let loop = try Loop()
        let file = File(adopting: open(temporary.path, O_RDONLY), loop: loop)
        var slices: [[UInt8]] = []
        for offset in [3, 8, 10, 50] {
            file.read(count: 4, at: offset) { result in slices.append(Array((try? result.get()) ?? UnsafeRawBufferPointer(start: nil, count: 0))) }
        }
        run(loop) { slices.count == 4 }
        #expect(slices.contains(Array("3456".utf8)))
        #expect(slices.contains(Array("89".utf8)))
        #expect(slices.filter(\.isEmpty).count == 2)
        var closed = false
        file.close { _ in closed = true }
        run(loop) { closed }
        closeCleanly(loop)
    }

    @Test func writesLandAtTheirOffsetsAndReadBackAndAFailedWriteSaysWhy() throws {
        let temporary = TemporaryFile([])
        defer { temporary.remove() }
        let loop = try Loop()
        let file = File(adopting: open(temporary.path, O_RDWR), loop: loop)
        let first = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var written: [Int] = []
        first.withUnsafeBytes { bytes in
            file.write(bytes, at: 0) { result in written.append((try? result.get()) ?? -1) }
        }
        // The request copied the bytes: changing the source now changes nothing.
        Array("tail".utf8).withUnsafeBytes { bytes in
            file.write(bytes, at: first.count) { result in written.append((try? result.get()) ?? -1) }
        }
        run(loop) { written.count == 2 }
        #expect(written.sorted() == [4, first.count])
        var back: [UInt8]?
        file.read(count: first.count + 10, at: 0) { result in back = (try? result.get()).map { Array($0) } }
        run(loop) { back != nil }
        #expect(back == first + Array("tail".utf8))
        var closed = false
        file.close { _ in closed = true }
        run(loop) { closed }

        // A read-only descriptor refuses the write with EBADF, through the completion.
        let readOnly = File(adopting: open(temporary.path, O_RDONLY), loop: loop)
        var failure: UVError?
        Array("x".utf8).withUnsafeBytes { bytes in
            readOnly.write(bytes, at: 0) { result in
                if case .failure(let error) = result { failure = error } else { failure = UVError(code: 0) }
            }
        }
        run(loop) { failure != nil }
        #expect(failure?.name == "EBADF")
        closed = false
        readOnly.close { _ in closed = true }
        run(loop) { closed }
        closeCleanly(loop)
    }

    @Test func openingAMissingFileFailsWithENOENT() throws {
        let loop = try Loop()
        var outcome: Result<File, UVError>?
        File.open("/nonexistent/\(getpid())/file", loop: loop) { outcome = $0 }
        run(loop) { outcome != nil }
        if case .failure(let error) = outcome {
            #expect(error.code == -ENOENT)
            #expect(error.name == "ENOENT")
        } else {
            Issue.record("opened a missing file")
        }
        closeCleanly(loop)
    }

    @Test func operationsAfterCloseFailWithEBADFAndACloseTwiceIsHarmless() throws {
        let temporary = TemporaryFile([1, 2, 3])
        defer { temporary.remove() }
        let loop = try Loop()
        let file = File(adopting: open(temporary.path, O_RDONLY), loop: loop)
        var closes = 0
        file.close { _ in closes += 1 }
        file.close { error in #expect(error == nil); closes += 1 }
        var readError: UVError?
        file.read(count: 3, at: 0) { result in
            if case .failure(let error) = result { readError = error }
        }
        var statError: UVError?
        file.stat { result in
            if case .failure(let error) = result { statError = error }
        }
        run(loop) { closes == 2 }
        #expect(readError?.name == "EBADF")
        #expect(statError?.name == "EBADF")
        closeCleanly(loop)
    }

    /// A `File` dropped (or closed) while reads are in flight keeps its descriptor open until
    /// they finish: a file opened meanwhile cannot take the descriptor's number and be read
    /// in its place. The descriptor is closed once the last read is done.
    @Test(arguments: [false, true])
    func readsInFlightKeepTheDescriptorUntilTheyFinish(closeExplicitly: Bool) throws {
        // Chunk i holds the byte i + 1; the other file holds 0xEE.
        let chunk = 64 * 1024, chunks = 8
        let patterns = (0..<chunks).map { [UInt8](repeating: UInt8($0 + 1), count: chunk) }
        let original = TemporaryFile(patterns.flatMap { $0 })
        let other = TemporaryFile([UInt8](repeating: 0xEE, count: chunk * chunks))
        defer { original.remove(); other.remove() }
        let loop = try Loop()
        // The reads start only once the File is gone and its number was taken again.
        let gate = ThreadPoolGate(loop: loop)
        var file: File? = File(adopting: open(original.path, O_RDONLY | O_CLOEXEC), loop: loop)
        var outcomes = [String?](repeating: nil, count: chunks)
        for index in 0..<chunks {
            file!.read(count: chunk, at: index * chunk) { result in
                switch result {
                case .success(let bytes):
                    let same = bytes.count == chunk
                        && memcmp(bytes.baseAddress!, patterns[index], chunk) == 0
                    outcomes[index] = same ? "ok" : "wrong bytes (first \(bytes.first ?? 0))"
                case .failure(let error):
                    outcomes[index] = "\(error)"
                }
            }
        }
        var closed = !closeExplicitly
        if closeExplicitly {
            file!.close { error in
                #expect(error == nil)
                #expect(!outcomes.contains(nil), "closed before the reads finished")
                closed = true
            }
        }
        file = nil
        // Takes the lowest free number: the original's, if the File let go of it too early.
        let reuser = open(other.path, O_RDONLY | O_CLOEXEC)
        defer { Glibc.close(reuser) }
        gate.open()
        run(loop) { closed && !outcomes.contains(nil) }
        #expect(outcomes == Array(repeating: "ok", count: chunks))
        #expect(!openDescriptors().contains { $0.target == original.path }, "descriptor leaked")
        closeCleanly(loop)
    }

    @Test func aReadInFlightWhenTheLoopClosesStillCompletesOnce() throws {
        let temporary = TemporaryFile(Array(repeating: 7, count: 1000))
        defer { temporary.remove() }
        let loop = try Loop()
        let file = File(adopting: open(temporary.path, O_RDONLY), loop: loop)
        var completions = 0
        file.read(count: 1000, at: 0) { _ in completions += 1 }
        closeCleanly(loop)  // Runs the loop until the request's callback has run.
        #expect(completions == 1)
    }
}
