import CLibUV

/// One end of a pipe (`uv_pipe_t`): a child process's standard input, output or error, as
/// `ChildProcess.spawn` makes them.
///
/// A `StreamConnection` with a TCP connection's semantics: reads through the delegate from
/// the loop's shared buffer, ordered writes with `queuedBytes` for backpressure, `shutdown`
/// (on the standard input: the child reads an end of input once every queued write has
/// left) and `close`. A pipe has no `remoteAddress` and sends no file as it is.
///
/// The end is open in one direction only: the standard input is written, the standard output
/// and error are read. Writing to a read end fails with `.brokenPipe`; reading a write end
/// delivers nothing. The pipe outlives the child: its owner closes it (after its end of
/// input, say), and the loop's `close()` closes what is left.
public final class PipeConnection: StreamConnection {
    /// Makes a pipe handle with no descriptor yet: `uv_spawn` opens it.
    init(loop: Loop) {
        let handle = UnsafeMutablePointer<uv_pipe_t>.allocate(capacity: 1)
        // uv_pipe_init only fills in the struct (no descriptor, no IPC) and always returns 0:
        // a failure is a libuv that broke its contract. Stop rather than use it.
        let status = uv_pipe_init(loop.raw, handle, 0)
        precondition(status == 0, "uv_pipe_init failed: \(UVError(code: status))")
        super.init(loop: loop, stream: cuv_pipe_as_stream(handle))
    }
}
