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
/// delivers an end of input. The pipe outlives the child: its owner closes it (after its end of
/// input, say), and the loop's `close()` closes what is left.
public final class PipeConnection: StreamConnection {
    /// Takes over `descriptor`, one end of a pipe (made non-blocking here).
    init(loop: Loop, opening descriptor: Int32) {
        let handle = UnsafeMutablePointer<uv_pipe_t>.allocate(capacity: 1)
        // uv_pipe_init only fills in the struct (no descriptor, no IPC) and always returns 0,
        // and uv_pipe_open of a pipe's descriptor fails only when it is not one: a failure is
        // a libuv (or a caller) that broke its contract. Stop rather than use it.
        let status = uv_pipe_init(loop.raw, handle, 0)
        precondition(status == 0, "uv_pipe_init failed: \(UVError(code: status))")
        let opened = uv_pipe_open(handle, descriptor)
        precondition(opened == 0, "uv_pipe_open failed: \(UVError(code: opened))")
        super.init(loop: loop, stream: cuv_pipe_as_stream(handle))
    }
}
