import CLibUV
import Glibc

/// An IPv4 or IPv6 socket address: a numeric host and a port.
public struct SocketAddress: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The numeric host, `"127.0.0.1"` or `"::1"` (no brackets).
    public let host: String
    /// The port number.
    public let port: Int
    /// Whether this is an IPv6 address.
    public let isIPv6: Bool

    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Reads a `sockaddr_in` or `sockaddr_in6` as libuv and the kernel fill it in; nil for
    /// another family.
    init?(_ storage: UnsafePointer<sockaddr_storage>) {
        // uv_ip4_name and uv_ip6_name fail only for a buffer too small for the address (this
        // one fits any) or an unknown family (ruled out): a failure still yields nil, never a
        // host read from a buffer they did not fill.
        let capacity = Int(INET6_ADDRSTRLEN) + 1
        let named: (host: String, port: Int)?
        switch Int32(storage.pointee.ss_family) {
        case AF_INET:
            named = storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { name in
                    guard uv_ip4_name(sin, name.baseAddress, capacity) == 0 else { return nil }
                    return (String(cString: name.baseAddress!), Int(UInt16(bigEndian: sin.pointee.sin_port)))
                }
            }
        case AF_INET6:
            named = storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { name in
                    guard uv_ip6_name(sin6, name.baseAddress, capacity) == 0 else { return nil }
                    return (String(cString: name.baseAddress!), Int(UInt16(bigEndian: sin6.pointee.sin6_port)))
                }
            }
        default:
            named = nil
        }
        guard let named else { return nil }
        self.init(host: named.host, port: named.port, isIPv6: Int32(storage.pointee.ss_family) == AF_INET6)
    }

    /// The address libuv reports for a TCP handle through `query` (`uv_tcp_getpeername` or
    /// `uv_tcp_getsockname`); nil for an address family other than IPv4 and IPv6.
    static func of(
        _ handle: UnsafeMutablePointer<uv_tcp_t>,
        _ query: (UnsafePointer<uv_tcp_t>?, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<Int32>?) -> Int32
    ) throws(UVError) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        try UVError.check(query(handle, cuv_sockaddr_mut(&storage), &length))
        return SocketAddress(&storage)
    }

    init(host: String, port: Int, isIPv6: Bool) {
        self.host = host
        self.port = port
        self.isIPv6 = isIPv6
    }

    /// Turns a host and port into a `sockaddr_storage` for bind or connect.
    ///
    /// Numeric IPv4 and IPv6 addresses are used as they are; `""` means every IPv4 interface,
    /// as in Python; any other name is resolved once with `getaddrinfo` (a setup path only).
    static func resolve(host: String, port: Int) throws(UVError) -> sockaddr_storage {
        guard (0...65535).contains(port) else { throw .invalidArgument }
        var storage = sockaddr_storage()
        let numeric = host.isEmpty ? "0.0.0.0" : host
        let done: Bool = withUnsafeMutableBytes(of: &storage) { raw in
            let ip4 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
            if uv_ip4_addr(numeric, Int32(port), ip4) == 0 { return true }
            let ip6 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
            return uv_ip6_addr(numeric, Int32(port), ip6) == 0
        }
        if done { return storage }

        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else {
            throw .invalidArgument
        }
        defer { freeaddrinfo(result) }
        withUnsafeMutableBytes(of: &storage) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr,
                                                        count: Int(first.pointee.ai_addrlen)))
        }
        return storage
    }
}
