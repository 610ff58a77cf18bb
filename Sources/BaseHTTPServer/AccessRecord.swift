import Glibc
import Logging

extension BaseHTTPRequestHandler {
    /// Logs the response just finished to the server's `logger`, at `.info`: the message is
    /// Python's access line with the size filled in (`"GET / HTTP/1.1" 200 13`), and the
    /// metadata carry the same facts by OpenTelemetry's names:
    ///
    /// | key | value |
    /// |---|---|
    /// | `client.address` | the client's address |
    /// | `http.request.method` | the method (`command`) |
    /// | `url.path` | the request target (`path`) |
    /// | `http.response.status_code` | the status sent |
    /// | `http.response.body.size` | the body bytes written (0 for `HEAD` and 304) |
    /// | `http.server.request.duration` | seconds from the request's head to the response's end |
    ///
    /// Called on the loop thread while the response is still the current one.
    func recordAccess(_ exchange: Exchange, status: Int, bytes: Int, logger: Logger) {
        let end = monotonicNanoseconds()
        let start = exchange.requestStart == 0 ? end : exchange.requestStart
        exchange.requestStart = 0
        let seconds = Double(end &- start) / 1e9
        logger.info("\(requestLogLine(code: status, size: bytes))", metadata: [
            "client.address": "\(clientAddress.host)",
            "http.request.method": "\(command ?? "-")",
            "url.path": "\(path)",
            "http.response.status_code": .stringConvertible(status),
            "http.response.body.size": .stringConvertible(bytes),
            "http.server.request.duration": .stringConvertible(seconds),
        ])
    }
}

/// Now on the monotonic clock, in nanoseconds (a vDSO call: no system call).
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}
