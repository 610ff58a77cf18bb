import BaseHTTPServer

// The handler class takes its settings from the command line (`options`) and colours
// its log lines when standard error takes colour (`logsInColor`). The library's own
// logging stays plain; colouring here, where the terminal is known, keeps it so.

/// Serves the directory (GET and HEAD) and, with `--upload`, receives files (PUT, and form
/// POSTs); without it PUT and POST get Python's 501.
final class FileHandler: UploadHTTPRequestHandler {
    override class var protocolVersion: String { options.protocolVersion }
    override class var responseHeaders: [(String, String)] { options.responseHeaders }
    override class var defaultContentType: String { options.defaultContentType }
    override class var streamsRequestBodies: Bool { options.upload }
    override class var showsUploadForm: Bool { options.upload }
    override class var maxBodySize: Int? { options.upload ? options.maxUploadSize : nil }

    override func doPUT() throws {
        if options.upload { try super.doPUT() } else { try doMethod("PUT") }
    }

    override func doPOST() throws {
        if options.upload { try super.doPOST() } else { try doMethod("POST") }
    }

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

/// `--cgi`: runs the scripts under `/cgi-bin` and `/htbin` and serves the rest of the
/// directory (GET and HEAD), as Python's `--cgi`.
final class CGIFileHandler: CGIHTTPRequestHandler {
    override class var protocolVersion: String { options.protocolVersion }
    override class var responseHeaders: [(String, String)] { options.responseHeaders }
    override class var defaultContentType: String { options.defaultContentType }

    // The same colouring as FileHandler's: a class overrides its own log methods.
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
