import CLibUV

/// A failure reported by libuv: a negative `UV_E*` code with libuv's name and message for it.
public struct UVError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The libuv error code, always negative (for example `UV_EADDRINUSE`).
    public let code: Int32

    /// Wraps a negative libuv status code.
    public init(code: Int32) {
        self.code = code
    }

    /// libuv's short name for the code, such as `"EADDRINUSE"`.
    public var name: String { String(cString: uv_err_name(code)) }

    /// libuv's human-readable message for the code, such as `"address already in use"`.
    public var message: String { String(cString: uv_strerror(code)) }

    public var description: String { "\(name): \(message)" }

    /// The end of a stream reached in an orderly way (the peer half-closed).
    public static let endOfFile = UVError(code: Int32(UV_EOF.rawValue))
    /// The operation was cancelled because its handle closed.
    public static let cancelled = UVError(code: Int32(UV_ECANCELED.rawValue))
    /// The stream is closed or closing; nothing can be written to it.
    public static let brokenPipe = UVError(code: Int32(UV_EPIPE.rawValue))
    /// The peer reset the connection.
    public static let connectionReset = UVError(code: Int32(UV_ECONNRESET.rawValue))
    /// The address is already bound by another socket.
    public static let addressInUse = UVError(code: Int32(UV_EADDRINUSE.rawValue))
    /// The host is not a numeric address and could not be resolved.
    public static let invalidArgument = UVError(code: Int32(UV_EINVAL.rawValue))
    /// The process is out of file descriptors.
    public static let tooManyOpenFiles = UVError(code: Int32(UV_EMFILE.rawValue))
}

extension UVError {
    /// Throws a `UVError` when `status` is a libuv error code; returns it unchanged otherwise.
    @discardableResult
    static func check(_ status: Int32) throws(UVError) -> Int32 {
        if status < 0 { throw UVError(code: status) }
        return status
    }
}
