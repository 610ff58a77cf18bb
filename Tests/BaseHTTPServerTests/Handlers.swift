import Foundation
@testable import BaseHTTPServer

/// Answers every request with a summary of what it received; silent logs.
class EchoHandler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) {}

    override func doGET() throws { try answer() }
    override func doPOST() throws { try answer() }
    override func doHEAD() throws { try answer() }
    override func doPUT() throws { try answer() }

    func answer() throws {
        let body = rfile.read()
        var text = "\(command ?? "-") \(path) \(requestVersion)\n"
        for (name, value) in headers { text += "\(name): \(value)\n" }
        text += "body \(body.count): \(String(decoding: body, as: UTF8.self))\n"
        sendResponse(200)
        sendHeader("Content-Type", "text/plain")
        endHeaders()
        wfile.write(text)
    }
}

/// "Hello, World!" with no logging: the benchmark handler.
final class HelloHandler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) {}
    override func doGET() throws {
        sendResponse(200)
        endHeaders()
        wfile.write("Hello, World!")
    }
}

/// Collects log lines so tests can read them.
final class LogBook: @unchecked Sendable {
    static let shared = LogBook()
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ line: String) { lock.withLock { lines.append(line) } }
    func contains(_ text: String) -> Bool { lock.withLock { lines.contains { $0.contains(text) } } }
    var all: [String] { lock.withLock { lines } }
}
