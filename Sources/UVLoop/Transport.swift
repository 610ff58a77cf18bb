/// A byte stream that an application protocol runs over: a TCP connection now; TLS over a
/// TCP connection, or a pipe to a child process, later.
///
/// The protocol layer above (HTTP) sees only this: it writes, pauses and resumes reading,
/// half-closes and closes, and hears back through its `TransportDelegate`. It never asks
/// which transport it has. Every member is used on the loop thread.
///
/// Ownership: the transport is owned by whatever keeps its handle open (for a TCP
/// connection, the handle's `data`, until the close callback), and it holds its delegate
/// strongly until `transportDidClose`, its last call, after which it lets go.
public protocol Transport: AnyObject {
    /// Who hears reads, end of input, failures, drained writes and the close.
    var delegate: (any TransportDelegate)? { get set }
    /// Whether the transport is open (neither closing nor closed).
    var isOpen: Bool { get }
    /// Whether reads are being delivered.
    var isReading: Bool { get }
    /// Bytes accepted by `write` that have not left yet: the measure for backpressure.
    var queuedBytes: Int { get }
    /// The peer's address, where the transport has one (a pipe has none).
    var remoteAddress: SocketAddress? { get }

    /// Starts delivering reads to the delegate. Harmless when already reading or closing.
    func startReading()
    /// Stops delivering reads; the peer feels backpressure once the buffers below fill.
    func stopReading()
    /// Writes `bytes` after everything written before. The bytes are borrowed for the call:
    /// what cannot leave at once is copied. `completion`, when given, runs exactly once with
    /// nil or the error; without one, a failure reaches the delegate's `transport(_:didFail:)`.
    func write(_ bytes: UnsafeRawBufferPointer, completion: ((UVError?) -> Void)?)
    /// Writes `prefix`, then sends up to `count` bytes of the open file `descriptor` from
    /// `offset` without copying them through user space (`sendfile(2)`), if the transport
    /// can. The file's bytes go only when nothing written before is still queued (so the
    /// order holds); returns how many left now: 0 when writes are queued or the socket's
    /// buffer is full (`write` something to learn when it drains). `prefix` (a response
    /// head) is always taken, like a `write`, and leaves in the same segment as the file's
    /// first bytes where it can. nil when the transport cannot send a file's bytes as they
    /// are (TLS must encrypt them); then nothing was written: read and `write` them instead.
    func sendFile(prefix: UnsafeRawBufferPointer, _ descriptor: Int32, offset: Int,
                  count: Int) -> Result<Int, UVError>?
    /// Half-closes once every queued write has left: the peer reads an end of input.
    func shutdown(completion: ((UVError?) -> Void)?)
    /// Closes at once; queued writes are cancelled. `transportDidClose` follows, later.
    /// Calling it twice is harmless.
    func close()
}

extension Transport {
    /// A transport sends no file as it is unless it says it can.
    public func sendFile(prefix: UnsafeRawBufferPointer, _ descriptor: Int32, offset: Int,
                         count: Int) -> Result<Int, UVError>? { nil }

    /// Writes `bytes` with no completion (failures reach the delegate).
    public func write(_ bytes: UnsafeRawBufferPointer) {
        write(bytes, completion: nil)
    }

    /// Writes the bytes of an array (see `write(_:completion:)`).
    public func write(_ bytes: [UInt8], completion: ((UVError?) -> Void)? = nil) {
        bytes.withUnsafeBytes { write($0, completion: completion) }
    }
}

/// What a `Transport` tells its owner. Every method is called on the loop thread, and not
/// from inside a call the owner made on the transport, with one exception: a write the
/// kernel refuses at once (the peer is gone) reports its failure before `write` returns.
public protocol TransportDelegate: AnyObject {
    /// Bytes arrived. `bytes` is borrowed (from the loop's shared read buffer, for TCP) and
    /// valid only during the call: copy what must outlive it.
    func transport(_ transport: any Transport, didRead bytes: UnsafeRawBufferPointer)
    /// The peer half-closed its side; reading has stopped. Writing may still work.
    func transportDidReadEOF(_ transport: any Transport)
    /// Reading, or a write without a completion, failed (a reset, for instance). The
    /// transport is still open: the owner decides when to close it.
    func transport(_ transport: any Transport, didFail error: UVError)
    /// A write that had to be queued has left; `queuedBytes` is lower now.
    func transportDidWrite(_ transport: any Transport)
    /// The transport is closed and its resources freed. The last call the delegate gets.
    func transportDidClose(_ transport: any Transport)
}

extension TransportDelegate {
    public func transportDidWrite(_ transport: any Transport) {}
}
