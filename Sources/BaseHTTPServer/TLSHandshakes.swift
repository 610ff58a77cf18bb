import TLSTransport
import UVLoop

/// An HTTPS server's connections before they speak HTTP: the certificate and key they all
/// share, and those whose TLS handshake is under way, each with the time it began on the
/// server's deadline clock. A connection leaves when its handshake ends (it becomes one of
/// the server's HTTP connections if it succeeded) or when it is closed here. Loop thread only.
final class TLSHandshakes {
    private let context: TLSContext
    /// What a client that sends plain HTTP to the HTTPS port is answered.
    private let plainHTTPReply = TLSHandshakes.makePlainHTTPReply()
    private var pending: [ObjectIdentifier: (connection: TLSConnection, start: UInt64)] = [:]

    /// Loads the certificate chain and key.
    /// - Throws: `TLSError` when they cannot be used.
    init(_ configuration: TLSConfiguration) throws(TLSError) {
        context = try TLSContext(configuration)
    }

    /// The handshakes under way.
    var count: Int { pending.count }

    /// Starts the handshake of the connection `tcp` accepted at `now`. `ended` hears how it
    /// ended, unless it was closed here first.
    func begin(over tcp: TCPConnection, at now: UInt64,
               _ ended: @escaping (TLSConnection, TLSError?) -> Void) {
        let tls = TLSConnection(over: tcp, context: context, plainHTTPReply: plainHTTPReply,
                                onHandshakeEnd: ended)
        pending[ObjectIdentifier(tls)] = (tls, now)
    }

    /// Lets go of a connection whose handshake ended: false when it was no longer under way
    /// (closed here already).
    func end(_ tls: TLSConnection) -> Bool {
        pending.removeValue(forKey: ObjectIdentifier(tls)) != nil
    }

    /// Closes every handshake under way (they have no request yet); returns how many.
    @discardableResult
    func closeAll() -> Int {
        let closing = pending.values
        pending.removeAll()
        for (connection, _) in closing { connection.close() }
        return closing.count
    }

    /// Closes the handshakes that began `limit` milliseconds or more before `now` (a client
    /// that connects and stalls, or trickles its hello); returns how many.
    func closeLate(now: UInt64, limit: UInt64) -> Int {
        let late = pending.values.filter { now &- $0.start >= limit }
        for (connection, _) in late {
            pending.removeValue(forKey: ObjectIdentifier(connection))
            connection.close()
        }
        return late.count
    }

    /// The plain-text answer to plain HTTP on the HTTPS port (nginx answers so too).
    private static func makePlainHTTPReply() -> [UInt8] {
        let body = "400 Bad Request: this port speaks HTTPS, and the request came in plain HTTP.\n"
            + "Use an https:// URL.\n"
        let head = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        return Array((head + body).utf8)
    }
}

@available(*, unavailable)
extension TLSHandshakes: Sendable {}
