// Coloured log lines, as Python 3.15's http.server writes them to a terminal (gh-146292).
import BaseHTTPServer
import Glibc

/// Python 3.15's colours for http.server (`Lib/_colorize.py`, theme section `HttpServer`), as
/// ANSI escape sequences.
enum LogColor {
    static let reset = "\u{1B}[0m"
    /// Timestamps and response sizes (`GREY`).
    static let grey = "\u{1B}[90m"
    /// The request line and the served URL (`CYAN`).
    static let cyan = "\u{1B}[36m"
    /// 2xx statuses and the serving line (`GREEN`).
    static let green = "\u{1B}[32m"
    /// 3xx statuses (`INTENSE_CYAN`).
    static let intenseCyan = "\u{1B}[96m"
    /// 4xx statuses and error messages (`YELLOW`).
    static let yellow = "\u{1B}[33m"
    /// 5xx statuses (`RED`).
    static let red = "\u{1B}[31m"

    /// The colour of a status code, by its class; 1xx (and anything odd) stays uncoloured.
    static func status(_ code: Int) -> String {
        switch code {
        case 200..<300: green
        case 300..<400: intenseCyan
        case 400..<500: yellow
        case 500..<600: red
        default: reset
        }
    }
}

/// Whether text written to `descriptor` may be coloured, decided as Python's
/// `_colorize.can_colorize` does: `NO_COLOR` set and not empty says no; then `FORCE_COLOR` set
/// and not empty says yes; then `TERM=dumb` says no; otherwise colour when it is a terminal.
/// (`PYTHON_COLORS`, Python's own switch, is not consulted.)
func canColorize(_ descriptor: Int32) -> Bool {
    func isSet(_ name: String) -> Bool { getenv(name).map { $0.pointee != 0 } ?? false }
    if isSet("NO_COLOR") { return false }
    if isSet("FORCE_COLOR") { return true }
    if let term = getenv("TERM"), String(cString: term) == "dumb" { return false }
    return isatty(descriptor) == 1
}

/// Whether log lines (on standard error) are coloured: decided once, on first use.
let logsInColor = canColorize(STDERR_FILENO)

extension BaseHTTPRequestHandler {
    /// Writes `host - - [time] text` to standard error with the time in grey, batched as the
    /// library's lines are; `text` is escaped and coloured already (the library's
    /// `logMessage` would escape the colours).
    func writeColoredLogLine(_ text: String) {
        writeLogLine("\(addressString()) - - [\(LogColor.grey)\(logDateTimeString())\(LogColor.reset)] \(text)\n")
    }

    /// `"request line" code size` with the request line in cyan, the code in its class's
    /// colour and the size in grey (`log_request`).
    func coloredRequestLog(code: Int?, size: Int?) -> String {
        let status = code.map { "\(LogColor.status($0))\($0)\(LogColor.reset)" } ?? "-"
        let size = size.map { "\(LogColor.grey)\($0)\(LogColor.reset)" } ?? "\(LogColor.grey)-\(LogColor.reset)"
        return "\(LogColor.cyan)\"\(logEscape(requestline))\"\(LogColor.reset) \(status) \(size)"
    }

    /// An error message in yellow (`log_error`).
    func coloredErrorLog(_ message: String) -> String {
        LogColor.yellow + logEscape(message) + LogColor.reset
    }
}
