import Foundation
import Glibc
import Testing
@testable import BaseHTTPServer

/// Answers every method with "path=PATH body=N" (unknown methods get the default 501).
final class ProbeHandler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) {}
    override func doGET() throws { answer() }
    override func doPOST() throws { answer() }
    private func answer() {
        let body = rfile.read()
        sendResponse(200)
        endHeaders()
        wfile.write("path=\(path) body=\(body.count)")
    }
}

/// Counts `logError` calls, thread-safely.
final class ErrorTally: @unchecked Sendable {
    static let shared = ErrorTally()
    private let lock = NSLock()
    private var messages: [String] = []
    func add(_ message: String) { lock.withLock { messages.append(message) } }
    var all: [String] { lock.withLock { messages } }
}

/// Tries to inject header lines through `sendHeader` (and the reason phrase on `/status`).
final class InjectingHandler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) {}
    override func logError(_ message: String) { ErrorTally.shared.add(message) }
    override func doGET() throws {
        if path == "/status" {
            sendResponse(200, message: "OK\r\nInjected-Status: 1")
        } else if path == "/error" {
            sendError(400, message: "Bad\r\nInjected-Error: 1", explain: "x\r\nInjected-Explain: 1")
            return
        } else {
            sendResponse(200)
        }
        sendHeader("X-Bad\r\nInjected-Name", "1")
        sendHeader("X-Bad-Value", "a\r\nInjected-Value: 1")
        sendHeader("X-Bad-LF", "a\nInjected-LF: 1")
        sendHeader("X-Bad-CR", "a\rInjected-CR: 1")
        sendHeader("X-Bad-Nul", "a\u{0}b")
        sendHeader("X-Nul\u{0}Name", "v")
        sendHeader("X-Good", "fine")
        endHeaders()
        wfile.write("body \(path)")
    }
}

/// One corpus entry: the bytes to send and what the first request must get.
struct HostileCase: CustomStringConvertible, Sendable {
    var name: String
    var summary: String
    var expectation: String
    var bytes: [UInt8]
    var description: String { name }

    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("corpus/hostile")

    static func all() -> [HostileCase] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".txt") }.sorted().compactMap { name in
            guard let text = try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            else { return nil }
            return HostileCase(name: String(name.dropLast(4)), text: text)
        }
    }

    init(name: String, text: String) {
        self.name = name
        summary = ""
        expectation = "any"
        var escaped = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# expect:") {
                expectation = line.dropFirst(9).trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("#") {
                if summary.isEmpty { summary = line.dropFirst().trimmingCharacters(in: .whitespaces) }
            } else {
                escaped += line
            }
        }
        bytes = HostileCase.unescape(escaped)
    }

    /// `\r \n \t \0 \xHH \\` and `\{N:c}` (N copies of c).
    static func unescape(_ text: String) -> [UInt8] {
        let input = Array(text.utf8)
        var output: [UInt8] = []
        var index = 0
        while index < input.count {
            let byte = input[index]
            index += 1
            guard byte == UInt8(ascii: "\\"), index < input.count else {
                output.append(byte)
                continue
            }
            let code = input[index]
            index += 1
            switch code {
            case UInt8(ascii: "r"): output.append(13)
            case UInt8(ascii: "n"): output.append(10)
            case UInt8(ascii: "t"): output.append(9)
            case UInt8(ascii: "0"): output.append(0)
            case UInt8(ascii: "x"):
                output.append(UInt8(String(decoding: input[index..<index + 2], as: UTF8.self), radix: 16)!)
                index += 2
            case UInt8(ascii: "{"):
                let close = input[index...].firstIndex(of: UInt8(ascii: "}"))!
                let spec = String(decoding: input[index..<close], as: UTF8.self).split(separator: ":")
                output += [UInt8](repeating: Array(spec[1].utf8)[0], count: Int(spec[0])!)
                index = close + 1
            default: output.append(code)
            }
        }
        return output
    }
}

/// A response parsed out of bytes read to the end of a connection.
struct ParsedResponse {
    var status: Int
    var head: String
    var body: String
}

/// Splits everything a connection carried into responses; nil when something is not a
/// well-formed response (which would itself be a failure).
func parseResponses(_ bytes: [UInt8]) -> [ParsedResponse]? {
    var responses: [ParsedResponse] = []
    var rest = bytes[...]
    let separator: [UInt8] = [13, 10, 13, 10]
    while !rest.isEmpty {
        guard let end = rest.indices.first(where: { rest[$0...].starts(with: separator) }) else { return nil }
        let head = String(decoding: rest[rest.startIndex..<end], as: UTF8.self)
        rest = rest[(end + 4)...]
        let lines = head.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else { return nil }
        var length = 0
        for line in lines.dropFirst() where line.lowercased().hasPrefix("content-length:") {
            length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? -1
        }
        guard length >= 0, rest.count >= length,
              !lines.contains(where: { $0.lowercased().hasPrefix("transfer-encoding:") }) else { return nil }
        let body = String(decoding: rest.prefix(length), as: UTF8.self)
        rest = rest.dropFirst(length)
        responses.append(ParsedResponse(status: status, head: head, body: body))
    }
    return responses
}

@Suite("Hostile input: smuggling, malformed requests, header injection", .serialized)
struct HostileInputTests {
    static let second = "GET /second HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"

    @Test func corpusIsPresent() {
        #expect(HostileCase.all().count >= 40)
    }

    /// Every corpus request, each followed by `GET /second` on the same connection: the first
    /// is refused (4xx/5xx) and the connection closes without answering /second, or it is
    /// answered and /second is answered exactly once, after it. Never anything else.
    @Test func noCorpusRequestDesynchronisesTheConnection() throws {
        raiseOpenFileLimit()
        let cases = HostileCase.all()
        let running = try RunningServer(ProbeHandler.self) {
            $0.headTimeout = 1
            $0.bodyTimeout = 1
            $0.idleTimeout = 0  // only the deadlines of unfinished requests end these
        }
        defer { running.stop() }
        let clients = try cases.map { hostile -> RawClient in
            let client = try RawClient(port: running.port, timeoutSeconds: 5)
            try? client.send(hostile.bytes + Array(HostileInputTests.second.utf8))
            return client
        }
        // Once the server has read what they sent (a later client's round trip comes after),
        // the slow cases (a body that never completes) reach their deadlines together.
        #expect(try exchange(running.port, "GET /barrier HTTP/1.1\r\nHost: a\r\n\r\n").status == 200)
        running.advanceDeadlineClock(by: 2)
        for (hostile, client) in zip(cases, clients) {
            let (bytes, end) = readUntilClosed(client.fd)
            let context = "\(hostile.name) (\(hostile.summary)): \(end), "
                + String(decoding: bytes.prefix(300), as: UTF8.self).debugDescription
            #expect(end != "timeout", "the connection did not end — \(context)")
            guard let responses = parseResponses(bytes), let first = responses.first else {
                Issue.record("no well-formed response — \(context)")
                continue
            }
            let seconds = responses.filter { $0.body.hasPrefix("path=/second ") }.count
            #expect(!responses.contains { $0.body.contains("smuggled") }, "a body was run as a request — \(context)")
            if first.status >= 400 {
                #expect(responses.count == 1 && seconds == 0, "answered after a refusal — \(context)")
            } else {
                #expect((200..<300).contains(first.status), "\(context)")
                #expect(first.body.hasPrefix("path=") && !first.body.hasPrefix("path=/second "), "\(context)")
                let closedAfterFirst = responses.count == 1 && first.head.lowercased().contains("connection: close")
                #expect((responses.count == 2 && seconds == 1) || closedAfterFirst,
                        "/second answered \(seconds) times in \(responses.count) responses — \(context)")
            }
            switch hostile.expectation {
            case "any":
                break
            case "answer":
                #expect((200..<300).contains(first.status) && seconds == 1, "expected an answer, then /second — \(context)")
            case "refuse":
                #expect(first.status >= 400, "expected a refusal — \(context)")
            default:
                #expect(first.status == Int(hostile.expectation), "expected \(hostile.expectation) — \(context)")
            }
        }
        #expect(waitForConnections(running) == 0)
    }

    @Test func sendHeaderRefusesControlCharactersAndTheResponseStaysValid() throws {
        let running = try RunningServer(InjectingHandler.self)
        defer { running.stop() }
        let before = ErrorTally.shared.all.count
        let client = try running.client()
        try client.send("GET /plain HTTP/1.1\r\nHost: a\r\n\r\nGET /again HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        let (bytes, _) = readUntilClosed(client.fd)
        let text = String(decoding: bytes, as: UTF8.self)
        let responses = try #require(parseResponses(bytes), "\(text.debugDescription)")
        #expect(responses.count == 2)
        for (response, path) in zip(responses, ["/plain", "/again"]) {
            #expect(response.status == 200)
            #expect(response.body == "body \(path)")
            #expect(response.head.contains("\r\nX-Good: fine"))
            #expect(!response.head.contains("Injected"), "\(response.head.debugDescription)")
            #expect(!response.head.contains("X-Bad"), "\(response.head.debugDescription)")
            #expect(!response.head.contains("\u{0}"))
        }
        #expect(ErrorTally.shared.all.count - before >= 12, "each refused header is logged")
    }

    /// Found by this suite (CR LF in a reason phrase reached the wire); fixed in c60c975.
    @Test func reasonPhraseCannotInjectHeaderLines() throws {
        let running = try RunningServer(InjectingHandler.self)
        defer { running.stop() }
        try reasonPhraseCheck(port: running.port)
    }

    private func reasonPhraseCheck(port: Int) throws {
        for path in ["/status", "/error"] {
            let client = try RawClient(port: port)
            try client.send("GET \(path) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            let (bytes, _) = readUntilClosed(client.fd)
            let text = String(decoding: bytes, as: UTF8.self)
            let head = text.components(separatedBy: "\r\n\r\n")[0]
            let responses = parseResponses(bytes)
            #expect(responses?.count == 1, "\(text.debugDescription)")
            #expect(!head.contains("\r\nInjected"), "\(path): \(head.debugDescription)")
        }
    }
}
