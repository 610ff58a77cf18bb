import Glibc
import UVLoop

/// Runs CGI scripts (RFC 3875) under `cgiDirectories` and serves every other path as
/// `SimpleHTTPRequestHandler` does: Python's `CGIHTTPRequestHandler`, without its faults.
///
/// A script runs as a child process of the loop (`posix_spawn`), never through a shell, and
/// never blocks the server: the request body streams to its standard input and its output
/// streams to the client, both under backpressure. The script speaks first: its header block
/// sets the status (`Status:`), a redirect (`Location:`: a local path is served in its
/// place, an absolute URL is a 302) and the fields, as Go's `net/http/cgi` reads them; no
/// `Content-Type` (nor status nor location) is a 500. A body without `Content-Length` goes
/// chunked (HTTP/1.1).
///
/// Only an executable regular file inside a CGI directory runs, found as Python finds it
/// (nested directories, `PATH_INFO` after the script's name, `QUERY_STRING`); a path that
/// leaves the directory, or a link that points outside it, is refused. The script gets the
/// RFC 3875 variables and every request header as `HTTP_*` (not `Proxy`, and not a name
/// with `_`, which could pose as another), and of the server's own environment only `PATH`
/// (`cgiPath`) and what `cgiEnvironment` adds.
///
/// Limits: a script silent for `cgiTimeout` is killed (504 if nothing was sent); a client
/// that leaves gets its script terminated (SIGTERM, then SIGKILL after `cgiKillDelay`); at
/// most `maxRunningScripts` run at once, `maxWaitingScripts` more wait, and the rest get 503.
/// A request body must say its length: a chunked one gets 411 Length Required (a script
/// reads `CONTENT_LENGTH` bytes). A script's standard error goes to the log, a line at a
/// time, under its name.
open class CGIHTTPRequestHandler: SimpleHTTPRequestHandler {
    // MARK: Class-level settings. Subclasses override these.

    /// The URL paths whose files are scripts (`cgi_directories`).
    open class var cgiDirectories: [String] { ["/cgi-bin", "/htbin"] }

    /// Variables every script gets besides the RFC 3875 ones, such as
    /// `("GIT_PROJECT_ROOT", "/srv/git")`.
    open class var cgiEnvironment: [(String, String)] { [] }

    /// The `PATH` scripts get.
    open class var cgiPath: String { "/usr/local/bin:/usr/bin:/bin" }

    /// How long a script may write nothing (to its output or its error stream) before it is
    /// killed, in seconds.
    open class var cgiTimeout: Double { 60 }

    /// How long a script told to stop (SIGTERM) has before SIGKILL, in seconds.
    open class var cgiKillDelay: Double { 2 }

    /// The most scripts running at once on a server; more wait for a slot.
    open class var maxRunningScripts: Int { 32 }

    /// The most scripts waiting for a slot; more are answered 503.
    open class var maxWaitingScripts: Int { 256 }

    /// The longest header block a script may write before its body.
    open class var maxScriptHeaderSize: Int { 64 * 1024 }

    /// The body streams to the script as it arrives.
    open override class var streamsRequestBodies: Bool { true }

    /// How many local redirects (`Location: /path`) one request may follow.
    static let maxInternalRedirects = 8
    var internalRedirects = 0

    // MARK: Dispatch

    open override func doGET() throws {
        internalRedirects = 0
        try serveGET()
    }

    open override func doHEAD() throws {
        internalRedirects = 0
        try serveHEAD()
    }

    /// Runs a script, or answers 501 `Can only POST to CGI scripts`, as Python.
    open override func doPOST() throws {
        internalRedirects = 0
        guard let script = cgiScript() else {
            sendError(501, message: "Can only POST to CGI scripts")
            return
        }
        runCGI(script)
    }

    /// `GET` and `HEAD`, after a script's local redirect too.
    func serveGET() throws {
        if let script = cgiScript() { return runCGI(script) }
        try super.doGET()
    }

    func serveHEAD() throws {
        if let script = cgiScript() { return runCGI(script) }
        try super.doHEAD()
    }

    // MARK: Finding the script

    /// A script request: the CGI directory, and what follows it up to the query.
    struct ScriptRequest {
        var directory: String
        var rest: String
        var query: String
    }

    /// Whether the request names something under a CGI directory (`is_cgi`): the directory
    /// and the rest of the collapsed path. Subclasses may override.
    func cgiScript() -> ScriptRequest? {
        guard let collapsed = collapsePath(path) else { return nil }
        let (pathPart, query) = collapsed
        let directories = Self.cgiDirectories
        var separator = pathPart.utf8.dropFirst().firstIndex(of: UInt8(ascii: "/"))
        while let index = separator {
            let head = String(pathPart[..<index])
            if directories.contains(head) {
                return ScriptRequest(directory: head, rest: String(pathPart[pathPart.index(after: index)...]),
                                     query: query)
            }
            separator = pathPart.utf8[pathPart.index(after: index)...].firstIndex(of: UInt8(ascii: "/"))
        }
        return nil
    }

    /// A script found and checked: what to run and the variables it gets.
    struct Script {
        var file: String
        var name: String
        var environment: [String]
    }

    /// Locates the script as Python does (`run_cgi`): the longest chain of directories, then
    /// the script's name, then `PATH_INFO`; answers 404 or 403 and returns nil when it cannot
    /// run.
    func locate(_ request: ScriptRequest) -> Script? {
        var directory = request.directory
        var rest = request.rest
        // Nested directories under the CGI directory belong to the script's name.
        while let slash = rest.firstIndex(of: "/") {
            let next = directory + "/" + rest[..<slash]
            guard let translated = translatePath(next), isDirectory(atPath: translated) else { break }
            directory = next
            rest = String(rest[rest.index(after: slash)...])
        }
        let script: String
        let pathInfo: String
        if let slash = rest.firstIndex(of: "/") {
            script = String(rest[..<slash])
            pathInfo = String(rest[slash...])
        } else {
            script = rest
            pathInfo = ""
        }
        let scriptName = directory + "/" + script
        guard let translated = translatePath(scriptName), let file = resolveInsideRoot(translated) else {
            sendError(404, message: "No such CGI script ('\(scriptName)')")
            return nil
        }
        var info = stat()
        guard stat(file, &info) == 0 else {
            sendError(404, message: "No such CGI script ('\(scriptName)')")
            return nil
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            sendError(403, message: "CGI script is not a plain file ('\(scriptName)')")
            return nil
        }
        guard access(file, X_OK) == 0 else {
            sendError(403, message: "CGI script is not executable ('\(scriptName)')")
            return nil
        }
        return Script(file: file, name: scriptName,
                      environment: environment(scriptName: scriptName, pathInfo: pathInfo, query: request.query))
    }

    /// The RFC 3875 variables for the request, then every header as `HTTP_*`, then `PATH`
    /// and `cgiEnvironment`.
    func environment(scriptName: String, pathInfo: String, query: String) -> [String] {
        var variables: [(String, String)] = [
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("SERVER_SOFTWARE", versionString()),
            ("SERVER_NAME", server.serverName),
            ("SERVER_PORT", String(server.serverPort)),
            ("SERVER_PROTOCOL", requestVersion),
            ("REQUEST_METHOD", command ?? "GET"),
            ("SCRIPT_NAME", scriptName),
            ("QUERY_STRING", query),
            ("REMOTE_ADDR", clientAddress.host),
            ("REMOTE_PORT", String(clientAddress.port)),
            ("REQUEST_URI", path),
            ("PATH", Self.cgiPath),
        ]
        if !pathInfo.isEmpty {
            let decoded = String(decoding: percentDecode(pathInfo.utf8), as: UTF8.self)
            variables.append(("PATH_INFO", decoded))
            if let translated = translatePath(pathInfo) { variables.append(("PATH_TRANSLATED", translated)) }
        }
        if server.isHTTPS { variables.append(("HTTPS", "on")) }
        let headers = self.headers
        if let authorization = headers["Authorization"] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if let scheme = parts.first {
                variables.append(("AUTH_TYPE", String(scheme)))
                if scheme.lowercased() == "basic", parts.count == 2,
                   let credentials = decodeBase64(parts[1].utf8),
                   let colon = credentials.firstIndex(of: UInt8(ascii: ":")) {
                    variables.append(("REMOTE_USER", String(decoding: credentials[..<colon], as: UTF8.self)))
                }
            }
        }
        if let type = headers["Content-Type"] { variables.append(("CONTENT_TYPE", type)) }
        if let length = headers["Content-Length"] { variables.append(("CONTENT_LENGTH", length)) }
        var seen: Set<String> = []
        for (name, _) in headers {
            let upper = name.uppercased()
            guard !seen.contains(upper), upper != "PROXY", upper != "CONTENT-TYPE", upper != "CONTENT-LENGTH",
                  !name.contains("_") else { continue }
            seen.insert(upper)
            let value = headers.values(for: name).joined(separator: upper == "COOKIE" ? "; " : ", ")
            variables.append(("HTTP_" + upper.replacingDashes, value))
        }
        variables += Self.cgiEnvironment
        return variables.filter { !$0.0.isEmpty && !$0.0.contains("=") && !$0.1.utf8.contains(0) }
            .map { "\($0.0)=\($0.1)" }
    }

    // MARK: Running

    /// Finds, checks and runs the script (`run_cgi`), or answers why it cannot.
    func runCGI(_ request: ScriptRequest) {
        guard let script = locate(request) else { return }
        let headers = self.headers
        if headers["Content-Length"] == nil, headers["Transfer-Encoding"] != nil {
            sendError(411, message: "Length Required",
                      explain: "A CGI script reads CONTENT_LENGTH bytes: send the body with a Content-Length.")
            return
        }
        let response = deferResponse()
        let slots = server.cgiSlots
        let start = { [self] in
            CGIRun(handler: self, script: script, response: response).start()
        }
        if slots.running < Self.maxRunningScripts {
            slots.running += 1
            start()
        } else if slots.waiting.count < Self.maxWaitingScripts {
            slots.waiting.append {
                guard !response.isClientGone else {
                    response.finish()
                    return false
                }
                start()
                return true
            }
        } else {
            sendError(503, message: "Too many CGI scripts running", explain: "Try again in a moment.")
            response.finish()
        }
    }

    /// After a script's local redirect: serves `location` as a `GET` (a `HEAD` stays one).
    /// - Returns: false when the request has followed too many redirects (answered 500).
    func followInternalRedirect(to location: String) -> Bool {
        internalRedirects += 1
        guard internalRedirects <= Self.maxInternalRedirects else {
            logError("CGI: more than \(Self.maxInternalRedirects) local redirects for \(path.debugDescription)")
            sendError(500, message: "Too many local redirects")
            return false
        }
        rewriteRequest(path: location)
        if command == "HEAD" { try? serveHEAD() } else { try? serveGET() }
        return true
    }
}

/// The slots for scripts on one server: how many run, and who waits.
final class CGISlots {
    var running = 0
    /// Starts of scripts waiting for a slot; each returns whether it took the slot.
    var waiting: [() -> Bool] = []

    /// A script ended: its slot goes to the first waiter still wanting it.
    func release() {
        while !waiting.isEmpty {
            if waiting.removeFirst()() { return }
        }
        running -= 1
    }
}

/// Python's `_url_collapse_path`: the path decoded, `.` and `..` resolved, and the query
/// split off. nil when `..` would climb above the root.
func collapsePath(_ target: String) -> (path: String, query: String)? {
    let (rawPath, suffix) = splitQuery(target)
    let query = suffix.hasPrefix("?") ? String(suffix.dropFirst()) : ""
    let decoded = String(decoding: percentDecode(rawPath.utf8), as: UTF8.self)
    var parts = decoded.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    let tail = parts.isEmpty ? "" : parts.removeLast()
    var head: [String] = []
    for part in parts {
        if part == ".." {
            guard head.popLast() != nil else { return nil }
        } else if !part.isEmpty && part != "." {
            head.append(part)
        }
    }
    var last = tail
    if tail == ".." {
        guard head.popLast() != nil else { return nil }
        last = ""
    } else if tail == "." {
        last = ""
    }
    return ("/" + head.joined(separator: "/") + (head.isEmpty ? "" : "/") + last, query)
}

private func isDirectory(atPath path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
}

/// Base64 (RFC 4648), padding optional; nil for anything else.
func decodeBase64(_ text: some Collection<UInt8>) -> [UInt8]? {
    var bytes: [UInt8] = []
    var accumulator: UInt32 = 0
    var bits = 0
    for character in text {
        let value: UInt8
        switch character {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = character - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): value = character - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): value = 62
        case UInt8(ascii: "/"): value = 63
        case UInt8(ascii: "="): continue
        default: return nil
        }
        accumulator = accumulator << 6 | UInt32(value)
        bits += 6
        if bits >= 8 {
            bits -= 8
            bytes.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
        }
    }
    return bytes
}

extension String {
    fileprivate var replacingDashes: String {
        String(decoding: utf8.map { $0 == UInt8(ascii: "-") ? UInt8(ascii: "_") : $0 }, as: UTF8.self)
    }
}
