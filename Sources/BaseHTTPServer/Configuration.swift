import HTTPParser

extension HTTPServer {
    /// Limits and timeouts of a server. Set them before `serveForever()`; every connection
    /// reads them when it needs them.
    public struct Configuration: Sendable, Equatable {
        /// The request parser's limits (request line, header fields, chunk lines, trailers).
        public var parserLimits = ParserLimits()

        /// The largest request body accepted; a larger one gets 413 (instead of `100 Continue`).
        public var maxBodySize: Int {
            get { parserLimits.maxBodySize }
            set { parserLimits.maxBodySize = newValue }
        }

        /// How long a request head may take from its first byte to its blank line (slowloris:
        /// trickling bytes does not extend it). Then 408 and close. Seconds; 0 turns it off.
        public var headTimeout: Double = 30
        /// How long a request body may make no progress. Then 408 and close.
        public var bodyTimeout: Double = 60
        /// How long a keep-alive connection may sit idle between requests before it closes.
        public var idleTimeout: Double = 60
        /// How long queued output may make no progress before the connection is closed.
        public var writeTimeout: Double = 60
        /// How long an HTTPS client may take over its TLS handshake, from the connection's
        /// accept to the handshake's end; then it is closed (a client that connects and
        /// stalls, or trickles its hello). Seconds; 0 turns it off.
        public var handshakeTimeout: Double = 10
        /// How long `shutdown()` lets in-flight requests finish before closing them.
        public var shutdownGracePeriod: Double = 5

        /// The most connections open at once; at the cap the server stops accepting (the
        /// kernel's backlog holds newcomers) and resumes when one closes.
        public var maxConnections = 100_000

        /// How long a directory server may go on serving the file it opened for a name
        /// before it looks the name up again, in seconds; 0 opens every file afresh. Size,
        /// modification time and `ETag` are read from the open file once per loop turn, so
        /// an edit in place is seen by the next request read; this bounds only how long a
        /// file replaced by another (renamed over, or deleted and made again) is still served
        /// from the old one, as nginx's `open_file_cache_valid`. See `SimpleHTTPRequestHandler`.
        public var openFileCacheValidity: Double = 1

        /// Response bytes held to compute `Content-Length`; a longer body switches to chunked
        /// encoding (HTTP/1.1) or to closing the connection (HTTP/1.0).
        public var responseBufferSize = 64 * 1024

        /// Unsent output above which the server stops reading from the connection (and stops
        /// answering its pipelined requests) until the client has read some.
        public var outputHighWaterMark = 1 << 20

        /// Unprocessed input (pipelined requests waiting behind a deferred response) above
        /// which the server stops reading from the connection.
        public var inputHighWaterMark = 256 * 1024

        /// How long the loop may poll for the next event before it sleeps, in seconds; 0 (the
        /// default) turns polling off. The loop polls only while events come closer together
        /// than this, and yields the CPU to other threads meanwhile (see
        /// `Loop.busyPollLimit`): a busy server answers sooner, and spends the time it would
        /// have spent falling asleep and being woken; an idle one sleeps as before. Worth it
        /// for a server that is the main work of its process under steady load
        /// (`http-server` sets 0.0001); an embedded test double is better off without. At
        /// most one second counts.
        public var busyPollLimit: Double = 0

        /// Whether requests are logged: Python's line per request on standard error, or with
        /// a `logger` an access record per finished response. Off, `logRequest` is not
        /// called; errors are still logged.
        public var logsRequests = true

        /// The defaults, as documented on each setting.
        public init() {}

        /// The connection deadlines, in the state machine's milliseconds.
        var deadlines: ConnectionStateMachine.Deadlines {
            func milliseconds(_ seconds: Double) -> UInt32 {
                seconds > 0 ? UInt32(min(seconds * 1000, Double(UInt32.max / 2)).rounded(.up)) : 0
            }
            return .init(head: milliseconds(headTimeout), body: milliseconds(bodyTimeout),
                         idle: milliseconds(idleTimeout), write: milliseconds(writeTimeout))
        }
    }
}
