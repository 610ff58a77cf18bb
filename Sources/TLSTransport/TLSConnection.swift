import COpenSSL
import UVLoop

/// The server side of a TLS session over one TCP stream: a `Transport` whose delegate reads
/// and writes plain text while ciphertext crosses the TCP connection below.
///
/// OpenSSL never touches the socket. A custom BIO hands it the ciphertext of each TCP read
/// (borrowed from the loop's read buffer; only what OpenSSL has not taken yet is copied)
/// and collects the records it produces, which go to the TCP stream in one write after each
/// call into OpenSSL. No thread, no second socket layer, no buffer held while idle: with
/// `SSL_MODE_RELEASE_BUFFERS` an idle connection keeps only its `SSL` object.
///
/// The handshake runs first, with no delegate: `onHandshakeEnd` hears how it ended, and the
/// owner then sets a delegate (the HTTP connection) and starts reading. A peer whose first
/// bytes are plain HTTP is sent `plainHTTPReply` (if given) and the connection closes.
///
/// Every member is used on the loop thread. The TCP connection holds this object (as its
/// delegate) until it has closed; this object holds its own delegate until the same moment.
public final class TLSConnection: Transport, TransportDelegate {
    /// The TCP stream that carries the records.
    public let tcp: TCPConnection
    private let context: TLSContext
    /// The `SSL` object; nil once the TCP connection has closed.
    private var ssl: OpaquePointer?
    public var delegate: (any TransportDelegate)?
    private var onHandshakeEnd: ((TLSConnection, TLSError?) -> Void)?
    private let plainHTTPReply: [UInt8]?

    private enum Phase {
        /// Exchanging handshake messages; no delegate yet.
        case handshaking
        /// The session is up: the delegate's plain text flows.
        case established
        /// Plain HTTP came: the reply is being sent, then the connection closes.
        case refusing
        case closing
        case closed
    }
    private var phase = Phase.handshaking
    private var sawInput = false
    /// Whether the delegate wants reads.
    private var wantsReading = false
    /// Ciphertext received that OpenSSL has not taken: what was left when the delegate
    /// stopped reading. Usually empty.
    private var input: [UInt8] = []
    /// The ciphertext OpenSSL reads from during a call (the BIO's source), and how much of it
    /// it has taken.
    private var window = UnsafeRawBufferPointer(start: nil, count: 0)
    private var windowOffset = 0
    /// Whether the TCP stream has ended (the peer half-closed).
    private var peerEnded = false
    private var endDelivered = false
    /// Whether the session broke (a protocol error, a reset): no `close_notify` is sent.
    private var failed = false
    private var closeNotifySent = false
    /// Whether OpenSSL's input is being processed (nothing re-enters it), and whether a call
    /// during it asked for another round.
    private var processing = false
    private var processAgain = false
    /// Runs processing on a later loop turn, when reading resumes with input waiting.
    private var laterTimer: LoopTimer?

    /// Starts the server side of a handshake on `tcp`, which this connection takes over as its
    /// delegate; it reads at once.
    /// - Parameters:
    ///   - plainHTTPReply: what to send a peer whose first bytes are plain HTTP, not a TLS
    ///     record (a response that says so); nil closes such a connection without a word.
    ///   - onHandshakeEnd: called once when the handshake ends (nil: the session is up; set
    ///     a delegate and start reading), unless `close()` ended it first.
    public init(over tcp: TCPConnection, context: TLSContext, plainHTTPReply: [UInt8]? = nil,
                onHandshakeEnd: @escaping (TLSConnection, TLSError?) -> Void) {
        self.tcp = tcp
        self.context = context
        self.plainHTTPReply = plainHTTPReply
        self.onHandshakeEnd = onHandshakeEnd
        // SSL_new and BIO_new fail only when memory does.
        guard let ssl = SSL_new(context.raw), let bio = BIO_new(context.bioMethod) else {
            fatalError("TLSConnection: OpenSSL could not allocate a session")
        }
        BIO_set_data(bio, Unmanaged.passUnretained(self).toOpaque())
        BIO_set_init(bio, 1)
        SSL_set_bio(ssl, bio, bio)  // one reference, owned by the SSL object
        SSL_set_accept_state(ssl)
        self.ssl = ssl
        tcp.delegate = self
        tcp.startReading()
    }

    deinit {
        if let ssl { SSL_free(ssl) }
    }

    // MARK: Transport

    public var isOpen: Bool { phase == .handshaking || phase == .established }
    public var isReading: Bool { wantsReading }
    /// Ciphertext not yet sent: backpressure is measured on what the TCP stream holds.
    public var queuedBytes: Int { tcp.queuedBytes }
    public var remoteAddress: SocketAddress? { tcp.remoteAddress }

    /// The ALPN protocol agreed on in the handshake, if the client offered any.
    public var alpnProtocol: String? {
        guard let ssl else { return nil }
        var name: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &name, &length)
        guard let name, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: name, count: Int(length)), as: UTF8.self)
    }

    /// The protocol version of the session, such as `"TLSv1.3"`.
    public var protocolVersion: String? {
        guard let ssl else { return nil }
        return String(cString: SSL_get_version(ssl))
    }

    public func startReading() {
        guard phase == .established, !wantsReading, !endDelivered else { return }
        wantsReading = true
        if processing {
            processAgain = true
        } else if !input.isEmpty || SSL_pending(ssl) > 0 || peerEnded {
            // What waits is delivered on the next turn: never from inside the owner's call.
            processLater()
        }
        updateTCPReading()
    }

    public func stopReading() {
        guard wantsReading else { return }
        wantsReading = false
        updateTCPReading()
    }

    public func write(_ bytes: UnsafeRawBufferPointer, completion: ((UVError?) -> Void)?) {
        guard phase == .established, !failed, !closeNotifySent, let ssl else {
            completion?(.brokenPipe)
            return
        }
        var offset = 0
        while offset < bytes.count {
            let count = min(bytes.count - offset, 1 << 30)
            ERR_clear_error()
            // The BIO takes every record at once, so a write is never partial.
            guard SSL_write(ssl, bytes.baseAddress! + offset, Int32(count)) > 0 else {
                let error = UVError(code: -EPROTO)
                _ = TLSContext.takeErrors()
                failed = true
                flush()
                if let completion { completion(error) } else { delegate?.transport(self, didFail: error) }
                return
            }
            offset += count
        }
        flush(completion: completion)
    }

    /// Sends `close_notify`, then half-closes the TCP stream once everything has left.
    public func shutdown(completion: ((UVError?) -> Void)?) {
        guard phase == .established else {
            completion?(.brokenPipe)
            return
        }
        sendCloseNotify()
        tcp.shutdown(completion: completion)
    }

    /// Sends `close_notify` (when the session is sound) and closes the TCP stream.
    public func close() {
        switch phase {
        case .closing, .closed:
            return
        case .established:
            sendCloseNotify()
        case .handshaking:
            onHandshakeEnd = nil  // the owner ended it: nothing to report
        case .refusing:
            break
        }
        phase = .closing
        laterTimer?.close()
        laterTimer = nil
        tcp.close()
    }

    // MARK: Events from the TCP stream

    public func transport(_ transport: any Transport, didRead bytes: UnsafeRawBufferPointer) {
        switch phase {
        case .handshaking:
            if !sawInput {
                sawInput = true
                // A TLS record starts with its content type (20 to 23); an HTTP request with
                // an upper-case method name.
                if let plainHTTPReply, let first = bytes.first, (0x41...0x5A).contains(first) {
                    refuse(replying: plainHTTPReply)
                    return
                }
            }
        case .established:
            break
        case .refusing, .closing, .closed:
            return
        }
        if input.isEmpty {
            consume(bytes)
        } else {
            input.append(contentsOf: bytes)
            consumeInput()
        }
    }

    public func transportDidReadEOF(_ transport: any Transport) {
        peerEnded = true
        switch phase {
        case .handshaking:
            endHandshake(.peerClosed)
        case .established:
            // A missing close_notify is a normal end: what came before it is delivered first.
            if wantsReading { consumeInput() }
        case .refusing:
            tcp.close()
        case .closing, .closed:
            break
        }
    }

    public func transport(_ transport: any Transport, didFail error: UVError) {
        failed = true
        switch phase {
        case .handshaking:
            endHandshake(.peerClosed)
        case .established:
            delegate?.transport(self, didFail: error)
        case .refusing:
            tcp.close()
        case .closing, .closed:
            break
        }
    }

    public func transportDidWrite(_ transport: any Transport) {
        if phase == .established { delegate?.transportDidWrite(self) }
    }

    public func transportDidClose(_ transport: any Transport) {
        phase = .closed
        laterTimer?.close()
        laterTimer = nil
        // The session's memory goes now; the object may live on a little in its owner.
        if let ssl { SSL_free(ssl) }
        ssl = nil
        input = []
        let callback = onHandshakeEnd
        onHandshakeEnd = nil
        callback?(self, .peerClosed)
        let delegate = self.delegate
        self.delegate = nil
        delegate?.transportDidClose(self)
    }

    // MARK: Processing

    /// Lets OpenSSL read `bytes` (borrowed for the call); keeps what it did not take.
    private func consume(_ bytes: UnsafeRawBufferPointer) {
        window = bytes
        windowOffset = 0
        process()
        let rest = window.count - windowOffset
        if rest > 0, phase == .handshaking || phase == .established {
            input.append(contentsOf: UnsafeRawBufferPointer(rebasing: window[windowOffset...]))
        }
        window = UnsafeRawBufferPointer(start: nil, count: 0)
        windowOffset = 0
    }

    /// Lets OpenSSL read what waits in `input` (and what it already holds).
    private func consumeInput() {
        let stored = input
        input = []
        stored.withUnsafeBytes { consume($0) }
    }

    private func process() {
        if processing {
            processAgain = true
            return
        }
        processing = true
        repeat {
            processAgain = false
            if phase == .handshaking { handshake() }
            if phase == .established { deliver() }
        } while processAgain && phase == .established
        processing = false
        flush()
        updateTCPReading()
    }

    private func handshake() {
        guard let ssl else { return }
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            phase = .established
            flush()  // the server's last flight, and session tickets
            let callback = onHandshakeEnd
            onHandshakeEnd = nil
            callback?(self, nil)
            return
        }
        if SSL_get_error(ssl, result) == SSL_ERROR_WANT_READ {
            if peerEnded && window.count == windowOffset { endHandshake(.peerClosed) }
            return
        }
        endHandshake(.handshakeFailed(reason: TLSContext.takeErrors()))
    }

    /// The handshake failed: the alert OpenSSL made is sent, the owner told, and the
    /// connection closed.
    private func endHandshake(_ error: TLSError) {
        failed = true
        flush()
        let callback = onHandshakeEnd
        onHandshakeEnd = nil
        phase = .closing
        callback?(self, error)
        tcp.close()
    }

    /// Hands the delegate the plain text OpenSSL can make of its input, record by record,
    /// while it wants reads.
    private func deliver() {
        guard let ssl else { return }
        let buffer = context.plaintext
        while wantsReading && phase == .established {
            ERR_clear_error()
            let count = SSL_read(ssl, buffer.baseAddress, Int32(buffer.count))
            if count > 0 {
                delegate?.transport(self, didRead: UnsafeRawBufferPointer(rebasing: buffer[..<Int(count)]))
                continue
            }
            switch SSL_get_error(ssl, count) {
            case SSL_ERROR_WANT_READ:
                if peerEnded && window.count == windowOffset { deliverEnd() }
                return
            case SSL_ERROR_ZERO_RETURN:  // close_notify
                deliverEnd()
                return
            default:
                _ = TLSContext.takeErrors()
                failed = true
                flush()  // the alert
                delegate?.transport(self, didFail: UVError(code: -EPROTO))
                return
            }
        }
    }

    private func deliverEnd() {
        guard !endDelivered else { return }
        endDelivered = true
        wantsReading = false
        delegate?.transportDidReadEOF(self)
    }

    private func processLater() {
        let timer = laterTimer ?? LoopTimer(loop: tcp.loop)
        laterTimer = timer
        timer.start(after: 0) { [unowned self] in
            guard phase == .established, wantsReading else { return }
            consumeInput()
        }
    }

    private func updateTCPReading() {
        switch phase {
        case .handshaking, .refusing:
            tcp.startReading()
        case .established:
            if wantsReading && !endDelivered { tcp.startReading() } else { tcp.stopReading() }
        case .closing, .closed:
            break
        }
    }

    private func sendCloseNotify() {
        guard !closeNotifySent, !failed, let ssl else { return }
        closeNotifySent = true
        ERR_clear_error()
        SSL_shutdown(ssl)
        ERR_clear_error()
        flush()
    }

    private func refuse(replying reply: [UInt8]) {
        phase = .refusing
        let callback = onHandshakeEnd
        onHandshakeEnd = nil
        tcp.write(reply)
        // The request was read whole with its first bytes (almost always): closing after the
        // reply's FIN resets nothing the client has not read.
        tcp.shutdown { [tcp] _ in tcp.close() }
        callback?(self, .plainHTTP)
    }

    /// Writes the records OpenSSL produced to the TCP stream, in one write.
    private func flush(completion: ((UVError?) -> Void)? = nil) {
        guard !context.records.isEmpty else {
            completion?(nil)
            return
        }
        // The buffer is swapped out while it is written: a failure reported from inside the
        // write may close this connection, and its close_notify goes into the other one.
        var records = context.records
        context.records = context.spareRecords
        context.spareRecords = []
        if phase == .closed {
            completion?(.brokenPipe)
        } else {
            records.withUnsafeBytes { tcp.write($0, completion: completion) }
        }
        records.removeAll(keepingCapacity: records.capacity <= 1 << 20)
        context.spareRecords = records
    }

    // MARK: The BIO between OpenSSL and the TCP stream

    /// A BIO method whose reads take from the connection's `window` and whose writes append
    /// to its context's `records`.
    static func makeBIOMethod() -> OpaquePointer {
        guard let method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "libuv TCP stream") else {
            fatalError("TLSConnection: OpenSSL could not make a BIO method")
        }
        BIO_meth_set_write(method) { bio, data, length in
            ctls_bio_clear_retry_flags(bio)
            let connection = Unmanaged<TLSConnection>.fromOpaque(BIO_get_data(bio)).takeUnretainedValue()
            connection.context.records.append(contentsOf: UnsafeRawBufferPointer(start: data, count: Int(length)))
            return length
        }
        BIO_meth_set_read(method) { bio, data, length in
            ctls_bio_clear_retry_flags(bio)
            let connection = Unmanaged<TLSConnection>.fromOpaque(BIO_get_data(bio)).takeUnretainedValue()
            let count = min(connection.window.count - connection.windowOffset, Int(length))
            guard count > 0, let data else {
                ctls_bio_set_retry_read(bio)
                return -1
            }
            UnsafeMutableRawPointer(data).copyMemory(from: connection.window.baseAddress! + connection.windowOffset, byteCount: count)
            connection.windowOffset += count
            return Int32(count)
        }
        BIO_meth_set_ctrl(method) { _, command, _, _ in
            command == BIO_CTRL_FLUSH ? 1 : 0
        }
        return method
    }
}

@available(*, unavailable)
extension TLSConnection: Sendable {}
