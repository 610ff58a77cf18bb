import BaseHTTPServer

/// Serves the directory (GET and HEAD), with the command line's settings.
final class FileHandler: SimpleHTTPRequestHandler {
    override class var protocolVersion: String { options.protocolVersion }
    override class var responseHeaders: [(String, String)] { options.responseHeaders }
    override class var defaultContentType: String { options.defaultContentType }
}

/// `--upload`: also receives files, with the command line's settings.
final class UploadHandler: UploadHTTPRequestHandler {
    override class var protocolVersion: String { options.protocolVersion }
    override class var responseHeaders: [(String, String)] { options.responseHeaders }
    override class var defaultContentType: String { options.defaultContentType }
    override class var maxBodySize: Int? { options.maxUploadSize }
}
