/// Why a TLS context could not be made from its files, or why one connection's handshake
/// ended without a session.
public enum TLSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A certificate, key or password file cannot be read (missing, a directory, no
    /// permission); `reason` is the system's word for it.
    case unreadableFile(path: String, reason: String)
    /// The certificate file holds no usable PEM certificate chain.
    case invalidCertificate(path: String, reason: String)
    /// The key file holds no usable private key.
    case invalidPrivateKey(path: String, reason: String)
    /// The private key is encrypted and no password was given.
    case passwordRequired(path: String)
    /// The private key is encrypted and the password does not open it.
    case wrongPassword(path: String)
    /// The private key is not the one the certificate was made for.
    case keyMismatch(certificate: String, key: String)
    /// An ALPN protocol name is empty or longer than 255 bytes.
    case invalidALPNProtocol(String)
    /// The peer's handshake broke the protocol, or offered nothing this server accepts (an
    /// old TLS version, no common cipher or ALPN protocol); `reason` is OpenSSL's.
    case handshakeFailed(reason: String)
    /// The peer sent plain HTTP (it was answered, in plain HTTP, that this port speaks TLS).
    case plainHTTP
    /// The peer closed or reset the connection before the handshake was done.
    case peerClosed

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason):
            "cannot read '\(path)': \(reason)"
        case .invalidCertificate(let path, let reason):
            "no usable PEM certificate chain in '\(path)': \(reason)"
        case .invalidPrivateKey(let path, let reason):
            "no usable PEM private key in '\(path)': \(reason)"
        case .passwordRequired(let path):
            "the private key in '\(path)' is encrypted: give its password (--tls-password-file)"
        case .wrongPassword(let path):
            "the password does not decrypt the private key in '\(path)'"
        case .keyMismatch(let certificate, let key):
            "the private key in '\(key)' does not match the certificate in '\(certificate)'"
        case .invalidALPNProtocol(let name):
            "invalid ALPN protocol name '\(name)': it must be 1 to 255 bytes"
        case .handshakeFailed(let reason):
            "TLS handshake failed: \(reason)"
        case .plainHTTP:
            "plain HTTP was sent to a TLS port"
        case .peerClosed:
            "the peer closed the connection during the TLS handshake"
        }
    }
}
