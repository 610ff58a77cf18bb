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

signal(SIGPIPE, SIG_IGN)
let arguments = CommandLine.arguments
let port = arguments.count > 1 ? Int(arguments[1]) ?? 8080 : 8080
let host = arguments.count > 2 ? arguments[2] : "127.0.0.1"
let server = try HTTPServer((host, port), HelloHandler.self)
server.configuration.idleTimeout = 3600
server.configuration.maxConnections = 1_000_000
server.configuration.busyPollLimit = 0.0001  // as `http-server`: a load-test target polls
print("bench-server listening on \(host):\(server.serverPort)")
try server.serveForever()
