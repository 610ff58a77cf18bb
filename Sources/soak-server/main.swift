// The server `Scripts/soak` runs for a long time under a mixed load.
//
//   soak-server [PORT] [HOST]
//
// Routes (all through the public handler API):
//   GET  /hello            "Hello, World!"
//   GET  /seq?n=K          "K" (pipelining order checks)
//   GET  /large?kb=N       N KiB of a fixed pattern (byte i is i % 251 within each KiB),
//                          written in 16 KiB pieces (past the response buffer: chunked)
//   GET  /slow?ms=N        answered N ms later from a timer (deferResponse)
//   POST /echo             the request body back
//   GET  /stats            "connections C requests R errors E"
//   GET  /quit             shuts the server down gracefully (serveForever returns, exit 0)
import BaseHTTPServer
import Glibc
import UVLoop

/// Counters, touched on the loop thread only.
enum Counters {
    nonisolated(unsafe) static var requests = 0
    nonisolated(unsafe) static var loggedErrors = 0
}

/// One KiB of the /large pattern.
let kilobyte: [UInt8] = (0..<1024).map { UInt8($0 % 251) }
let sixteenKilobytes: [UInt8] = Array((0..<16).map { _ in kilobyte }.joined())

final class SoakHandler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) {}

    override func logError(_ message: String) {
        Counters.loggedErrors += 1
        if Counters.loggedErrors <= 20 { super.logMessage(message) }
    }

    /// The value of `name` in the query string, as an integer.
    private func query(_ name: String) -> Int? {
        guard let mark = path.firstIndex(of: "?") else { return nil }
        for pair in path[path.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 && parts[0] == name { return Int(parts[1]) }
        }
        return nil
    }

    private var route: Substring { path.prefix { $0 != "?" } }

    private func answer(_ text: String, type: String = "text/plain") {
        sendResponse(200)
        sendHeader("Content-Type", type)
        endHeaders()
        wfile.write(text)
    }

    override func doGET() throws {
        Counters.requests += 1
        switch route {
        case "/hello":
            answer("Hello, World!")
        case "/seq":
            answer(String(query("n") ?? -1))
        case "/large":
            let kb = min(max(query("kb") ?? 64, 0), 8192)
            sendResponse(200)
            sendHeader("Content-Type", "application/octet-stream")
            endHeaders()
            var left = kb
            while left >= 16 {
                wfile.write(sixteenKilobytes)
                left -= 16
            }
            for _ in 0..<left { wfile.write(kilobyte) }
        case "/slow":
            let milliseconds = UInt64(min(max(query("ms") ?? 50, 0), 10_000))
            let deferred = deferResponse()
            let timer = LoopTimer(loop: server.loop)
            timer.start(after: milliseconds) { [self] in
                timer.close()
                answer("slow \(milliseconds)")
                deferred.finish()
            }
        case "/stats":
            answer("connections \(server.connectionCount) requests \(Counters.requests) errors \(Counters.loggedErrors)")
        case "/quit":
            answer("bye")
            server.shutdown()
        default:
            sendError(404)
        }
    }

    override func doPOST() throws {
        Counters.requests += 1
        guard route == "/echo" else {
            sendError(404)
            return
        }
        let body = rfile.read()
        sendResponse(200)
        sendHeader("Content-Type", "application/octet-stream")
        sendHeader("Content-Length", String(body.count))
        endHeaders()
        wfile.write(body)
    }
}

signal(SIGPIPE, SIG_IGN)
let arguments = CommandLine.arguments
let port = arguments.count > 1 ? Int(arguments[1]) ?? 0 : 0
let host = arguments.count > 2 ? arguments[2] : "127.0.0.1"
let server = try HTTPServer((host, port), SoakHandler.self)
// Short enough that abandoned and trickling clients are reaped during a soak.
server.configuration.headTimeout = 10
server.configuration.bodyTimeout = 10
server.configuration.idleTimeout = 20
server.configuration.writeTimeout = 15
server.configuration.maxBodySize = 16 << 20
print("soak-server listening on \(host):\(server.serverPort)")
fflush(nil)
try server.serveForever()
print("soak-server stopped")
