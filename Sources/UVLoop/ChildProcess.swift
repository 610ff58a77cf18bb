import CLibUV
import Glibc

/// A program running as a child process (`uv_spawn`), with pipes to its standard streams.
///
/// The program is run directly: no shell, no `PATH` search, exactly the environment given.
/// It inherits no descriptor the server opened but its three standard streams: every
/// descriptor libuv and this package open is close-on-exec. (One the server process was itself
/// given without close-on-exec by whatever started it passes on, as it would through any
/// `exec`.) libuv resets the standard signals (1 to 31) to their default actions and empties
/// the signal mask in the child, so the `SIGPIPE` the server ignores is fatal to the child
/// again, as a program expects.
///
/// A child is always reaped. Its handle stays open until libuv has collected its exit status,
/// then `onExit` runs, once, and the handle closes. `close()` (and so the loop's `close()`)
/// kills a child that still runs with `SIGKILL`, and the handle closes once that child is
/// reaped: no child outlives its loop, and none is left a zombie.
///
/// The child stays in the server's process group and session (libuv's `UV_PROCESS_DETACHED`,
/// which would start a session of its own, is not used), so a signal to the group, such as
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

    /// Owned by this object; `data` holds a retain of it from the spawn on, released in the
    /// close callback, which is also the only place the handle is freed. The handle closes
    /// only after the exit callback: libuv reaps the child only while its handle is open.
    private let handle: UnsafeMutablePointer<uv_process_t>
    private var onExit: ((ChildProcess, Termination) -> Void)?
    /// Whether `close()` sent `SIGKILL`: the loop's `close()` asks again in each round until
    /// the handle closes, and one signal is enough.
    private var killSent = false

    private init(loop: Loop, handle: UnsafeMutablePointer<uv_process_t>, pipes: [PipeConnection?],
                 onExit: @escaping (ChildProcess, Termination) -> Void) {
        self.loop = loop
        self.handle = handle
        self.onExit = onExit
        pid = handle.pointee.pid
        standardInput = pipes[0]
        standardOutput = pipes[1]
        standardError = pipes[2]
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    static func owner(of handle: UnsafeMutablePointer<uv_process_t>) -> ChildProcess {
        Unmanaged<ChildProcess>.fromOpaque(handle.pointee.data).takeUnretainedValue()
    }

    /// Starts `options.executable` as a child process. Called on the loop thread, before the
    /// loop's `close()`.
    ///
    /// The call returns once the child runs the program (libuv waits for the `exec`), so a
    /// program that cannot be run fails here, with nothing left open: no handle, no pipe, no
    /// child.
    /// - Parameters:
    ///   - onExit: runs once on the loop thread when the child has ended and been reaped,
    ///     with how it ended (also in `termination`). It may come before the child's output
    ///     has all been read: the pipes have their own ends of input.
    /// - Returns: the running child. It stays alive until it has been reaped, whether or not
    ///   the caller keeps it.
    /// - Throws: `UVError`: `ENOENT` (no such program, or no such working directory),
    ///   `EACCES` (not executable), `EFTYPE` (an executable file that starts with neither
    ///   `#!` nor a binary's header, which glibc would hand to `/bin/sh`), `EINVAL` (a NUL
    ///   byte in a string, an environment entry without a name and `=`), `EAGAIN` or
    ///   `ENOMEM` (no process could be made).
    public static func spawn(
        loop: Loop, _ options: Options, onExit: @escaping (ChildProcess, Termination) -> Void
    ) throws(UVError) -> ChildProcess {
        loop.assertOpen("ChildProcess.spawn")
        loop.assertOnLoopThread("ChildProcess.spawn")
        // libuv runs the program with execvp, which searches PATH for a name without a slash.
        let file = options.executable.contains("/") ? options.executable : "./" + options.executable
        guard options.environment.allSatisfy({ $0.utf8.first != UInt8(ascii: "=") && $0.contains("=") })
        else { throw .invalidArgument }
        let strings = try CStrings(file: file, arguments: [options.executable] + options.arguments,
                                   environment: options.environment,
                                   workingDirectory: options.workingDirectory)
        try refuseShellFallback(file, in: options.workingDirectory)

        let pipes = [options.standardInput, options.standardOutput, options.standardError].map {
            $0 ? PipeConnection(loop: loop) : nil
        }
        var stdio = pipes.enumerated().map(stdioContainer)
        let handle = UnsafeMutablePointer<uv_process_t>.allocate(capacity: 1)
        var uvOptions = uv_process_options_t()
        uvOptions.exit_cb = { handle, status, signal in
            ChildProcess.owner(of: handle!).didExit(status: status, signal: signal)
        }
        uvOptions.file = UnsafePointer(strings.file)
        uvOptions.args = strings.arguments
        // Never nil, even when empty: nil would hand the child the server's environment.
        uvOptions.env = strings.environment
        uvOptions.cwd = UnsafePointer(strings.workingDirectory)
        uvOptions.flags = 0  // Not detached: see the class's comment.
        let status = stdio.withUnsafeMutableBufferPointer { stdio in
            uvOptions.stdio_count = Int32(stdio.count)
            uvOptions.stdio = stdio.baseAddress
            return withExtendedLifetime(strings) { uv_spawn(loop.raw, handle, &uvOptions) }
        }
        guard status == 0 else {
            // uv_spawn initialised the handle (and opened the pipes when only the exec failed;
            // libuv has reaped that child), so each closes, and only its close callback frees it.
            for pipe in pipes { pipe?.close() }
            handle.pointee.data = nil
            uv_close(cuv_process_as_handle(handle)) { handle in
                UnsafeMutableRawPointer(handle!).assumingMemoryBound(to: uv_process_t.self).deallocate()
            }
            throw UVError(code: status)
        }
        return ChildProcess(loop: loop, handle: handle, pipes: pipes, onExit: onExit)
    }

    /// What `uv_spawn` makes of the standard stream `index` (0, 1, 2): `pipe`'s other end, or
    /// `/dev/null` without one.
    private static func stdioContainer(_ index: Int, _ pipe: PipeConnection?) -> uv_stdio_container_t {
        var container = uv_stdio_container_t()
        if let pipe {
            // The flags say what the child does with the pipe: it reads its standard input.
            let direction = index == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE
            container.flags = uv_stdio_flags(UV_CREATE_PIPE.rawValue | direction.rawValue)
            container.data.stream = pipe.stream
        } else {
            container.flags = UV_IGNORE  // libuv opens /dev/null for the three standard streams
        }
        return container
    }

    // MARK: Signals and the end

    /// Sends the signal `number` to the child (`uv_process_kill`). Does nothing once the child
    /// has been reaped (its process ID may name another process by then), nor where the
    /// kernel refuses (a set-user-ID program the server may not signal).
    public func signal(_ number: Int32) {
        guard termination == nil else { return }
        let status = uv_process_kill(handle, number)
        // The child is ours until reaped (a zombie still takes signals), so libuv can only
        // refuse a signal number that does not exist, or a child that changed its user.
        precondition(status != Int32(UV_EINVAL.rawValue), "no signal \(number)")
    }

    /// Ends the child: sends `SIGKILL` if it still runs. Its handle closes once libuv has
    /// reaped it, after `onExit` (with `.signalled(SIGKILL)`, or how it ended if it ended
    /// first). The loop's `close()` calls it, and waits. Calling it twice, or after the
    /// child ended, is harmless. The pipes are not touched: they close on their own.
    public func close() {
        guard termination == nil, !killSent else { return }
        killSent = true
        signal(SIGKILL)
    }

    private func didExit(status: Int64, signal: Int32) {
        loop.events &+= 1
        let termination = signal != 0
            ? Termination.signalled(signal) : .exited(Int32(truncatingIfNeeded: status))
        self.termination = termination
        let onExit = self.onExit
        self.onExit = nil
        onExit?(self, termination)
        uv_close(cuv_process_as_handle(handle)) { handle in
            let process = UnsafeMutableRawPointer(handle!).assumingMemoryBound(to: uv_process_t.self)
            ChildProcess.owner(of: process).didClose()
        }
    }

    private func didClose() {
        handle.deallocate()
        Unmanaged.passUnretained(self).release()
    }
}

@available(*, unavailable)
extension ChildProcess: Sendable {}
