import BaseHTTPServer
import Synchronization

/// `--max-upload-size`, or -1 for none. Set once before the server starts; a handler class
/// can only read a setting through a class property, hence a global.
let maxUploadSize = Atomic<Int>(-1)

/// The handler for HTTP/1.1 responses (the library's default).
final class Handler11: SimpleHTTPRequestHandler {}

/// The handler for `-p HTTP/1.0`: every connection closes after its response.
final class Handler10: SimpleHTTPRequestHandler {
    override class var protocolVersion: String { "HTTP/1.0" }
}

/// `--upload`.
final class UploadHandler11: UploadHTTPRequestHandler {
    override class var maxBodySize: Int? {
        let limit = maxUploadSize.load(ordering: .relaxed)
        return limit >= 0 ? limit : nil
    }
}

/// `--upload -p HTTP/1.0`.
final class UploadHandler10: UploadHTTPRequestHandler {
    override class var protocolVersion: String { "HTTP/1.0" }
    override class var maxBodySize: Int? {
        let limit = maxUploadSize.load(ordering: .relaxed)
        return limit >= 0 ? limit : nil
    }
}
