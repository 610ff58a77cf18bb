import Foundation
import Testing
@testable import BaseHTTPServer

/// The path of python3, when the machine has one.
private let python3: String? = ["/usr/bin/python3", "/usr/local/bin/python3"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }

@Suite("Python's http.client as a real client")
struct PythonClientTests {
    @Test(.enabled(if: python3 != nil))
    func httpClientSeesPythonCompatibleResponses() throws {
        let running = try RunningServer(EchoHandler.self)
        defer { running.stop() }
        let script = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("python/http_client_check.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python3!)
        process.arguments = [script.path, String(running.port)]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(message)")
    }
}
