import TLSTransport

/// A certificate chain and private key to serve HTTPS with, and the ALPN protocols offered.
/// (Declared in the TLSTransport module; named here so that users of this one need no other
/// import.)
public typealias TLSConfiguration = TLSTransport.TLSConfiguration
/// Why a certificate or key cannot be used, or why a TLS handshake ended.
public typealias TLSError = TLSTransport.TLSError

/// An HTTP server that speaks HTTPS: Python 3.14's `HTTPSServer`.
///
/// The handshake runs on the loop like everything else (TLS 1.2 and 1.3; ALPN `http/1.1`);
/// a client gets `configuration.handshakeTimeout` (10 s) to finish it. A plain-HTTP request
/// sent to the port is answered with a plain-text 400 that says so, and logged. Handlers see
/// no difference: `HTTPServer(_:_:tls:)` is the same server, spelled without the subclass.
open class HTTPSServer: HTTPServer, @unchecked Sendable {
    /// Loads the certificate chain and key, then binds `address` and listens.
    /// - Parameters:
    ///   - address: the host and the port (0 for any free port), as `HTTPServer`'s.
    ///   - handler: the handler class; one instance serves each connection.
    ///   - certfile: PEM file with the certificate chain (it may hold the key too).
    ///   - keyfile: PEM file with the private key, when it is not in `certfile`.
    ///   - password: the password of an encrypted key.
    ///   - alpnProtocols: the ALPN protocols offered (default `["http/1.1"]`).
    /// - Throws: `TLSError` for a missing or unreadable file, no certificate or key in it, a
    ///   key that is encrypted without a password or with the wrong one, or a key that does
    ///   not match the certificate; `UVError`, for example `.addressInUse`.
    public init(_ address: (host: String, port: Int), _ handler: BaseHTTPRequestHandler.Type,
                certfile: String, keyfile: String? = nil, password: String? = nil,
                alpnProtocols: [String] = ["http/1.1"]) throws {
        try super.init(address, handler, tls: TLSConfiguration(
            certificateChain: certfile, privateKey: keyfile, password: password, alpnProtocols: alpnProtocols))
    }

}
