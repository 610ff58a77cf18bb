import BaseHTTPServer

// Both handler classes take their settings from the command line (`options`) and colour
// their log lines when standard error takes colour (`logsInColor`). The library's own
// logging stays plain; colouring here, where the terminal is known, keeps it so.

/// Serves the directory (GET and HEAD), with the command line's settings.
final class FileHandler: SimpleHTTPRequestHandler {
    override class var protocolVersion: String { options.protocolVersion }
    override class var responseHeaders: [(String, String)] { options.responseHeaders }
    override class var defaultContentType: String { options.defaultContentType }

    override func logRequest(code: Int? = nil, size: Int? = nil) {
        guard logsInColor else { return super.logRequest(code: code, size: size) }
        writeColoredLogLine(coloredRequestLog(code: code, size: size))
    }

    override func logError(_ message: String) {
        guard logsInColor else { return super.logError(message) }
        writeColoredLogLine(coloredErrorLog(message))
    }

    override func logMessage(_ message: String) {
        guard logsInColor else { return super.logMessage(message) }
        writeColoredLogLine(logEscape(message))
    }
}

/// `--upload`: also receives files, with the command line's settings.
final class UploadHandler: UploadHTTPRequestHandler {
    override class var protocolVersion: String { options.protocolVersion }
    override class var responseHeaders: [(String, String)] { options.responseHeaders }
    override class var defaultContentType: String { options.defaultContentType }
    override class var maxBodySize: Int? { options.maxUploadSize }

    override func logRequest(code: Int? = nil, size: Int? = nil) {
        guard logsInColor else { return super.logRequest(code: code, size: size) }
        writeColoredLogLine(coloredRequestLog(code: code, size: size))
    }

    override func logError(_ message: String) {
        guard logsInColor else { return super.logError(message) }
        writeColoredLogLine(coloredErrorLog(message))
    }

    override func logMessage(_ message: String) {
        guard logsInColor else { return super.logMessage(message) }
        writeColoredLogLine(logEscape(message))
    }
}
