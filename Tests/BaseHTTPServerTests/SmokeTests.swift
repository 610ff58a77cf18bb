import Testing
@testable import BaseHTTPServer

@Suite("Smoke")
struct SmokeTests {
    @Test func helloWorldOverLoopback() throws {
        let running = try RunningServer(HelloHandler.self)
        defer { running.stop() }
        #expect(running.port > 0)
        let response = try exchange(running.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(response.status == 200)
        #expect(response.bodyText == "Hello, World!")
        #expect(response.header("Content-Length") == "13")
        #expect(response.header("Server")?.hasPrefix("BaseHTTP/0.6 Swift/") == true)
        #expect(response.header("Date")?.hasSuffix(" GMT") == true)
    }
}
