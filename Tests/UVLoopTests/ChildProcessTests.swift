import CLibUV
import Glibc
import Testing
@testable import UVLoop

/// Reads a pipe to its end, keeping what it read; nil stands for a stream not asked for.
private final class Output {
    var bytes: [UInt8] = []
    var failure: UVError?
    /// Whether the end of input came and the pipe closed (always, for no pipe).
    var ended = false

    init(_ pipe: PipeConnection?) {
        guard let pipe else {
            ended = true
            return
        }
        let callbacks = StreamCallbacks<PipeConnection>()
        callbacks.onRead = { _, bytes in self.bytes.append(contentsOf: bytes) }
        callbacks.onFail = { pipe, error in
            self.failure = error
            pipe.close()
        }
        callbacks.onClose = { _ in self.ended = true }
        pipe.delegate = callbacks
        pipe.startReading()
    }

    var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// A child with its output and error read to their ends and its terminations recorded.
private final class Run {
    private final class Exits { var terminations: [ChildProcess.Termination] = [] }
    private let exits: Exits
    let child: ChildProcess
    let output: Output
    let errors: Output

    init(_ loop: Loop, _ options: ChildProcess.Options) throws(UVError) {
        let exits = Exits()
        self.exits = exits
        child = try ChildProcess.spawn(loop: loop, options) { _, termination in
            exits.terminations.append(termination)
        }
        output = Output(child.standardOutput)
        errors = Output(child.standardError)
    }

    var terminations: [ChildProcess.Termination] { exits.terminations }

    /// Whether the child was reaped and both its streams ended.
    var isOver: Bool { !terminations.isEmpty && output.ended && errors.ended }
}

/// The test process's descriptors above 2 that a child would inherit (no `FD_CLOEXEC`), with
/// what each links to: none that the process opened itself, only what its own parent left it.
private func inheritableDescriptors() -> [Int32: String] {
    var found: [Int32: String] = [:]
    for (descriptor, target) in openDescriptors() where descriptor > 2 {
        let flags = fcntl(descriptor, F_GETFD)
        if flags >= 0 && flags & FD_CLOEXEC == 0 { found[descriptor] = target }
    }
    return found
}

/// The descriptor of a stream's handle.
private func descriptor(of stream: StreamConnection) -> Int32 {
    var descriptor: uv_os_fd_t = -1
    uv_fileno(cuv_stream_as_handle(stream.stream), &descriptor)
    return descriptor
}

/// The descriptor of the socket listening on `port`, found among the open ones.
private func listeningDescriptor(port: Int) -> Int32 {
    for (descriptor, target) in openDescriptors() where target.hasPrefix("socket:") {
        var listening: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        var address = sockaddr_in()
        var addressLength = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &addressLength) }
        }
        if getsockopt(descriptor, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0, listening != 0,
           named == 0, address.sin_family == sa_family_t(AF_INET), Int(UInt16(bigEndian: address.sin_port)) == port {
            return descriptor
        }
    }
    return -1
}

/// A directory under /tmp for programs and files the tests make; removed by `remove()`.
private struct ScratchDirectory {
    let path: String

    init() {
        path = makeTemporaryDirectory("uvloop-child")
    }

    /// Writes a file `name` with `contents` and permissions `mode`; returns its path.
    @discardableResult
    func file(_ name: String, _ contents: String, mode: mode_t) -> String {
        let filePath = path + "/" + name
        let descriptor = open(filePath, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, mode)
        precondition(descriptor >= 0, "open failed")
        _ = Array(contents.utf8).withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        return filePath
    }

    func remove(_ names: [String]) {
        for name in names { unlink(path + "/" + name) }
        rmdir(path)
    }
}

/// Options for `executable` with `arguments` and none of the three pipes.
private func quiet(_ executable: String, _ arguments: [String] = []) -> ChildProcess.Options {
    var options = ChildProcess.Options(executable: executable, arguments: arguments)
    options.standardInput = false
    options.standardOutput = false
    options.standardError = false
    return options
}

@Suite("Child processes and their pipes")
struct ChildProcessTests {
    @Test func catEchoesItsStandardInputAndExitsWhenItIsShutDown() throws {
        let loop = try Loop()
        let run = try Run(loop, .init(executable: "/bin/cat"))
        let input = try #require(run.child.standardInput)
        var shutdownResults: [UVError?] = []
        input.write(Array("hello, ".utf8))
        input.write(Array("cat\n".utf8))
        input.shutdown { shutdownResults.append($0) }
        #expect(run.child.termination == nil)
        UVLoopTests.run(loop) { run.isOver }
        #expect(run.output.text == "hello, cat\n")
        #expect(run.errors.bytes.isEmpty)
        #expect(shutdownResults == [nil])
        #expect(run.terminations == [.exited(0)])
        #expect(run.child.termination == .exited(0))
        input.close()
        closeCleanly(loop)
    }

    /// The writer stops above 1 MiB queued and resumes on `transportDidWrite`; the reader
    /// pauses for a moment after every 4 MiB, so cat's output and then its input back up.
    @Test func sixtyFourMiBThroughCatArriveIntactWhileTheWriteQueueStaysBounded() throws {
        let loop = try Loop()
        let total = 64 << 20
        let highWater = 1 << 20
        let period = 65_521  // a prime: a byte lost, doubled or reordered shifts every later one
        var generator = SplitMix(state: 11)
        let pattern = (0..<period).map { _ in UInt8.random(in: 0...255, using: &generator) }
        var terminations: [ChildProcess.Termination] = []
        let child = try ChildProcess.spawn(loop: loop, .init(executable: "/bin/cat")) {
            terminations.append($1)
        }
        let input = try #require(child.standardInput)
        let output = try #require(child.standardOutput)
        _ = Output(child.standardError)

        var written = 0
        var largestQueue = 0
        var writeFailure: UVError?
        func writeMore() {
            guard written < total else { return }
            while written < total && input.queuedBytes <= highWater {
                let count = min(period, total - written)
                pattern.withUnsafeBytes { input.write(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
                written += count
                largestQueue = max(largestQueue, input.queuedBytes)
            }
            if written == total { input.shutdown() }
        }
        let writer = StreamCallbacks<PipeConnection>()
        writer.onWrite = { _ in writeMore() }
        writer.onFail = { pipe, error in
            writeFailure = error
            pipe.close()
        }
        input.delegate = writer

        var received = 0
        var mismatches = 0
        var pauses = 0
        var ended = false
        let resume = LoopTimer(loop: loop)
        let reader = StreamCallbacks<PipeConnection>()
        reader.onRead = { pipe, bytes in
            var index = 0
            while index < bytes.count {
                let phase = (received + index) % period
                let run = min(period - phase, bytes.count - index)
                let same = pattern.withUnsafeBytes {
                    memcmp($0.baseAddress! + phase, bytes.baseAddress! + index, run) == 0
                }
                if !same { mismatches += 1 }
                index += run
            }
            let before = received
            received += bytes.count
            if received / (4 << 20) != before / (4 << 20) {
                pauses += 1
                pipe.stopReading()
                resume.start(after: 2) { pipe.startReading() }
            }
        }
        reader.onEOF = { pipe in
            ended = true
            pipe.close()
        }
        output.delegate = reader
        output.startReading()
        writeMore()

        UVLoopTests.run(loop, seconds: 120) { ended && !terminations.isEmpty }
        #expect(writeFailure == nil)
        #expect(received == total)
        #expect(mismatches == 0)
        #expect(pauses >= 15)
        #expect(largestQueue <= highWater + period)
        #expect(terminations == [.exited(0)])
        resume.close()
        input.close()
        closeCleanly(loop)
    }

    @Test func outputAndErrorArriveApartAndTheExitStatusIsReported() throws {
        let loop = try Loop()
        var options = ChildProcess.Options(executable: "/bin/sh",
                                           arguments: ["-c", "echo out; echo err >&2; exit 3"])
        options.standardInput = false
        let run = try Run(loop, options)
        #expect(run.child.standardInput == nil)
        UVLoopTests.run(loop) { run.isOver }
        #expect(run.output.text == "out\n")
        #expect(run.errors.text == "err\n")
        #expect(run.terminations == [.exited(3)])
        closeCleanly(loop)
    }

    @Test func aSignalEndsTheChildAndLaterOnesAreHarmless() throws {
        let loop = try Loop()
        let run = try Run(loop, quiet("/bin/sleep", ["100"]))
        #expect(run.child.pid > 0)
        run.child.signal(SIGTERM)
        UVLoopTests.run(loop) { run.isOver }
        #expect(run.terminations == [.signalled(SIGTERM)])
        run.child.signal(SIGKILL)
        run.child.close()
        closeCleanly(loop)
        #expect(run.terminations == [.signalled(SIGTERM)])
    }

    @Test(arguments: [[], ["GREETING=hello world", "EMPTY=", "A=b=c"]])
    func theEnvironmentIsExactlyTheOneGiven(_ environment: [String]) throws {
        let loop = try Loop()
        let run = try Run(loop, .init(executable: "/usr/bin/env", environment: environment))
        UVLoopTests.run(loop) { run.isOver }
        #expect(run.output.text == environment.map { $0 + "\n" }.joined())
        #expect(run.terminations == [.exited(0)])
        closeCleanly(loop)
    }

    /// The loop ignores `SIGPIPE` in the test process; the child starts with none of the
    /// standard signals (1 to 31) ignored and none blocked, as a program expects. (libuv leaves
    /// the real-time signals alone: glibc uses some itself.)
    @Test func theChildStartsWithNoStandardSignalIgnoredOrBlocked() throws {
        let loop = try Loop()
        let run = try Run(loop, .init(executable: "/bin/grep", arguments: ["-E", "^Sig(Ign|Blk)", "/proc/self/status"]))
        UVLoopTests.run(loop) { run.isOver }
        var masks: [String: UInt64] = [:]
        for line in run.output.text.split(separator: "\n") {
            let fields = line.split(separator: "\t")
            masks[String(fields[0])] = fields.count == 2 ? UInt64(fields[1], radix: 16) : nil
        }
        #expect(masks["SigBlk:"] == 0)
        #expect(masks["SigIgn:"].map { $0 & 0x7FFF_FFFF } == 0)
        closeCleanly(loop)
    }

    @Test func theChildStartsInTheWorkingDirectoryGiven() throws {
        let directory = ScratchDirectory()
        defer { directory.remove([]) }
        let loop = try Loop()
        let run = try Run(loop, .init(executable: "/bin/pwd", workingDirectory: directory.path))
        UVLoopTests.run(loop) { run.isOver }
        #expect(run.output.text == directory.path + "\n")
        closeCleanly(loop)
    }

    /// A bare name is a file in the working directory, never a program found through `PATH`
    /// (the child's, nor the server's).
    @Test func aRelativeExecutableIsTakenFromTheWorkingDirectoryNotFromPATH() throws {
        let directory = ScratchDirectory()
        defer { directory.remove(["hello"]) }
        directory.file("hello", "#!/bin/sh\necho hello from $0\n", mode: 0o755)
        let loop = try Loop()
        let run = try Run(loop, .init(executable: "hello", workingDirectory: directory.path))
        UVLoopTests.run(loop) { run.isOver }
        #expect(run.output.text == "hello from hello\n")  // the kernel hands sh the path as given
        #expect(throws: UVError(code: -ENOENT)) {
            _ = try ChildProcess.spawn(loop: loop, .init(executable: "sh", environment: ["PATH=/bin:/usr/bin"],
                                                         workingDirectory: directory.path)) { _, _ in }
        }
        closeCleanly(loop)
    }

    /// Each failure leaves nothing open: the pipes asked for and the process handle are
    /// closed, so the loop closes without a leaked handle.
    @Test func aProgramThatCannotRunThrowsAndLeavesNothingOpen() throws {
        let directory = ScratchDirectory()
        defer { directory.remove(["data", "noshebang"]) }
        let data = directory.file("data", "#!/bin/sh\necho never\n", mode: 0o644)
        let noShebang = directory.file("noshebang", "echo run by a shell\n", mode: 0o755)
        let cases: [(ChildProcess.Options, UVError)] = [
            (.init(executable: directory.path + "/missing"), UVError(code: -ENOENT)),
            (.init(executable: data), UVError(code: -EACCES)),
            (.init(executable: noShebang), UVError(code: -4028)),  // UV_EFTYPE
            (.init(executable: "/bin/true", workingDirectory: directory.path + "/missing"), UVError(code: -ENOENT)),
            (.init(executable: "/bin/true", environment: ["NO_EQUALS_SIGN"]), .invalidArgument),
            (.init(executable: "/bin/true", environment: ["=value"]), .invalidArgument),
            (.init(executable: "/bin/echo", arguments: ["a\0b"]), .invalidArgument),
        ]
        let loop = try Loop()
        for (options, expected) in cases {
            #expect(throws: expected, "\(options.executable)") {
                _ = try ChildProcess.spawn(loop: loop, options) { _, _ in
                    Issue.record("a child that failed to start exited")
                }
            }
        }
        closeCleanly(loop)
    }

    /// Counted in a child process (an exit test), where no other test opens sockets meanwhile.
    @Test func aFailedSpawnLeavesNoDescriptorOpen() async {
        await #expect(processExitsWith: .success) {
            func socketCount() -> Int { openDescriptors().count { $0.target.hasPrefix("socket:") } }
            let loop = try Loop()
            let before = socketCount()
            for executable in ["/nonexistent/program", "/etc/hostname"] {
                _ = try? ChildProcess.spawn(loop: loop, .init(executable: executable)) { _, _ in }
            }
            try loop.close()
            exit(socketCount() == before ? EXIT_SUCCESS : EXIT_FAILURE)
        }
    }

    /// `ls -l /proc/self/fd` in a child, while the loop holds a listener, an accepted
    /// connection and its client, an open file and another child's pipes. Each of those is
    /// close-on-exec, and the child has 0 (here /dev/null), 1 and 2 (its pipes), the directory
    /// `ls` opened, and nothing else but what the test process itself was left by whatever
    /// started it without close-on-exec (a clean run has none; `swift test` may leave some).
    @Test func theChildInheritsNothingButItsStandardStreams() throws {
        let directory = ScratchDirectory()
        defer { directory.remove(["open"]) }
        let filePath = directory.file("open", "contents", mode: 0o644)
        let loop = try Loop()
        let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
        var accepted: TCPConnection?
        var client: TCPConnection?
        var file: File?
        listener.onConnection = { accepted = $0 }
        TCPConnection.connect(loop: loop, host: "127.0.0.1", port: listener.localAddress.port) {
            client = try? $0.get()
        }
        File.open(filePath, loop: loop) { file = try? $0.get() }
        let other = try Run(loop, .init(executable: "/bin/cat"))
        run(loop) { accepted != nil && client != nil && file != nil }
        let streams: [StreamConnection] = [accepted!, client!, other.child.standardInput!,
                                           other.child.standardOutput!, other.child.standardError!]
        let ours = streams.map(descriptor(of:)) + [file!.descriptor, uv_backend_fd(loop.raw),
                                                   listeningDescriptor(port: listener.localAddress.port)]
        #expect(ours.allSatisfy { $0 >= 0 && fcntl($0, F_GETFD) & FD_CLOEXEC != 0 })
        let oursByTarget = Set(openDescriptors().filter { ours.contains($0.descriptor) }.map(\.target))
        var fromTestProcess = inheritableDescriptors()

        var options = ChildProcess.Options(executable: "/bin/ls", arguments: ["-l", "/proc/self/fd"])
        options.standardInput = false
        let listing = try Run(loop, options)
        run(loop) { listing.isOver }
        fromTestProcess.merge(inheritableDescriptors()) { first, _ in first }
        var inherited: [Int32: String] = [:]
        for line in listing.output.text.split(separator: "\n") {
            guard let arrow = line.range(of: " -> "),
                  let number = line[..<arrow.lowerBound].split(separator: " ").last.flatMap({ Int32($0) })
            else { continue }
            inherited[number] = String(line[arrow.upperBound...])
        }
        #expect(listing.terminations == [.exited(0)])
        #expect(inherited[0] == "/dev/null")
        #expect(inherited[1]?.hasPrefix("socket:") == true)
        #expect(inherited[2]?.hasPrefix("socket:") == true)
        for (descriptor, target) in inherited where descriptor > 2 {
            if target.hasPrefix("/proc/") && target.hasSuffix("/fd") { continue }  // ls's own
            #expect(fromTestProcess[descriptor] == target, "descriptor \(descriptor) -> \(target)")
            #expect(!oursByTarget.contains(target), "descriptor \(descriptor) -> \(target)")
        }

        other.child.standardInput?.close()
        file?.close()
        listener.close()
        accepted?.close()
        client?.close()
        run(loop) { other.isOver }
        closeCleanly(loop)
    }

    @Test func eachPipeGoesOneWayAndWritingToAChildThatEndedFailsWithBrokenPipe() throws {
        let loop = try Loop()
        let run = try Run(loop, .init(executable: "/bin/true"))
        let input = try #require(run.child.standardInput)
        let output = try #require(run.child.standardOutput)
        #expect(input.remoteAddress == nil)
        let sent = [UInt8]("head".utf8).withUnsafeBytes { input.sendFile(prefix: $0, 0, offset: 0, count: 1) }
        #expect(sent == nil)
        var writeToTheReadEnd: [UVError?] = []
        output.write(Array("x".utf8)) { writeToTheReadEnd.append($0) }
        UVLoopTests.run(loop) { !writeToTheReadEnd.isEmpty }
        #expect(writeToTheReadEnd == [.brokenPipe])
        UVLoopTests.run(loop) { run.isOver }
        var lateWrite: [UVError?] = []
        input.write(Array("late".utf8)) { lateWrite.append($0) }
        UVLoopTests.run(loop) { !lateWrite.isEmpty }
        #expect(lateWrite == [.brokenPipe])
        input.close()
        closeCleanly(loop)
    }

    @Test func closingTheLoopKillsAndReapsAChildThatStillRuns() throws {
        let loop = try Loop()
        let run = try Run(loop, .init(executable: "/bin/sleep", arguments: ["100"]))
        let pid = run.child.pid
        #expect(kill(pid, 0) == 0)
        closeCleanly(loop)
        #expect(run.terminations == [.signalled(SIGKILL)])
        // Reaped, not a zombie: the process ID names no process any more.
        #expect(kill(pid, 0) == -1 && errno == ESRCH)
    }

    @Test func closingAChildKillsItAndItsHandleClosesOnceItIsReaped() throws {
        let loop = try Loop()
        let run = try Run(loop, quiet("/bin/sleep", ["100"]))
        run.child.close()
        run.child.close()
        UVLoopTests.run(loop) { run.isOver }
        #expect(run.terminations == [.signalled(SIGKILL)])
        #expect(run.child.termination == .signalled(SIGKILL))
        closeCleanly(loop)
    }
}
