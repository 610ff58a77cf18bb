import BaseHTTPServer
import Glibc

/// Answers `GET /` with `Hello, World!` through the public handler API, logging off.
final class HelloHandler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) {}

    override func doGET() throws {
        sendResponse(200)
        endHeaders()
        wfile.write("Hello, World!")
    }
}

/// The same answer from an async do-method that awaits nothing: the cost of the task, the
/// deferred response and the loop executor's hop (`--async`).
final class AsyncHelloHandler: AsyncHTTPRequestHandler {
    override func logMessage(_ message: String) {}

    override func doGET() async throws {
        sendResponse(200)
        endHeaders()
        wfile.write("Hello, World!")
    }
}

signal(SIGPIPE, SIG_IGN)
// bench-server [PORT [HOST]] [--async] [--tls-cert PATH --tls-key PATH [--no-tls-resumption]]
var arguments = Array(CommandLine.arguments.dropFirst())
@MainActor func take(_ flag: String) -> String? {
    guard let index = arguments.firstIndex(of: flag), index + 1 < arguments.count else { return nil }
    defer { arguments.removeSubrange(index...(index + 1)) }
    return arguments[index + 1]
}
let certificate = take("--tls-cert")
let key = take("--tls-key")
let resumption = !arguments.contains("--no-tls-resumption")
let async = arguments.contains("--async")
arguments.removeAll { $0 == "--no-tls-resumption" || $0 == "--async" }
let port = arguments.count > 0 ? Int(arguments[0]) ?? 8080 : 8080
let host = arguments.count > 1 ? arguments[1] : "127.0.0.1"
let tls = certificate.map {
    TLSConfiguration(certificateChain: $0, privateKey: key, sessionResumption: resumption)
}
let handler: BaseHTTPRequestHandler.Type = async ? AsyncHelloHandler.self : HelloHandler.self
let server = try HTTPServer((host, port), handler, tls: tls)
server.configuration.idleTimeout = 3600
server.configuration.maxConnections = 1_000_000
server.configuration.busyPollLimit = 0.0001  // as `http-server`: a load-test target polls
print("bench-server listening on \(host):\(server.serverPort)\(tls == nil ? "" : " (HTTPS)")")
try server.serveForever()
