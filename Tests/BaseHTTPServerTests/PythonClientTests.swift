import Glibc
import Testing
@testable import BaseHTTPServer

/// The path of python3, when the machine has one.
private let python3: String? = ["/usr/bin/python3", "/usr/local/bin/python3"]
    .first { access($0, X_OK) == 0 }

/// Runs `arguments` to completion with standard error sent to `errorPath`; returns the exit
/// status. (posix_spawn: Foundation's Process leaks on Linux, which LeakSanitizer reports.)
private func run(_ arguments: [String], errorPath: String) -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
}

@Suite("Python's http.client as a real client")
struct PythonClientTests {
    @Test(.enabled(if: python3 != nil))
    func httpClientSeesPythonCompatibleResponses() throws {
        let running = try RunningServer(EchoHandler.self)
        defer { running.stop() }
        var script = #filePath
        for _ in 0..<2 { script = String(script[..<script.lastIndex(of: "/")!]) }
        script += "/python/http_client_check.py"
        let errorPath = "/tmp/http-client-check-\(getpid())-\(running.port).err"
        defer { unlink(errorPath) }
        let status = run([python3!, script, String(running.port)], errorPath: errorPath)
        #expect(status == 0, "\(readTextFile(errorPath) ?? "")")
    }
}
