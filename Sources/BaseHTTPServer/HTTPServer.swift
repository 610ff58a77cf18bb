import Glibc
import HTTPParser
import Logging
import Synchronization
import TLSTransport
import UVLoop

/// An HTTP server on one libuv loop: Python's `HTTPServer`.
///
/// `init` binds and listens; `serveForever()` runs the loop on the calling thread until
/// `shutdown()`, which any thread may call. Each connection gets its own instance of the
/// handler class, which answers its requests in order.
///
/// Thread safety: `shutdown()`, `connectionCount` and `serveForever()` (one thread at a time)
/// may be called from any thread; that is what the `Sendable` claim covers. Every other
/// member belongs to the thread that serves, or to any thread while none does, and checks
/// so at run time (`Loop.assertOnLoopThread`). A subclass inherits the claim: its own stored
/// properties must follow the same rule (use them from handlers, which run on the loop
/// thread), or be `Sendable` themselves (a `let`, a `Mutex`).
open class HTTPServer: @unchecked Sendable {
    /// The loop the server runs on: for timers and `execute(_:)` in handlers.
    public let loop: Loop
    /// The handler class instantiated for each connection.
    public let handlerType: BaseHTTPRequestHandler.Type
    /// The value a `ContextualHandler` reads as `context`, given to `init(_:_:context:tls:)`;
    /// set once, before the server serves.
    var handlerContext: (any Sendable)?
    /// The handler class's `streamsRequestBodies` and `maxBodySize`, read once.
    let streamsBodies: Bool
    private let handlerMaxBodySize: Int?
    /// The host name of the bound address (`server_name`).
    public let serverName: String
    /// The bound port: the real one when port 0 was asked for (`server_port`).
    public let serverPort: Int
    /// The bound address (`server_address`).
    public let serverAddress: (host: String, port: Int)
    /// Limits and timeouts. Set them before serving, or on the loop thread while serving
    /// (from a handler): every connection reads them when it needs them.
    public var configuration: Configuration {
        get { configurationStorage }
        set {
            loop.assertOnLoopThread("HTTPServer.configuration")
            configurationStorage = newValue
            logsRequests = newValue.logsRequests
        }
    }
    /// Where the server logs. Nil (the default): Python's lines on standard error, one per
    /// request at `sendResponse` and one per error. A `Logger`: an access record per finished
    /// response, at `.info`, with its status, the body bytes written and the time from the
    /// request's head to the response's end (see `AccessRecord`); the handlers' messages at
    /// `.info` and their errors and the server's at `.error`. `configuration.logsRequests`
    /// turns the access records off. Set it before serving, or on the loop thread.
    public var logger: Logger? {
        get { loggerStorage }
        set {
            loop.assertOnLoopThread("HTTPServer.logger")
            loggerStorage = newValue
        }
    }
    private var loggerStorage: Logger?
    /// `configuration.logsRequests`, read once per request.
    private(set) var logsRequests = true
    /// Whether a `logger` takes the access records: one is made per finished response.
    var recordsAccess: Bool { logsRequests && loggerStorage != nil }
    /// `configuration`'s storage, read several times per request. Being private, it is
    /// checked for exclusive access at compile time (see `closeConnection`'s storage).
    private var configurationStorage = Configuration()
    /// How long `handleRequest()` waits before calling `handleTimeout()`; nil waits for ever.
    open var timeout: Double?

    private var listener: TCPListener?
    /// The open connections; each is owned here until its transport has closed.
    private var connections: [HTTPConnection] = []
    /// For an HTTPS server: the certificate and key, and the connections whose handshake is
    /// under way; they become `connections` when it succeeds.
    private let handshakes: TLSHandshakes?
    /// The files `SimpleHTTPRequestHandler`s keep open between requests.
    let openFileCache: OpenFileCache
    /// How many CGI scripts run, and which wait (`CGIHTTPRequestHandler`).
    let cgiSlots = CGISlots()
    /// Checks run at every sweep with the deadline clock's time (`clockNow`): a check that
    /// returns false is dropped. For deadlines other than a connection's (a CGI script's).
    private var deadlineWatchers: [(UInt64) -> Bool] = []
    private(set) var isShuttingDown = false
    /// Whether `serverClose()` ran: the loop and the listening socket are gone.
    private var isClosed = false
    /// Whether a handler called `serverClose()`: the serve closes everything as it ends.
    private var closesAfterServing = false
    private var sweepTimer: LoopTimer?
    /// Work for the loop's next turn (`onNextTurn`), and the one hook that runs it.
    private var nextTurnWork: [() -> Void] = []
    private var nextTurnHook: LoopHook?
    private var graceTimer: LoopTimer?
    private var completedRequests = 0
    /// Added to the loop's time when deadlines are checked (see `advanceDeadlineClock`).
    private var deadlineClockOffset: UInt64 = 0
    /// `connections.count`, published for other threads.
    private let openConnections = Atomic<Int>(0)
    private var lastAcceptErrorLog = 0
    let serving = ServingState()
    /// Whether a thread is inside `serveForever()`. Safe from any thread.
    var isServing: Bool { serving.isServing }
    /// The log lines on their way to standard error, in batches (see `LogBuffer`).
    let logBuffer: LogBuffer
    private var cachedDate = ""
    private var cachedDateSecond = -1
    private var cachedLogDateSecond: time_t = -1
    private var cachedLogDate = ""
    /// Exchanges that connections take while they have work and give back between requests
    /// (see `HTTPConnection`); a few are kept warm. Owned here while spare. Taken and given
    /// back once per request on keep-alive connections, on the loop thread only, never across
    /// a call: without the dynamic exclusivity check, 337 instructions fewer per request
    /// (6,369 against 6,032, Scripts/callgrind).
    @exclusivity(unchecked) private var spareExchanges: [Exchange] = []
    /// The handler class's `Server` header value, made once.
    private var cachedVersionString: String?
    /// Status lines with the handler class's default phrase, made once per code, back to
    /// back in `statusLineBytes`; `statusLineSpans[code - 100]` says where (empty: not made
    /// yet) for the codes 100...599. Other codes are made each time. Read for every response,
    /// on the loop thread only: without the dynamic exclusivity check, 167 instructions fewer
    /// per request (6,199 against 6,032, Scripts/callgrind).
    @exclusivity(unchecked) private var statusLineBytes = ByteBuffer()
    @exclusivity(unchecked) private var statusLineSpans = [Range<Int32>](repeating: 0..<0, count: 500)

    /// A server dropped without `serverClose()` releases its port and its loop.
    deinit {
        closeResources()
    }

    /// Binds `address` and listens (`server_bind` and `server_activate`).
    /// - Parameters:
    ///   - address: the host (`""` for every IPv4 interface, `"::"` for every interface,
    ///     `"127.0.0.1"`, `"::1"`, …) and the port (0 for any free port).
    ///   - handler: the handler class; one instance serves each connection.
    ///   - tls: a certificate chain and key to serve HTTPS with instead of HTTP (see
    ///     `HTTPSServer`, Python's spelling).
    /// - Throws: `TLSError` when the certificate or key cannot be used (before anything is
    ///   bound); `UVError`, for example `.addressInUse`.
    public init(_ address: (host: String, port: Int), _ handler: BaseHTTPRequestHandler.Type,
                tls: TLSConfiguration? = nil) throws {
        handshakes = try tls.map { configuration throws(TLSError) in try TLSHandshakes(configuration) }
        loop = try Loop()
        logBuffer = LogBuffer(loop: loop)
        openFileCache = OpenFileCache(loop: loop)
        handlerType = handler
        streamsBodies = handler.streamsRequestBodies
        handlerMaxBodySize = handler.maxBodySize
        let listener: TCPListener
        do {
            listener = try TCPListener(loop: loop, host: address.host, port: address.port, backlog: 1024)
        } catch {
            try? loop.close()  // frees the loop and the half-made listener's handle
            throw error
        }
        self.listener = listener
        serverAddress = (listener.localAddress.host, listener.localAddress.port)
        serverPort = listener.localAddress.port
        serverName = HTTPServer.hostName(for: address.host)
        listener.onConnection = { [unowned self] connection in accept(connection) }
        listener.onError = { [unowned self] error in acceptDidFail(error) }
    }

    // MARK: Serving

    /// Serves until `shutdown()` (`serve_forever`), on the calling thread. Returns once every
    /// connection is closed; the listening socket stays bound, and a later call serves again
    /// (as Python's does). A call while another thread serves returns at once.
    /// - Throws: `HTTPServerError.closed` after `serverClose()`.
    public func serveForever() throws {
        guard serving.begin() else { return }
        defer { serving.end() }
        guard !isClosed else { throw HTTPServerError.closed }
        checkHandlerContext()
        isShuttingDown = false
        listener?.resumeAccepting()
        startTimers()
        if serving.wasShutdownRequested { beginShutdown() }
        let pollLimit = configuration.busyPollLimit
        loop.busyPollLimit = pollLimit > 0 && pollLimit.isFinite ? UInt64(min(pollLimit, 1) * 1e9) : 0
        loop.run()
        runNextTurnWork()  // Whatever waited is told its connection has gone.
        openFileCache.removeAll()  // No file stays open between serves.
        nextTurnHook?.close()
        nextTurnHook = nil
        sweepTimer?.close()
        sweepTimer = nil
        graceTimer?.close()
        graceTimer = nil
        // Let the timers' close callbacks run, so that nothing of this serve stays behind.
        loop.runOnce(blocking: false)
        logBuffer.flush()  // The serve's last lines are written when serveForever() returns.
        isShuttingDown = false  // handleRequest() may serve again too
        if closesAfterServing { closeResources() }
    }

    /// Serves until one more request has been answered (`handle_request`), or until
    /// `timeout` passes, then calls `handleTimeout()`.
    /// - Throws: `HTTPServerError.closed` after `serverClose()`.
    public func handleRequest() throws {
        guard !isClosed else { throw HTTPServerError.closed }
        loop.assertOnLoopThread("HTTPServer.handleRequest()")
        checkHandlerContext()
        guard !isShuttingDown else { return }
        listener?.resumeAccepting()
        startTimers()
        let target = completedRequests + 1
        var timedOut = false
        let timer = timeout.map { seconds -> LoopTimer in
            let timer = LoopTimer(loop: loop)
            timer.start(after: UInt64(max(seconds, 0) * 1000)) { timedOut = true }
            return timer
        }
        while completedRequests < target && !timedOut && !isShuttingDown {
            loop.runOnce()
        }
        logBuffer.flush()  // The request's line is written when handleRequest() returns.
        timer?.close()
        if timedOut { handleTimeout() }
    }

    /// Called when `handleRequest()` times out (`handle_timeout`). Subclasses may override;
    /// the default does nothing.
    open func handleTimeout() {}

    /// Stops serving (`shutdown`): stops accepting, closes idle connections at once, lets
    /// requests in flight finish (their responses carry `Connection: close`) for up to
    /// `configuration.shutdownGracePeriod`, then closes the rest.
    ///
    /// Safe from any thread. From another thread it waits until `serveForever()` has returned;
    /// from a handler (the loop thread) it returns at once.
    public func shutdown() {
        if askToShutDown() { serving.waitUntilStopped() }
    }

    /// Starts the shutdown that `shutdown()` does, and returns at once, from any thread: for
    /// code that must not wait (a callback, a signal watcher), and learns of the end otherwise
    /// (`serveForever()` or `run()` returning). With no serve running, the next one stops at
    /// once.
    public func startShutdown() {
        _ = askToShutDown()
    }

    /// Starts the shutdown where the serve runs (at once on its thread; through the loop from
    /// another), or has the next serve stop at once when none runs yet.
    /// - Returns: whether another thread serves, whose serve the caller may wait for.
    func askToShutDown() -> Bool {
        switch serving.requestShutdown() {
        case .notServing:
            return false
        case .onServingThread:
            beginShutdown()
            return false
        case .wait:
            loop.execute { [self] in beginShutdown() }
            return true
        }
    }

    /// Closes the listening socket, every connection and the loop (`server_close`); when
    /// another thread serves, shuts it down first. Serving afterwards throws
    /// `HTTPServerError.closed`. Calling it twice is harmless.
    public func serverClose() {
        if serving.isServing {
            shutdown()
            if serving.isServing {
                closesAfterServing = true  // Called from a handler: the serve ends later.
                return
            }
        }
        closeResources()
    }

    private func closeResources() {
        guard !isClosed else { return }
        isClosed = true
        openFileCache.close()
        // Closed here, so that no handshake reports its end to a server being deinitialized.
        handshakes?.closeAll()
        logBuffer.close()  // Lines logged from here on are written directly.
        listener?.close()
        listener = nil
        sweepTimer = nil
        graceTimer = nil
        nextTurnHook = nil
        // Runs still watched (a CGI script's) hold their handler, and a handler its server:
        // let them go with the loop, or the server could never be freed.
        deadlineWatchers.removeAll()
        cgiSlots.waiting.removeAll()
        do {
            try loop.close()
        } catch {
            logServerError("the loop did not close cleanly: \(error)")
        }
    }

    // MARK: Connections

    private func accept(_ tcp: TCPConnection) {
        if let handshakes {
            handshakes.begin(over: tcp, at: clockNow) { [unowned self] tls, error in handshakeDidEnd(tls, error) }
            connectionCountDidChange()
        } else {
            add(HTTPConnection(server: self, transport: tcp))
        }
    }

    private func add(_ connection: HTTPConnection) {
        connection.slot = Int32(connections.count)
        connections.append(connection)
        connectionCountDidChange()
    }

    /// Publishes the count, and stops accepting at the cap. Handshakes under way count.
    private func connectionCountDidChange() {
        let count = connections.count + (handshakes?.count ?? 0)
        openConnections.store(count, ordering: .relaxed)
        if count >= configuration.maxConnections {
            listener?.pauseAccepting()
        } else if let listener, !listener.isAccepting, !isShuttingDown {
            listener.resumeAccepting()
        }
        if isShuttingDown && count == 0 { loop.stop() }
    }

    private func handshakeDidEnd(_ tls: TLSConnection, _ error: TLSError?) {
        guard handshakes?.end(tls) == true else { return }
        switch error {
        case nil where !isShuttingDown:
            add(HTTPConnection(server: self, transport: tls))
        case nil:
            tls.close()
            connectionCountDidChange()
        case .plainHTTP?:
            // Logged through a handler, whose class may colour or silence its lines.
            let address = tls.remoteAddress
            let handler = handlerType.init(clientAddress: (address?.host ?? "", address?.port ?? 0), server: self)
            handler.logError("code 400, message Plain HTTP request sent to an HTTPS port")
            connectionCountDidChange()
        case .some:
            // A failed handshake is not logged, as in Python and nginx: a scanner or a client
            // that refused the certificate would fill the log.
            connectionCountDidChange()
        }
    }

    private func acceptDidFail(_ error: UVError) {
        // Out of descriptors: libuv drops the waiting connection so the loop does not spin;
        // log at most once a second.
        let now = Int(loop.now / 1000)
        guard now != lastAcceptErrorLog else { return }
        lastAcceptErrorLog = now
        logServerError("accept failed: \(error)")
    }

    func connectionDidClose(_ connection: HTTPConnection) {
        let slot = Int(connection.slot)
        let last = connections.removeLast()
        if slot < connections.count {
            connections[slot] = last
            last.slot = Int32(slot)
        }
        connectionCountDidChange()
    }

    /// Logs a fault of the server's own (not a request's): to the `logger` at `.error`, or as
    /// a line on standard error.
    func logServerError(_ message: String) {
        if let logger = loggerStorage {
            logger.error("\(message)")
        } else {
            logBuffer.write("HTTPServer: \(message)\n")
        }
    }

    func requestDidComplete() {
        completedRequests += 1
    }

    /// What the open connections have written that has not left yet (for tests of
    /// backpressure). On the loop thread.
    var queuedOutputBytes: Int { connections.reduce(0) { $0 + $1.transport.queuedBytes } }

    /// The number of open connections. Safe to read from any thread (for monitoring).
    public var connectionCount: Int { openConnections.load(ordering: .relaxed) }

    /// Whether the server speaks HTTPS.
    public var isHTTPS: Bool { handshakes != nil }

    /// Closes every open connection now, whatever it is doing: a response in flight is cut
    /// off, and its client sees the connection end early. During a `shutdown()` this ends the
    /// grace period at once, and `serveForever()` returns as soon as the connections have
    /// closed; otherwise the server goes on accepting new ones. Called on the loop thread
    /// (from a handler, a timer or a signal watcher); from another thread, hand it to
    /// `loop.execute`.
    public func closeAllConnections() {
        loop.assertOnLoopThread("HTTPServer.closeAllConnections()")
        closeHandshakes()
        for connection in connections { connection.abort() }
    }

    /// Closes the TLS connections whose handshake is under way: they have no request yet.
    private func closeHandshakes() {
        if let handshakes, handshakes.closeAll() > 0 { connectionCountDidChange() }
    }

    private func beginShutdown() {
        guard !isShuttingDown else { return }
        isShuttingDown = true
        listener?.pauseAccepting()
        closeHandshakes()
        for connection in connections {
            connection.shutdownRequested()
        }
        let grace = LoopTimer(loop: loop)
        grace.start(after: UInt64(max(configuration.shutdownGracePeriod, 0) * 1000)) { [unowned self] in
            closeAllConnections()
        }
        graceTimer = grace
        if connections.isEmpty { loop.stop() }
    }

    // MARK: Timers

    private func startTimers() {
        guard sweepTimer == nil else { return }
        graceTimer?.close()
        graceTimer = nil
        var timeouts = [configuration.headTimeout, configuration.bodyTimeout,
                        configuration.idleTimeout, configuration.writeTimeout].filter { $0 > 0 }
        if handshakes != nil && configuration.handshakeTimeout > 0 {
            timeouts.append(configuration.handshakeTimeout)
        }
        let interval = UInt64(min(max((timeouts.min() ?? 1) * 1000 / 4, 10), 1000))
        let timer = LoopTimer(loop: loop)
        timer.start(after: interval, repeatEvery: interval) { [unowned self] in sweep() }
        sweepTimer = timer
    }

    /// Runs `body` on the loop's next turn, after the events at hand: how a producer that
    /// may go on at once (its output already drained) goes on without recursing into
    /// itself, and without holding up other connections. Work queued by the work of a turn
    /// waits for the next one, so a download that never fills its socket still gives way to
    /// other connections once per turn. One hook serves every connection.
    func onNextTurn(_ body: @escaping () -> Void) {
        nextTurnWork.append(body)
        guard nextTurnWork.count == 1 else { return }
        let hook = nextTurnHook ?? LoopHook(loop: loop, .nextTurn) { [unowned self] in runNextTurnWork() }
        nextTurnHook = hook
        hook.start()
    }

    private func runNextTurnWork() {
        nextTurnHook?.stop()
        guard !nextTurnWork.isEmpty else { return }
        let work = nextTurnWork
        nextTurnWork.removeAll(keepingCapacity: true)
        for body in work { body() }
    }

    /// The one timer behind every connection's deadlines.
    private func sweep() {
        loop.updateTime()
        let now = UInt32(truncatingIfNeeded: loop.now &+ deadlineClockOffset)
        let deadlines = configuration.deadlines
        closeLateHandshakes()
        if !deadlineWatchers.isEmpty {
            let watchers = deadlineWatchers
            deadlineWatchers = []
            let now = clockNow
            deadlineWatchers += watchers.filter { $0(now) }
        }
        var index = connections.count
        while index > 0 {
            index -= 1
            if index < connections.count { connections[index].checkDeadlines(now: now, deadlines: deadlines) }
        }
    }

    /// Runs `check` at every sweep (at least once a second while serving) with the deadline
    /// clock's time in milliseconds, until it returns false. On the loop thread.
    func watchDeadlines(_ check: @escaping (_ now: UInt64) -> Bool) {
        deadlineWatchers.append(check)
    }

    /// Closes the TLS connections whose handshake has taken longer than the configuration's
    /// `handshakeTimeout` (a client that connects and stalls, or trickles its hello).
    private func closeLateHandshakes() {
        let timeout = configuration.handshakeTimeout
        guard let handshakes, handshakes.count > 0, timeout > 0 else { return }
        let limit = UInt64(min(timeout * 1000, 1e15).rounded(.up))
        if handshakes.closeLate(now: clockNow, limit: limit) > 0 { connectionCountDidChange() }
    }

    /// The loop's time in milliseconds on the clock deadlines and the open-file cache use
    /// (which tests move forward with `advanceDeadlineClock`).
    var clockNow: UInt64 { loop.now &+ deadlineClockOffset }

    /// Moves the clock the deadlines are checked against forward by `milliseconds` and checks
    /// them at once: a test reaches a deadline this way instead of waiting for it. Connections
    /// stamp their events with the loop's own time, so afterwards every one of them looks
    /// that much older. On the loop thread.
    func advanceDeadlineClock(by milliseconds: UInt64) {
        deadlineClockOffset &+= milliseconds
        sweep()
    }

    // MARK: The request path's pools and caches (exchanges, status lines, dates)

    /// An exchange for a connection that has work: a spare one, or a new one, with the
    /// parser limits configured now.
    func lendExchange() -> Exchange {
        let limits = parserLimits
        guard let exchange = spareExchanges.popLast() else {
            return Exchange(limits: limits)
        }
        if exchange.parser.limits != limits {
            exchange.parser.limits = limits
        }
        return exchange
    }

    /// The configuration's parser limits, with the body limit the handler class sets: its
    /// `maxBodySize`, else the configuration's for a body read whole, else none for a body
    /// the handler streams.
    private var parserLimits: ParserLimits {
        var limits = configuration.parserLimits
        if let handlerMaxBodySize {
            limits.maxBodySize = max(handlerMaxBodySize, 0)
        } else if streamsBodies {
            limits.maxBodySize = .max
        }
        return limits
    }

    /// Takes an exchange back from a connection; a few are kept, reset, for the next ones.
    func recycle(_ exchange: consuming Exchange) {
        guard spareExchanges.count < 4 else { return }
        exchange.reset()
        spareExchanges.append(exchange)
    }

    /// `serverVersion sysVersion` for the handler class (`version_string`), made once.
    func versionString(of handlerClass: BaseHTTPRequestHandler.Type) -> String {
        if let cachedVersionString { return cachedVersionString }
        let version = handlerClass.serverVersion + " " + handlerClass.sysVersion
        cachedVersionString = version
        return version
    }

    /// Appends `protocolVersion code phrase\r\n` (the handler class's default phrase) to the
    /// response head, made once per code.
    func appendDefaultStatusLine(_ code: Int, for handler: BaseHTTPRequestHandler, to exchange: Exchange) {
        let index = code - 100
        guard statusLineSpans.indices.contains(index) else {
            defaultStatusLine(code, for: handler).withUnsafeBytes { exchange.appendStatusLine($0, status: code) }
            return
        }
        var span = statusLineSpans[index]
        if span.isEmpty {
            let start = Int32(statusLineBytes.count)
            statusLineBytes.append(defaultStatusLine(code, for: handler))
            span = start..<Int32(statusLineBytes.count)
            statusLineSpans[index] = span
        }
        let line = UnsafeRawBufferPointer(rebasing: statusLineBytes.bytes[Int(span.lowerBound)..<Int(span.upperBound)])
        exchange.appendStatusLine(line, status: code)
    }

    /// `protocolVersion code phrase\r\n` for the handler class.
    private func defaultStatusLine(_ code: Int, for handler: BaseHTTPRequestHandler) -> [UInt8] {
        handler.statusLine(code, type(of: handler).responses[code]?.0 ?? "")
    }

    /// The `Date` header's value, formatted once a second.
    var currentDate: String {
        let second = time(nil)
        if second != cachedDateSecond {
            cachedDateSecond = second
            cachedDate = HTTPDate.format(second)
        }
        return cachedDate
    }

    /// Local time for access-log lines (`log_date_time_string`), formatted once a second:
    /// 2,600 instructions a request otherwise (callgrind, http-server on a 4 KiB file).
    var currentLogDate: String {
        let second = time(nil)
        if second != cachedLogDateSecond {
            cachedLogDateSecond = second
            cachedLogDate = HTTPDate.logFormat(Int(second))
        }
        return cachedLogDate
    }

    private static func hostName(for host: String) -> String {
        switch host {
        case "", "0.0.0.0", "::":
            var name = [CChar](repeating: 0, count: 256)
            guard gethostname(&name, name.count - 1) == 0 else { return host }
            return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        case "127.0.0.1", "::1", "localhost":
            return "localhost"
        default:
            return host
        }
    }
}

/// Why a server cannot do what was asked.
public enum HTTPServerError: Error, Equatable, CustomStringConvertible {
    /// `serverClose()` was called: the server's socket and loop are gone.
    case closed

    public var description: String {
        switch self {
        case .closed: "the server was closed (serverClose()); make a new HTTPServer to serve again"
        }
    }
}
