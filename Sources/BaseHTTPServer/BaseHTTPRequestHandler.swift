import Glibc
import HTTPParser
import Logging

/// Handles the requests of one connection: Python's `BaseHTTPRequestHandler`.
///
/// Subclass it and override `doGET()`, `doPOST()`, … (method `FOO` calls `doFOO()`; other
/// methods call `doMethod(_:)`). One instance serves every request of its connection, in
/// order; the request attributes are reset before each. Subclasses declare no initializer and
/// change settings with `override class var`. Everything runs on the server's loop thread.
open class BaseHTTPRequestHandler {
    // MARK: Connection attributes

    /// The server this handler answers for.
    ///
    /// Held strongly: the server lets go of its connections (and so of their handlers) when
    /// they close, and a handler kept longer (by a `DeferredResponse`, say) keeps its server's
    /// memory valid, so a late call finds a stopped server, never freed memory.
    public let server: HTTPServer
    private let clientHost: String
    private let clientPort: Int32
    /// Whether the connection closes after this response (`close_connection`).
    public var closeConnection: Bool {
        get { closesConnection }
        set { closesConnection = newValue }
    }
    /// `closeConnection`'s storage. Being private, it is checked for exclusive access at
    /// compile time; the public property itself would be checked at run time, on every use
    /// (3 per request: 6,756 instructions per request against 6,032 with the other two such
    /// wrappers, Scripts/callgrind).
    private var closesConnection = true
    /// Whether `protocolVersion` is HTTP/1.1 or later (computed once per instance).
    let protocolIsHTTP11: Bool

    /// The connection, while it is open; nil once the client is gone. The connection owns
    /// this handler and clears the reference when it closes (which breaks the cycle).
    var connection: HTTPConnection?
    /// The connection's exchange, lent to this handler while the connection holds one: the
    /// request attributes and the response being written. They are there only while
    /// `exchange.isResponding` (from the request's arrival until the response is finished);
    /// output written at any other time is dropped.
    var exchange: Exchange?

    /// Creates the handler for a new connection. Subclasses do not override this.
    public required init(clientAddress: (host: String, port: Int), server: HTTPServer) {
        clientHost = clientAddress.host
        clientPort = Int32(clamping: clientAddress.port)
        self.server = server
        protocolIsHTTP11 = Self.protocolVersion >= "HTTP/1.1"
    }

    /// The client's address (`client_address`).
    public var clientAddress: (host: String, port: Int) { (clientHost, Int(clientPort)) }

    // MARK: Request attributes (reset before each request)

    /// Runs `body` with the current request's exchange, or returns `none` when there is none
    /// (before the first request, once the response is finished, and once the client has gone).
    @inline(__always)
    func withRequest<R>(_ none: @autoclosure () -> R, _ body: (Exchange) -> R) -> R {
        guard let exchange, exchange.isResponding else { return none() }
        return body(exchange)
    }

    /// Runs `body` with the exchange the response goes to. Outside a response (after it was
    /// finished, or once the client has gone) there is none: the output is dropped, and
    /// logged when the client is still there (a deferred handler writing after `finish()`).
    @inline(__always)
    func withResponse(_ body: (Exchange) -> Void) {
        if let exchange, exchange.isResponding {
            body(exchange)
        } else {
            outputOutsideResponse()
        }
    }

    @inline(never)
    private func outputOutsideResponse() {
        guard connection != nil else { return }  // The client has gone: dropped silently.
        logError("output dropped: no response is in progress (written after the response was finished?)")
    }

    /// The request method, such as `"GET"`; nil before a request line was parsed.
    public var command: String? {
        withRequest(nil) { request in
            if request.command == nil, let method = request.head?.method {
                request.command = latin1String(request.headBytes[method])
            }
            return request.command
        }
    }

    /// The request target, a leading `//` reduced to `/` (as Python 3.12 does).
    public var path: String {
        withRequest("") { request in
            if let path = request.path { return path }
            guard let target = request.head?.target else { return "" }
            var path = latin1String(request.headBytes[target])
            if hasSlashPrefix(path, count: 2) {
                path = "/" + path.drop { $0 == "/" }
            }
            request.path = path
            return path
        }
    }

    /// Called on the loop thread once the connection has closed: for subclasses in this
    /// module that keep work going between requests (`AsyncHTTPRequestHandler`'s task).
    func connectionDidClose() {}

    /// Whether the client has closed its side of the connection (or the connection is gone).
    var clientHasClosed: Bool { connection?.machine.peerClosed ?? true }

    /// Makes the current request ask for `path` with `GET` (a `HEAD` stays one): how a CGI
    /// script's local redirect is served (RFC 3875 §6.2.2).
    func rewriteRequest(path: String) {
        let method = command == "HEAD" ? "HEAD" : "GET"
        withRequest(()) { request in
            request.path = path
            request.command = method
        }
    }

    /// The request's version string, such as `"HTTP/1.1"` (`defaultRequestVersion` for HTTP/0.9).
    public var requestVersion: String {
        withRequest(Self.defaultRequestVersion) { request in
            if let version = request.version { return version }
            let version = request.head?.version.map { latin1String(request.headBytes[$0]) }
                ?? Self.defaultRequestVersion
            request.version = version
            return version
        }
    }

    /// The request line without its line ending (`""` when none was read).
    public var requestline: String {
        withRequest("") { request in
            if let line = request.requestLine { return line }
            let line = (request.head?.requestLine).map { latin1String(request.headBytes[$0]) } ?? ""
            request.requestLine = line
            return line
        }
    }

    /// The request's header fields (read them while the request is being answered: once the
    /// response is finished, fields not read before are no longer kept).
    public var headers: HTTPMessage {
        withRequest(HTTPMessage()) { request in
            if let headers = request.headers { return headers }
            let message = request.head.map { HTTPMessage(head: request.headBytes, fields: $0.fields) }
                ?? HTTPMessage()
            request.headers = message
            return message
        }
    }

    /// The request body, already read and decoded (`rfile`).
    public var rfile: RequestBody {
        withRequest(RequestBody()) { request in
            if let body = request.rfile { return body }
            let body = RequestBody()
            body.reset(request.body)
            request.rfile = body
            return body
        }
    }

    /// Where the response body goes (`wfile`).
    public var wfile: ResponseWriter { ResponseWriter(handler: self) }

    // MARK: Class-level settings

    /// The server software name and version (`server_version`).
    open class var serverVersion: String { "BaseHTTP/0.6" }
    /// The language runtime's version (`sys_version`).
    open class var sysVersion: String { "Swift/" + swiftVersion }
    /// The HTTP version of responses. HTTP/1.1 (the default) keeps connections open; the
    /// server adds `Content-Length` or chunked framing, so handlers need not.
    open class var protocolVersion: String { "HTTP/1.1" }
    /// The version assumed when a request line has none (HTTP/0.9).
    open class var defaultRequestVersion: String { "HTTP/0.9" }
    /// The error page, with Python's `%(code)d`, `%(message)s` and `%(explain)s` placeholders.
    open class var errorMessageFormat: String { defaultErrorMessageFormat }
    /// The `Content-Type` of error pages.
    open class var errorContentType: String { "text/html;charset=utf-8" }
    /// Each status code's short message and explanation.
    open class var responses: [Int: (String, String)] { HTTPStatus.defaultResponses }
    /// Whether `doFOO()` runs as soon as a request's head has arrived, to take the body as it
    /// arrives with `readBody(_:)` (under backpressure: the server stops reading while the
    /// handler has not taken what came). The default, false, reads the body whole into
    /// `rfile` first, as Python's handlers expect. See `readBody(_:)`.
    open class var streamsRequestBodies: Bool { false }
    /// The largest request body accepted, in bytes; a larger one is answered 413 (instead of
    /// `100 Continue`), before `doFOO()` runs when its length is declared. nil (the default):
    /// the server's `configuration.maxBodySize` (64 MiB) for bodies read whole, no limit for
    /// streamed ones.
    open class var maxBodySize: Int? { nil }

    // MARK: Dispatch. Subclasses override these.

    /// Handles one request whose head (and, unless the class streams bodies, body) has
    /// arrived: Python's `handle_one_request`, after its parsing. The default calls the
    /// `doFOO()` for the method. Override it to wrap every request in one place
    /// (authentication, timing, a default header) and call `super.handleOneRequest()` to
    /// dispatch; answer without calling it to refuse. What it throws is handled as a throwing
    /// `doFOO()` is. For a deferred response, it returns before the response is finished.
    open func handleOneRequest() throws {
        try dispatchToMethod()
    }

    /// Answers GET. The default answers 501 (through `doMethod(_:)`).
    open func doGET() throws { try doMethod("GET") }
    /// Answers HEAD. The default answers 501.
    open func doHEAD() throws { try doMethod("HEAD") }
    /// Answers POST. The default answers 501.
    open func doPOST() throws { try doMethod("POST") }
    /// Answers PUT. The default answers 501.
    open func doPUT() throws { try doMethod("PUT") }
    /// Answers DELETE. The default answers 501.
    open func doDELETE() throws { try doMethod("DELETE") }
    /// Answers PATCH. The default answers 501.
    open func doPATCH() throws { try doMethod("PATCH") }
    /// Answers OPTIONS. The default answers 501.
    open func doOPTIONS() throws { try doMethod("OPTIONS") }
    /// Answers TRACE. The default answers 501.
    open func doTRACE() throws { try doMethod("TRACE") }
    /// Answers CONNECT. The default answers 501.
    open func doCONNECT() throws { try doMethod("CONNECT") }

    /// Answers any method without a `doFOO()` of its own, and the defaults of those. The
    /// default answers 501 `Unsupported method ('FOO')`, as Python does.
    open func doMethod(_ command: String) throws {
        sendError(501, message: "Unsupported method ('\(command)')")
    }

    /// Decides on `Expect: 100-continue` before the body is read. The default sends
    /// `100 Continue` and returns true; return false after sending an error to refuse the body
    /// (the connection then closes). Subclasses may override.
    open func handleExpect100() -> Bool {
        sendResponseOnly(100)
        endHeaders()
        return true
    }

    /// Answers later: the handler may return, and write and call `finish()` on the returned
    /// value afterwards (from a `LoopTimer`, or via `Loop.execute` from another thread). Requests
    /// pipelined behind this one wait until then. Called on the loop thread, from `doFOO()`.
    public func deferResponse() -> DeferredResponse {
        let response = DeferredResponse(handler: self)
        if let connection {
            connection.didDefer(response)
        } else {
            response.clientDidLeave()
        }
        return response
    }

    // MARK: Responses. Subclasses may override these.

    /// Sends a status line and the `Server` and `Date` headers, and logs the request
    /// (`send_response`). Headers are buffered until `endHeaders()`.
    open func sendResponse(_ code: Int, message: String? = nil) {
        if server.logsRequests { logRequest(code: code) }
        sendResponseOnly(code, message: message)
        sendHeader("Server", versionString())
        sendHeader("Date", dateTimeString())
    }

    /// Sends only the status line (`send_response_only`), with `message` or the code's phrase.
    open func sendResponseOnly(_ code: Int, message: String? = nil) {
        withResponse { exchange in
            guard !exchange.isHTTP09 else { return }
            if let message {
                statusLine(code, message).withUnsafeBytes { exchange.appendStatusLine($0, status: code) }
            } else {
                server.appendDefaultStatusLine(code, for: self, to: exchange)
            }
        }
    }

    /// Buffers a header line (`send_header`), encoded ISO-8859-1 as Python does.
    /// `Connection: close` or `keep-alive` also sets `closeConnection`. A name or value with CR,
    /// LF or NUL (no header injection), or with a character ISO-8859-1 cannot carry, is
    /// refused: nothing is written and `logError` says why.
    open func sendHeader(_ keyword: String, _ value: String) {
        var field: ResponseState.NotableField? = .other
        withResponse { exchange in
            guard !exchange.isHTTP09 else { return }
            field = exchange.appendHeaderLine(name: keyword, value: value)
        }
        guard let field else {
            logError("refused header \(keyword.debugDescription): CR, LF or NUL in its name or value, or a character ISO-8859-1 cannot carry")
            return
        }
        if field == .connection {
            // The value has passed the header check: no CR, LF or NUL.
            if withUTF8(of: value, { ASCII.equalsIgnoringCase($0, "close") }) {
                closeConnection = true
            } else if withUTF8(of: value, { ASCII.equalsIgnoringCase($0, "keep-alive") }) {
                closeConnection = false
            }
        }
    }

    /// Ends the headers (`end_headers`). The head leaves with the body, once its length is known.
    open func endHeaders() {
        withResponse { exchange in
            guard !exchange.isHTTP09 else { return }
            exchange.endHead(responseContext(exchange), closeConnection: closeConnection)
        }
    }

    /// Sends the header lines buffered so far, without ending the head (`flush_headers`): for
    /// handlers that frame their response by hand.
    open func flushHeaders() {
        withResponse { $0.flushHead() }
    }

    /// Sends a complete error response (`send_error`): status line, `Connection: close`, and
    /// for codes that have a body (not 1xx, 204, 205, 304, nor for HEAD) an HTML page built
    /// from `errorMessageFormat` with `message` and `explain` HTML-escaped.
    open func sendError(_ code: Int, message: String? = nil, explain: String? = nil) {
        let (short, long) = Self.responses[code] ?? ("???", "???")
        let message = message ?? short
        let explain = explain ?? long
        logError("code \(code), message \(message)")
        sendResponse(code, message: message)
        sendHeader("Connection", "close")
        var body: [UInt8] = []
        if code >= 200 && code != 204 && code != 205 && code != 304 {
            body = Array(percentFormat(Self.errorMessageFormat, code: code,
                                       message: htmlEscape(message, quote: false),
                                       explain: htmlEscape(explain, quote: false)).utf8)
            sendHeader("Content-Type", Self.errorContentType)
            sendHeader("Content-Length", String(body.count))
        }
        endHeaders()
        if command != "HEAD" && !body.isEmpty { wfile.write(body) }
    }

    // MARK: Logging. Subclasses may override these.

    /// Logs an accepted request (`log_request`): `"request line" code size`. Called by
    /// `sendResponse` unless `configuration.logsRequests` is off. With a `logger`, the
    /// default does nothing: the record is made when the response has finished, with its size
    /// and duration.
    open func logRequest(code: Int? = nil, size: Int? = nil) {
        guard server.logger == nil else { return }
        logMessage(requestLogLine(code: code, size: size))
    }

    /// Logs an error (`log_error`); the default hands it to `logMessage(_:)`, or with a
    /// `logger` logs it at `.error`.
    open func logError(_ message: String) {
        if let logger = server.logger {
            logger.error("\(message)", metadata: ["client.address": "\(clientAddress.host)"])
        } else {
            logMessage(message)
        }
    }

    /// Writes `host - - [date] message` to standard error (`log_message`), with control
    /// characters escaped so that a client cannot forge log lines.
    ///
    /// The line goes out with the others the server logs in the same loop iteration, in one
    /// `write(2)`: at the latest just before the loop next waits for I/O (sooner when 64 KiB
    /// wait, and when `serveForever()` or `handleRequest()` returns). A busy server makes one
    /// system call for many lines, and a terminal still shows each line without waiting for
    /// another event: only callbacks already due run before it is written. Called outside a
    /// running loop, it writes the line at once. Overrides replace all this, as in Python.
    /// With a `logger`, the message goes to it at `.info` instead.
    open func logMessage(_ message: String) {
        if let logger = server.logger {
            logger.info("\(message)", metadata: ["client.address": "\(clientAddress.host)"])
            return
        }
        server.logBuffer.writeLine(host: addressString(), date: logDateTimeString(), message: logEscape(message))
    }

    /// Writes a finished log line (newline included) to standard error as `logMessage(_:)`
    /// does: in the server's batch, in order with its other lines. For the package's
    /// executables, whose overrides format the line themselves (`http-server`'s colours).
    package func writeLogLine(_ line: String) {
        server.logBuffer.write(line)
    }

    /// The `Server` header's value: `serverVersion` and `sysVersion` (`version_string`).
    open func versionString() -> String {
        server.versionString(of: Self.self)
    }

    /// A date for the `Date` header (`date_time_string`): now, or `timestamp` (Unix seconds).
    open func dateTimeString(_ timestamp: Double? = nil) -> String {
        guard let timestamp else { return server.currentDate }
        return HTTPDate.format(Int(timestamp))
    }

    /// The current local time for log lines (`log_date_time_string`).
    open func logDateTimeString() -> String {
        server.currentLogDate
    }

    /// The client's address for log lines (`address_string`).
    open func addressString() -> String {
        clientAddress.host
    }
}

@available(*, unavailable)
extension BaseHTTPRequestHandler: Sendable {}

/// The compiler's version, for `sysVersion`.
private var swiftVersion: String {
    #if compiler(>=6.5)
    "6.5"
    #elseif compiler(>=6.4)
    "6.4"
    #elseif compiler(>=6.3)
    "6.3"
    #elseif compiler(>=6.2)
    "6.2"
    #elseif compiler(>=6.1)
    "6.1"
    #else
    "6.0"
    #endif
}

/// Python 3.14's `DEFAULT_ERROR_MESSAGE`: 3.12's with the `<style>` that lets browsers show
/// it in the reader's light or dark scheme (gh-123430).
let defaultErrorMessageFormat = """
    <!DOCTYPE HTML>
    <html lang="en">
        <head>
            <meta charset="utf-8">
            <style type="text/css">
                :root {
                    color-scheme: light dark;
                }
            </style>
            <title>Error response</title>
        </head>
        <body>
            <h1>Error response</h1>
            <p>Error code: %(code)d</p>
            <p>Message: %(message)s.</p>
            <p>Error code explanation: %(code)s - %(explain)s.</p>
        </body>
    </html>

    """
