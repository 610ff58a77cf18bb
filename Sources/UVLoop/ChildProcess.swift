import CLibUV
import Glibc

/// A program running as a child process (`posix_spawn`), with pipes to its standard streams.
///
/// The program is run directly: no shell, no `PATH` search, exactly the environment given.
/// It inherits no descriptor but its three standard streams (every other is closed in the
/// child, even one the server was itself handed without close-on-exec). Every signal is reset
/// to its default action and none is blocked in the child, so the `SIGPIPE` the server
/// ignores is fatal to the child again, as a program expects.
///
/// A child is always reaped (see `ChildReaper`): `onExit` runs, once, when it has been.
/// `close()` kills a child that still runs with `SIGKILL`; the loop's `close()` kills and
/// waits for every child still running: no child outlives its loop, and none is left a
/// zombie.
///
/// The child stays in the server's process group and session (it starts no session of its
/// own), so a signal to the group, such as
/// Ctrl-C at the terminal, reaches a CGI script as it reaches the server: the script dies with
/// the server. A server killed outright (`SIGKILL`) cannot take its children along; they see
/// their pipes close instead (an end of input, `EPIPE` on writing).
///
/// The standard streams are `PipeConnection`s with lives of their own: the owner reads and
/// writes them, closes them when it is done (the child's exit does not close them: output may
/// still be buffered in the pipe), and the loop's `close()` closes what is left.
public final class ChildProcess: LoopResource {
    /// What to run, and how.
    public struct Options: Sendable {
        /// The program's path, run as it is: never looked up in `PATH`, never handed to a
        /// shell. A relative path is taken from `workingDirectory` (the child's, once it has
        /// moved there), a bare name included.
        public var executable: String
        /// The arguments after `argv[0]`, which is `executable`.
        public var arguments: [String] = []
        /// The whole environment, as `NAME=value` entries: nothing of the server's is inherited.
        public var environment: [String] = []
        /// The directory the child starts in; nil for the server's.
        public var workingDirectory: String?
        /// Whether to make a pipe to the child's standard input (`standardInput`); without
        /// one the child reads `/dev/null`.
        public var standardInput = true
        /// Whether to make a pipe from the child's standard output; without one it goes to
        /// `/dev/null`.
        public var standardOutput = true
        /// Whether to make a pipe from the child's standard error; without one it goes to
        /// `/dev/null`.
        public var standardError = true

        /// Options to run `executable` with no arguments, an empty environment, the server's
        /// working directory and a pipe to each standard stream; set the rest as needed.
        public init(executable: String, arguments: [String] = [], environment: [String] = [],
                    workingDirectory: String? = nil) {
            self.executable = executable
            self.arguments = arguments
            self.environment = environment
            self.workingDirectory = workingDirectory
        }
    }

    /// How a child ended.
    public enum Termination: Equatable, Sendable {
        /// It exited with this status (0 to 255).
        case exited(Int32)
        /// A signal ended it (`SIGKILL`, `SIGTERM`, …).
        case signalled(Int32)
    }

    /// The loop the child's handle and pipes live on.
    public let loop: Loop
    /// The child's process ID. It names the child only until the child is reaped (`termination`
    /// set): the kernel may give it to another process after that.
    public let pid: Int32
    /// The write end of a pipe to the child's standard input, or nil when not asked for:
    /// `write` to it, `shutdown()` it for the child to read an end of input.
    public let standardInput: PipeConnection?
    /// The read end of a pipe from the child's standard output, or nil when not asked for:
    /// set a delegate and `startReading()`.
    public let standardOutput: PipeConnection?
    /// The read end of a pipe from the child's standard error, or nil when not asked for.
    public let standardError: PipeConnection?
    /// How the child ended, once it has been reaped; nil while it runs.
    public private(set) var termination: Termination?

    private var onExit: ((ChildProcess, Termination) -> Void)?
    /// Whether `close()` sent `SIGKILL`: the loop's `close()` may ask again, and one signal
    /// is enough.
    private var killSent = false

    private init(loop: Loop, pid: Int32, pipes: [PipeConnection?],
                 onExit: @escaping (ChildProcess, Termination) -> Void) {
        self.loop = loop
        self.pid = pid
        self.onExit = onExit
        standardInput = pipes[0]
        standardOutput = pipes[1]
        standardError = pipes[2]
    }

    /// Starts `options.executable` as a child process. Called on the loop thread, before the
    /// loop's `close()`.
    ///
    /// The child is made with `posix_spawn`, which glibc does with `vfork` semantics: the
    /// server's memory is not copied (a `fork` of a 14 MB server costs about 250 µs more of
    /// its CPU per child, and copy-on-write faults after it). The call returns once the child
    /// runs the program, so a program that cannot be run fails here, with nothing left open:
    /// no pipe, no child.
    /// - Parameters:
    ///   - onExit: runs once on the loop thread when the child has ended and been reaped,
    ///     with how it ended (also in `termination`). It may come before the child's output
    ///     has all been read: the pipes have their own ends of input.
    /// - Returns: the running child. It stays alive until it has been reaped, whether or not
    ///   the caller keeps it.
    /// - Throws: `UVError`: `ENOENT` (no such program, or no such working directory),
    ///   `EACCES` (not executable), `EFTYPE` (an executable file the kernel cannot run: one
    ///   that starts with neither `#!` nor a binary's header; no shell is tried), `EINVAL` (a
    ///   NUL byte in a string, an environment entry without a name and `=`), `EAGAIN`,
    ///   `EMFILE` or `ENOMEM` (no process or pipe could be made).
    public static func spawn(
        loop: Loop, _ options: Options, onExit: @escaping (ChildProcess, Termination) -> Void
    ) throws(UVError) -> ChildProcess {
        loop.assertOpen("ChildProcess.spawn")
        loop.assertOnLoopThread("ChildProcess.spawn")
        guard options.environment.allSatisfy({ $0.utf8.first != UInt8(ascii: "=") && $0.contains("=") })
        else { throw .invalidArgument }
        let strings = try CStrings(file: options.executable, arguments: [options.executable] + options.arguments,
                                   environment: options.environment,
                                   workingDirectory: options.workingDirectory)
        // The reaper watches SIGCHLD before the first child can send it.
        let reaper = loop.childReaper ?? ChildReaper(loop: loop)
        loop.childReaper = reaper

        // Each "pipe" is a pair of Unix stream sockets, as libuv makes them: the standard
        // input's can be half-closed (an end of input for the child while the server reads
        // on), which a pipe cannot. The child's end (blocking) goes to its standard stream,
        // the server's becomes a PipeConnection. Both are close-on-exec; dup2 onto 0-2 clears
        // the flag.
        var childEnds: [Int32] = []
        var serverEnds: [Int32] = []
        defer { for descriptor in childEnds where descriptor >= 0 { Glibc.close(descriptor) } }
        for (index, wanted) in [options.standardInput, options.standardOutput, options.standardError].enumerated() {
            guard wanted else {
                childEnds.append(-1)
                serverEnds.append(-1)
                continue
            }
            var ends: [Int32] = [-1, -1]
            guard cuv_socketpair_cloexec(&ends) == 0 else {
                let error = UVError(code: -errno)
                for descriptor in serverEnds where descriptor >= 0 { Glibc.close(descriptor) }
                throw error
            }
            // One way, as a pipe: the direction not used is shut, so the server reads an end
            // of input from the standard input's socket and cannot write to an output's.
            Glibc.shutdown(ends[1], Int32(index == 0 ? SHUT_RD : SHUT_WR))
            Glibc.shutdown(ends[0], Int32(index == 0 ? SHUT_WR : SHUT_RD))
            childEnds.append(ends[0])
            serverEnds.append(ends[1])
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (index, descriptor) in childEnds.enumerated() {
            if descriptor >= 0 {
                posix_spawn_file_actions_adddup2(&actions, descriptor, Int32(index))
            } else {
                posix_spawn_file_actions_addopen(&actions, Int32(index), "/dev/null",
                                                 index == 0 ? O_RDONLY : O_WRONLY, 0)
            }
        }
        // Nothing else crosses over, not even a descriptor the server was itself handed
        // without close-on-exec.
        cuv_spawn_add_closefrom(&actions, 3)
        if let directory = strings.workingDirectory { cuv_spawn_add_chdir(&actions, directory) }
        // The signals the server ignores or handles (SIGPIPE, SIGINT, ...) are the defaults
        // again in the child, and none is blocked, as a program expects.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        var pid: pid_t = 0
        // posix_spawn, not posix_spawnp: no PATH search (a bare name is taken from the working
        // directory), and glibc's posix_spawn tries no shell for a file the kernel cannot run.
        let status = withExtendedLifetime(strings) {
            posix_spawn(&pid, strings.file, &actions, &attributes, strings.arguments, strings.environment)
        }
        guard status == 0 else {
            for descriptor in serverEnds where descriptor >= 0 { Glibc.close(descriptor) }
            throw status == ENOEXEC ? UVError(code: Int32(UV_EFTYPE.rawValue)) : UVError(code: -status)
        }
        let pipes = serverEnds.map { descriptor in
            descriptor >= 0 ? PipeConnection(loop: loop, opening: descriptor) : nil
        }
        let child = ChildProcess(loop: loop, pid: pid, pipes: pipes, onExit: onExit)
        reaper.watch(child)
        return child
    }

    // MARK: Signals and the end

    /// Sends the signal `number` to the child. Does nothing once the child has been reaped
    /// (its process ID may name another process by then), nor where the kernel refuses (a
    /// set-user-ID program the server may not signal).
    public func signal(_ number: Int32) {
        guard termination == nil else { return }
        // The child is ours until reaped (a zombie still takes signals), so the kernel can
        // only refuse a signal number that does not exist, or a child that changed its user.
        let status = kill(pid, number)
        precondition(status == 0 || errno != EINVAL, "no signal \(number)")
    }

    /// Ends the child: sends `SIGKILL` if it still runs. `onExit` follows once it has been
    /// reaped (with `.signalled(SIGKILL)`, or how it ended if it ended first). The loop's
    /// `close()` kills and reaps every child still running. Calling it twice, or after the
    /// child ended, is harmless. The pipes are not touched: they close on their own.
    public func close() {
        guard termination == nil, !killSent else { return }
        killSent = true
        signal(SIGKILL)
    }

    /// The child was reaped with the `waitpid` status `status`.
    fileprivate func didExit(status: Int32) {
        loop.events &+= 1
        let signal = status & 0x7F
        let termination = signal != 0 ? Termination.signalled(signal) : .exited((status >> 8) & 0xFF)
        self.termination = termination
        let onExit = self.onExit
        self.onExit = nil
        onExit?(self, termination)
    }
}

/// Reaps a loop's children: on each `SIGCHLD` (a `uv_signal_t`, so on the loop thread), every
/// child still running is asked with `waitpid(pid, WNOHANG)`, and each that has ended is told.
/// Only this loop's children are waited for, by their process IDs: libuv's own children and
/// any other code's are left to their owners.
///
/// The handle keeps the loop running while a child runs, as a child's own handle would. At the
/// loop's `close()`, the children still running are killed and waited for, so none outlives
/// the loop or stays a zombie.
final class ChildReaper: LoopResource {
    let loop: Loop
    /// Owned by this reaper; `data` holds a retain of it, released in the close callback,
    /// which is also the only place the handle is freed.
    private let handle: UnsafeMutablePointer<uv_signal_t>
    private var children: [Int32: ChildProcess] = [:]
    private var isClosing = false

    init(loop: Loop) {
        self.loop = loop
        handle = .allocate(capacity: 1)
        // Neither call fails for a valid signal on an open loop.
        let initialized = uv_signal_init(loop.raw, handle)
        precondition(initialized == 0, "uv_signal_init failed: \(UVError(code: initialized))")
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        let started = uv_signal_start(handle, { handle, _ in
            Unmanaged<ChildReaper>.fromOpaque(handle!.pointee.data).takeUnretainedValue().reap()
        }, SIGCHLD)
        precondition(started == 0, "uv_signal_start failed: \(UVError(code: started))")
        uv_unref(cuv_signal_as_handle(handle))
    }

    func watch(_ child: ChildProcess) {
        if children.isEmpty { uv_ref(cuv_signal_as_handle(handle)) }
        children[child.pid] = child
    }

    private func reap() {
        for (pid, child) in children {
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { continue }
            children[pid] = nil
            child.didExit(status: status)
        }
        if children.isEmpty && !isClosing { uv_unref(cuv_signal_as_handle(handle)) }
    }

    /// Kills the children still running, waits for each, tells it, and closes the handle.
    func close() {
        guard !isClosing else { return }
        isClosing = true
        for pid in children.keys { kill(pid, SIGKILL) }
        for (pid, child) in children {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            child.didExit(status: status)
        }
        children = [:]
        loop.childReaper = nil
        uv_close(cuv_signal_as_handle(handle)) { handle in
            let reaper = Unmanaged<ChildReaper>.fromOpaque(handle!.pointee.data).takeRetainedValue()
            reaper.handle.deallocate()
        }
    }
}

@available(*, unavailable)
extension ChildProcess: Sendable {}
