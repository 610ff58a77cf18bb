import COpenSSL
import Glibc

/// What a TLS server presents: its certificate chain and private key (Python's `certfile`,
/// `keyfile` and `password`), and the ALPN protocols it speaks.
public struct TLSConfiguration: Sendable, Equatable {
    /// The PEM file with the server's certificate, then any intermediate certificates; it may
    /// hold the private key too (Python's `certfile`).
    public var certificateChain: String
    /// The PEM file with the private key; nil when it is in `certificateChain` (`keyfile`).
    public var privateKey: String?
    /// The password of an encrypted private key (`password`).
    public var password: String?
    /// The ALPN protocols offered, most preferred first (`alpn_protocols`). A client that
    /// offers ALPN but none of these is refused (RFC 7301 §3.2); one that offers none is served.
    public var alpnProtocols: [String]
    /// Whether a client may resume an earlier session (a session ticket, or an ID the server
    /// remembers) instead of making a full handshake: on by default, as in OpenSSL and Python.
    public var sessionResumption: Bool

    /// A configuration with these files and settings; nothing is read until a `TLSContext`
    /// is made from it.
    public init(certificateChain: String, privateKey: String? = nil, password: String? = nil,
                alpnProtocols: [String] = ["http/1.1"], sessionResumption: Bool = true) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.password = password
        self.alpnProtocols = alpnProtocols
        self.sessionResumption = sessionResumption
    }
}

/// A server's TLS settings loaded into OpenSSL (an `SSL_CTX`): made once, then shared by every
/// `TLSConnection` it accepts. TLS 1.2 and 1.3 only; renegotiation is refused.
///
/// A context belongs to one loop thread: its connections share its scratch buffers, which is
/// what keeps an idle connection free of any (see `TLSConnection`).
public final class TLSContext {
    let raw: OpaquePointer
    /// The ALPN protocols in wire format (length-prefixed names), for the selection callback,
    /// which hands OpenSSL a pointer into it: allocated, so that it never moves.
    private let alpnWire: UnsafeMutableBufferPointer<UInt8>
    /// Plain text taken out of TLS records, handed to a connection's delegate. One record
    /// holds at most 16 KiB.
    let plaintext: UnsafeMutableRawBufferPointer
    /// TLS records produced by one call into OpenSSL, written to the TCP stream after it in
    /// one write; then emptied (see `TLSConnection.flush`).
    var records: [UInt8] = []
    /// The buffer `records` is swapped with while it is being written.
    var spareRecords: [UInt8] = []
    /// The BIO method that connects OpenSSL to a `TLSConnection`'s TCP stream.
    let bioMethod: OpaquePointer

    /// Loads the certificate chain and key and checks that they belong together.
    /// - Throws: `TLSError` naming the file and what is wrong with it.
    public init(_ configuration: TLSConfiguration) throws(TLSError) {
        var wire: [UInt8] = []
        for name in configuration.alpnProtocols {
            guard (1...255).contains(name.utf8.count) else { throw .invalidALPNProtocol(name) }
            wire.append(UInt8(name.utf8.count))
            wire.append(contentsOf: name.utf8)
        }
        let certificate = configuration.certificateChain
        let key = configuration.privateKey ?? certificate
        let certificateText = try Self.readFile(certificate)
        let keyText = key == certificate ? certificateText : try Self.readFile(key)

        guard let context = SSL_CTX_new(TLS_server_method()) else {
            throw .handshakeFailed(reason: Self.takeErrors())
        }
        ctls_configure_server(context, configuration.sessionResumption ? 1 : 0)
        do throws(TLSError) {
            try Self.load(certificate: certificate, key: key, encrypted: Self.isEncrypted(keyText),
                          hasKey: Self.containsPrivateKey(keyText), certificateText: certificateText,
                          password: configuration.password, into: context)
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        raw = context
        alpnWire = .allocate(capacity: wire.count)
        _ = alpnWire.initialize(from: wire)
        bioMethod = TLSConnection.makeBIOMethod()
        plaintext = .allocate(byteCount: 16 * 1024, alignment: 16)
        if !wire.isEmpty {
            SSL_CTX_set_alpn_select_cb(context, { _, out, outLength, offered, offeredLength, context in
                let wire = Unmanaged<TLSContext>.fromOpaque(context!).takeUnretainedValue().alpnWire
                var chosen: UnsafeMutablePointer<UInt8>?
                var chosenLength: UInt8 = 0
                let result = SSL_select_next_proto(&chosen, &chosenLength, wire.baseAddress, UInt32(wire.count),
                                                   offered, offeredLength)
                guard result == OPENSSL_NPN_NEGOTIATED, let chosen else {
                    return SSL_TLSEXT_ERR_ALERT_FATAL  // no_application_protocol (RFC 7301 §3.2)
                }
                out!.pointee = UnsafePointer(chosen)
                outLength!.pointee = chosenLength
                return SSL_TLSEXT_ERR_OK
            }, Unmanaged.passUnretained(self).toOpaque())
        }
    }

    deinit {
        SSL_CTX_free(raw)
        BIO_meth_free(bioMethod)
        alpnWire.deallocate()
        plaintext.deallocate()
    }

    // MARK: Loading

    private static func load(certificate: String, key: String, encrypted: Bool, hasKey: Bool,
                             certificateText: [UInt8], password: String?,
                             into context: OpaquePointer) throws(TLSError) {
        ERR_clear_error()
        guard SSL_CTX_use_certificate_chain_file(context, certificate) == 1 else {
            let reason = takeErrors()
            if !certificateText.containsSubsequence("-----BEGIN CERTIFICATE-----") {
                throw .invalidCertificate(path: certificate, reason: "no certificate in the file")
            }
            throw .invalidCertificate(path: certificate, reason: reason)
        }
        guard hasKey else {
            throw .invalidPrivateKey(path: key, reason: "no private key in the file")
        }
        if encrypted && password == nil { throw .passwordRequired(path: key) }
        // OpenSSL asks the callback for the password; without one set, it would prompt on
        // the terminal. The password is copied in for the load only.
        let secret = strdup(password ?? "")
        defer {
            if let secret {
                memset(secret, 0, strlen(secret))
                free(secret)
            }
        }
        SSL_CTX_set_default_passwd_cb(context) { buffer, size, _, secret in
            guard let buffer, let secret else { return -1 }
            let length = min(Int32(strlen(secret)), size)
            memcpy(buffer, secret, Int(length))
            return length
        }
        SSL_CTX_set_default_passwd_cb_userdata(context, secret)
        let loaded = SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1
        SSL_CTX_set_default_passwd_cb_userdata(context, nil)
        guard loaded else {
            let reason = takeErrors()
            // OpenSSL compares a key with the certificate already loaded as it loads it.
            if reason.contains("key values mismatch") { throw .keyMismatch(certificate: certificate, key: key) }
            if encrypted { throw .wrongPassword(path: key) }
            throw .invalidPrivateKey(path: key, reason: reason)
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            _ = takeErrors()
            throw .keyMismatch(certificate: certificate, key: key)
        }
    }

    /// The file's bytes, or `.unreadableFile` with the system's reason.
    private static func readFile(_ path: String) throws(TLSError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw .unreadableFile(path: path, reason: String(cString: strerror(errno)))
        }
        defer { Glibc.close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw .unreadableFile(path: path, reason: "not a regular file")
        }
        guard info.st_size <= 1 << 20 else {
            throw .unreadableFile(path: path, reason: "larger than 1 MiB: not a PEM file")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + filled, $0.count - filled) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                throw .unreadableFile(path: path, reason: String(cString: strerror(errno)))
            }
            filled += count
        }
        return bytes
    }

    /// Whether a PEM file's private key is encrypted (PKCS #8 or the older `Proc-Type`).
    private static func isEncrypted(_ text: [UInt8]) -> Bool {
        text.containsSubsequence("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            || text.containsSubsequence("Proc-Type: 4,ENCRYPTED")
    }

    private static func containsPrivateKey(_ text: [UInt8]) -> Bool {
        text.containsSubsequence("PRIVATE KEY-----")
    }

    /// The reasons on OpenSSL's error queue for this thread, oldest first; empties it.
    static func takeErrors() -> String {
        var reasons: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            if let reason = ERR_reason_error_string(code) {
                reasons.append(String(cString: reason))
            } else {
                reasons.append("OpenSSL error \(code)")
            }
        }
        return reasons.isEmpty ? "unknown error" : reasons.joined(separator: "; ")
    }
}

@available(*, unavailable)
extension TLSContext: Sendable {}

extension [UInt8] {
    fileprivate func containsSubsequence(_ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { start in
            self[start] == needle[0] && self[start..<(start + needle.count)].elementsEqual(needle)
        }
    }
}
