import Foundation
import Glibc
import Testing
@testable import BaseHTTPServer

/// Runs the scripts under the scratch directory's `cgi-bin`; logs into the shared `LogBook`.
class LoggedCGIHandler: CGIHTTPRequestHandler {
    override func logMessage(_ message: String) { LogBook.shared.add("\(server.serverPort) \(message)") }
}

/// One script at a time, one more waiting: the rest get 503.
final class OneScriptHandler: LoggedCGIHandler {
    override class var maxRunningScripts: Int { 1 }
    override class var maxWaitingScripts: Int { 1 }
}

/// A directory to serve with `cgi-bin/` (scripts are written there by `script(_:_:)`).
final class CGIFixture: @unchecked Sendable {
    let scratch = ScratchDirectory()
    var root: String { scratch.path }

    init() {
        scratch.makeDirectory(Array("cgi-bin".utf8))
        scratch.write("static.txt", "a static file\n")
    }

    /// Writes an executable `/bin/sh` script at `name` (under the root).
    func script(_ name: String, _ body: String) {
        scratch.write(name, "#!/bin/sh\n" + body + "\n")
        chmod(root + "/" + name, 0o755)
    }

    func serve(_ handler: CGIHTTPRequestHandler.Type = LoggedCGIHandler.self) throws -> RunningServer {
        RunningServer(server: try DirectoryHTTPServer(("127.0.0.1", 0), handler, directory: root))
    }
}

/// The script's environment as a dictionary, from an `env` dump in the body.
private func variables(_ body: String) -> [String: String] {
    var result: [String: String] = [:]
    for line in body.split(separator: "\n") {
        guard let equals = line.firstIndex(of: "=") else { continue }
        result[String(line[..<equals])] = String(line[line.index(after: equals)...])
    }
    return result
}

@Suite("CGIHTTPRequestHandler: scripts as child processes")
struct CGITests {
    @Test func aScriptGetsTheRFC3875VariablesAndNothingOfTheServersEnvironment() throws {
        let fixture = CGIFixture()
        fixture.script("cgi-bin/env.sh", "printf 'Content-Type: text/plain\\n\\n'; /usr/bin/env")
        let running = try fixture.serve()
        defer { running.stop() }
        let response = try exchange(running.port, "GET /cgi-bin/env.sh/extra/p%20ath?a=1&b=2 HTTP/1.1\r\n"
            + "Host: localhost\r\nUser-Agent: tester\r\nX-Custom: one\r\nX-Custom: two\r\nProxy: http://evil/\r\n"
            + "X_Sneaky: 1\r\nAuthorization: Basic dXNlcjpwYXNz\r\nConnection: close\r\n\r\n")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "text/plain")
        let env = variables(response.bodyText)
        #expect(env["GATEWAY_INTERFACE"] == "CGI/1.1")
        #expect(env["REQUEST_METHOD"] == "GET")
        #expect(env["SCRIPT_NAME"] == "/cgi-bin/env.sh")
        #expect(env["PATH_INFO"] == "/extra/p ath")
        #expect(env["PATH_TRANSLATED"] == fixture.root + "/extra/p ath")
        #expect(env["QUERY_STRING"] == "a=1&b=2")
        #expect(env["SERVER_PORT"] == String(running.port))
        #expect(env["SERVER_PROTOCOL"] == "HTTP/1.1")
        #expect(env["REMOTE_ADDR"] == "127.0.0.1")
        #expect(env["HTTP_USER_AGENT"] == "tester")
        #expect(env["HTTP_X_CUSTOM"] == "one, two")
        #expect(env["AUTH_TYPE"] == "Basic")
        #expect(env["REMOTE_USER"] == "user")
        #expect(env["PATH"] == "/usr/local/bin:/usr/bin:/bin")
        #expect(env["HTTP_PROXY"] == nil, "httpoxy")
        #expect(env["HTTP_X_SNEAKY"] == nil, "a name with _ could pose as another")
        // Nothing else: the server's own environment (HOME, USER, ...) stays out. The shell
        // that runs the script adds PWD, and env itself `_`.
        let expected: Set<String> = ["GATEWAY_INTERFACE", "SERVER_SOFTWARE", "SERVER_NAME", "SERVER_PORT",
                                     "SERVER_PROTOCOL", "REQUEST_METHOD", "SCRIPT_NAME", "QUERY_STRING",
                                     "REMOTE_ADDR", "REMOTE_PORT", "REQUEST_URI", "PATH", "PATH_INFO",
                                     "PATH_TRANSLATED", "AUTH_TYPE", "REMOTE_USER", "PWD", "SHLVL", "_"]
        let unexpected = env.keys.filter { !expected.contains($0) && !$0.hasPrefix("HTTP_") }
        #expect(unexpected.isEmpty, "not from the request: \(unexpected)")
        #expect(env["SERVER_SOFTWARE"]?.hasPrefix("SimpleHTTP/0.6") == true)
    }

    @Test func aFormPostReachesTheScriptsStandardInput() throws {
        let fixture = CGIFixture()
        fixture.script("cgi-bin/echo.sh", """
            printf 'Content-Type: text/plain\\n\\n'
            echo "type=$CONTENT_TYPE length=$CONTENT_LENGTH"
            head -c "$CONTENT_LENGTH"
            """)
        let running = try fixture.serve()
        defer { running.stop() }
        let form = "name=Ada+Lovelace&language=Swift"
        let response = try exchange(running.port, "POST /cgi-bin/echo.sh HTTP/1.1\r\nHost: x\r\n"
            + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(form.utf8.count)\r\n"
            + "Connection: close\r\n\r\n" + form)
        #expect(response.status == 200)
        #expect(response.bodyText == "type=application/x-www-form-urlencoded length=\(form.utf8.count)\n" + form)
        // A POST to anything else is Python's 501.
        #expect(try exchange(running.port, "POST /static.txt HTTP/1.0\r\nContent-Length: 0\r\n\r\n").status == 501)
    }

    @Test func theScriptSetsStatusHeadersAndRedirects() throws {
        let fixture = CGIFixture()
        fixture.script("cgi-bin/status.sh", "printf 'Status: 418 Short and stout\\nContent-Type: text/plain\\nX-Script: yes\\n\\ntea'")
        fixture.script("cgi-bin/away.sh", "printf 'Location: https://example.com/elsewhere\\n\\n'")
        fixture.script("cgi-bin/local.sh", "printf 'Location: /static.txt\\n\\n'")
        fixture.script("cgi-bin/notype.sh", "printf 'X-Only: this\\n\\nbody'")
        fixture.script("cgi-bin/silent.sh", "exit 0")
        fixture.script("cgi-bin/crlf.sh", "printf 'Content-Type: text/plain\\r\\nContent-Length: 2\\r\\n\\r\\nok'")
        let running = try fixture.serve()
        defer { running.stop() }
        let status = try exchange(running.port, "GET /cgi-bin/status.sh HTTP/1.0\r\n\r\n")
        #expect(status.statusLine == "HTTP/1.1 418 Short and stout")
        #expect(status.header("X-Script") == "yes" && status.bodyText == "tea")
        let away = try exchange(running.port, "GET /cgi-bin/away.sh HTTP/1.0\r\n\r\n")
        #expect(away.status == 302 && away.header("Location") == "https://example.com/elsewhere")
        let local = try exchange(running.port, "GET /cgi-bin/local.sh HTTP/1.0\r\n\r\n")
        #expect(local.status == 200 && local.bodyText == "a static file\n", "an internal redirect")
        #expect(try exchange(running.port, "GET /cgi-bin/notype.sh HTTP/1.0\r\n\r\n").status == 500)
        #expect(try exchange(running.port, "GET /cgi-bin/silent.sh HTTP/1.0\r\n\r\n").status == 500)
        let crlf = try exchange(running.port, "GET /cgi-bin/crlf.sh HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(crlf.status == 200 && crlf.header("Content-Length") == "2" && crlf.bodyText == "ok")
        #expect(eventually { LogBook.shared.contains("\(running.port) CGI script /cgi-bin/notype.sh: no Content-Type") })
    }

    @Test func nestedDirectoriesMissingAndUnrunnableScripts() throws {
        let fixture = CGIFixture()
        fixture.scratch.makeDirectory(Array("cgi-bin/sub".utf8))
        fixture.script("cgi-bin/sub/deep.sh", "printf 'Content-Type: text/plain\\n\\n%s|%s' \"$SCRIPT_NAME\" \"$PATH_INFO\"")
        fixture.scratch.write("cgi-bin/data.txt", "#!/bin/sh\necho must not run\n")  // not executable
        fixture.scratch.makeDirectory(Array("cgi-bin/adir".utf8))
        symlink("/usr/bin/env", fixture.root + "/cgi-bin/outside")
        let running = try fixture.serve()
        defer { running.stop() }
        let deep = try exchange(running.port, "GET /cgi-bin/sub/deep.sh/more/info HTTP/1.0\r\n\r\n")
        #expect(deep.bodyText == "/cgi-bin/sub/deep.sh|/more/info")
        #expect(try exchange(running.port, "GET /cgi-bin/nope.sh HTTP/1.0\r\n\r\n").status == 404)
        let data = try exchange(running.port, "GET /cgi-bin/data.txt HTTP/1.0\r\n\r\n")
        #expect(data.status == 403 && !data.bodyText.contains("must not run"))
        #expect(try exchange(running.port, "GET /cgi-bin/adir HTTP/1.0\r\n\r\n").status == 403)
        let outside = try exchange(running.port, "GET /cgi-bin/outside HTTP/1.0\r\n\r\n")
        #expect(outside.status == 404, "a link that leads out of the directory is refused")
        for path in ["/cgi-bin/../cgi-bin/outside", "/cgi-bin/%2e%2e/static.txt", "/x/../cgi-bin/sub/../data.txt"] {
            let response = try exchange(running.port, "GET \(path) HTTP/1.0\r\n\r\n")
            #expect([403, 404].contains(response.status) || response.bodyText == "a static file\n", "\(path)")
            #expect(!response.bodyText.contains("must not run") && !response.bodyText.contains("PATH="), "\(path)")
        }
        // Files outside cgi-bin are served, not run.
        #expect(try exchange(running.port, "GET /static.txt HTTP/1.0\r\n\r\n").bodyText == "a static file\n")
    }

    @Test func outputStreamsToTheClientAsTheScriptWritesIt() throws {
        let fixture = CGIFixture()
        let go = fixture.root + "/go"
        fixture.script("cgi-bin/lines.sh", """
            printf 'Content-Type: text/plain\\n\\n'
            echo first
            i=0; while [ ! -e '\(go)' ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
            echo second
            """)
        let running = try fixture.serve()
        defer { running.stop() }
        let result = runCommand(["/usr/bin/python3", "-c", """
            import http.client, os
            c = http.client.HTTPConnection('127.0.0.1', \(running.port), timeout=20)
            c.request('GET', '/cgi-bin/lines.sh')
            r = c.getresponse()
            first = r.readline()
            arrived_before_go = not os.path.exists('\(go)')
            open('\(go)', 'w').close()
            print(r.getheader('Transfer-Encoding'), first, arrived_before_go, r.readline(), r.read())
            """])
        #expect(result.output == "chunked b'first\\n' True b'second\\n' b''\n", "\(result.output)")
    }

    @Test func aSilentScriptIsKilledAt504AndItsErrorsAreLogged() throws {
        let fixture = CGIFixture()
        fixture.script("cgi-bin/stuck.sh", "echo 'going to sleep' >&2; exec sleep 1000")
        let running = try fixture.serve()
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET /cgi-bin/stuck.sh HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(eventually { LogBook.shared.contains("\(running.port) CGI script /cgi-bin/stuck.sh: going to sleep") })
        running.advanceDeadlineClock(by: 61)
        let response = try #require(try client.readResponse())
        #expect(response.status == 504)
        #expect(eventually { LogBook.shared.contains("\(running.port) CGI script /cgi-bin/stuck.sh killed: silent for 60 s") })
        #expect(eventually { running.cgiSlots().running == 0 }, "the script was reaped")
    }

    @Test func aClientThatLeavesGetsItsScriptTerminatedThenKilled() throws {
        let fixture = CGIFixture()
        let pidFile = fixture.root + "/pid"
        fixture.script("cgi-bin/stubborn.sh", """
            trap 'echo TERM received >&2' TERM
            echo $$ > '\(pidFile).tmp'; mv '\(pidFile).tmp' '\(pidFile)'
            while true; do sleep 0.05; done
            """)
        let running = try fixture.serve()
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET /cgi-bin/stubborn.sh HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(eventually { access(pidFile, F_OK) == 0 })
        client.shutdownWrite()  // the client gives up: its FIN comes before any answer
        let pid = try #require(readTextFile(pidFile).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        // Once the server has read the client's end, the next sweep sends SIGTERM.
        #expect(eventually {
            running.advanceDeadlineClock(by: 0.01)
            return LogBook.shared.contains("\(running.port) CGI script /cgi-bin/stubborn.sh: TERM received")
        })
        #expect(kill(pid, 0) == 0, "it ignores SIGTERM")
        running.advanceDeadlineClock(by: 3)  // the kill delay: SIGKILL
        #expect(eventually { kill(pid, 0) != 0 && errno == ESRCH }, "killed and reaped")
        #expect(eventually { running.cgiSlots().running == 0 })
    }

    @Test func scriptsBeyondTheCapWaitThenGet503() throws {
        let fixture = CGIFixture()
        let go = fixture.root + "/go"
        fixture.script("cgi-bin/wait.sh", """
            i=0; while [ ! -e '\(go)' ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
            printf 'Content-Type: text/plain\\n\\ndone'
            """)
        let running = try fixture.serve(OneScriptHandler.self)
        defer { running.stop() }
        let first = try running.client(), second = try running.client(), third = try running.client()
        try first.send("GET /cgi-bin/wait.sh HTTP/1.0\r\n\r\n")
        #expect(eventually { running.cgiSlots().running == 1 })
        try second.send("GET /cgi-bin/wait.sh HTTP/1.0\r\n\r\n")
        #expect(eventually { running.cgiSlots().waiting == 1 })
        try third.send("GET /cgi-bin/wait.sh HTTP/1.0\r\n\r\n")
        #expect(try third.readResponse()?.status == 503)
        _ = FileManager.default.createFile(atPath: go, contents: nil)
        #expect(try first.readResponse()?.bodyText == "done")
        #expect(try second.readResponse()?.bodyText == "done")
    }

    @Test func chunkedRequestBodiesGet411() throws {
        let fixture = CGIFixture()
        fixture.script("cgi-bin/echo.sh", "printf 'Content-Type: text/plain\\n\\n'; cat")
        let running = try fixture.serve()
        defer { running.stop() }
        let response = try exchange(running.port, "POST /cgi-bin/echo.sh HTTP/1.1\r\nHost: x\r\n"
            + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        #expect(response.status == 411)
    }

    @Test func staticRequestsStayFastWhileFiftySlowScriptsRun() throws {
        let fixture = CGIFixture()
        let go = fixture.root + "/go"
        fixture.script("cgi-bin/slow.sh", """
            i=0; while [ ! -e '\(go)' ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
            printf 'Content-Type: text/plain\\n\\nslow'
            """)
        let running = try fixture.serve()
        defer { running.stop() }
        var slow: [RawClient] = []
        for _ in 0..<50 {
            let client = try running.client()
            try client.send("GET /cgi-bin/slow.sh HTTP/1.0\r\n\r\n")
            slow.append(client)
        }
        #expect(eventually { running.cgiSlots().running == 32 && running.cgiSlots().waiting == 18 })
        var times: [Double] = []
        for _ in 0..<20 {
            let start = DispatchTime.now().uptimeNanoseconds
            #expect(try exchange(running.port, "GET /static.txt HTTP/1.0\r\n\r\n").bodyText == "a static file\n")
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        times.sort()
        #expect(times[10] < 100, "median static request \(times[10]) ms while scripts run")
        _ = FileManager.default.createFile(atPath: go, contents: nil)
        for client in slow { #expect(try client.readResponse()?.bodyText == "slow") }
    }

    @Test func aHundredMBInAndTwoHundredMBOutWithBoundedMemory() throws {
        let fixture = CGIFixture()
        fixture.script("cgi-bin/count.sh", "printf 'Content-Type: text/plain\\n\\n'; wc -c | tr -d ' '")
        fixture.script("cgi-bin/zeros.sh", "printf 'Content-Type: application/octet-stream\\n\\n'; exec head -c 200000000 /dev/zero")
        let running = try fixture.serve()
        defer { running.stop() }
        let before = try MemoryReading.now(trimmed: true)
        final class Peak: @unchecked Sendable { var reading: MemoryReading? }
        let peak = Peak()
        let done = DispatchSemaphore(value: 0)
        let port = running.port
        final class Outcome: @unchecked Sendable { var output = "" }
        let outcome = Outcome()
        Thread.detachNewThread {
            outcome.output = runCommand(["/usr/bin/python3", "-c", """
                import http.client
                c = http.client.HTTPConnection('127.0.0.1', \(port), timeout=60)
                block = bytes(1 << 20)
                def body():
                    for _ in range(100): yield block
                c.request('POST', '/cgi-bin/count.sh', body=body(), headers={'Content-Length': str(100 << 20)})
                r = c.getresponse(); print(r.status, r.read().decode().strip())
                c.request('GET', '/cgi-bin/zeros.sh')
                r = c.getresponse(); n = 0
                while True:
                    chunk = r.read(1 << 20)
                    if not chunk: break
                    n += len(chunk)
                print(r.status, n)
                """]).output
            done.signal()
        }
        while done.wait(timeout: .now() + .milliseconds(50)) == .timedOut {
            if let reading = try? MemoryReading.now() { peak.reading = peak.reading.map { $0.peak(reading) } ?? reading }
        }
        #expect(outcome.output == "200 \(100 << 20)\n200 200000000\n", "\(outcome.output)")
        let top = try #require(peak.reading)
        expectMemoryGrowth(from: before, to: top, "100 MB into a script and 200 MB out of one",
                           heapBelow: 16 * 1024, rssBelow: 48 * 1024)
    }

    @Test func gitCloneAndPushThroughGitHTTPBackend() throws {
        let fixture = CGIFixture()
        let repos = fixture.root + "/repos"
        let work = fixture.root + "/work"
        let git = "/usr/bin/git"
        let identity = ["-c", "user.name=Tester", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
        #expect(runCommand([git] + identity + ["init", "-q", work]).status == 0)
        fixture.scratch.write("work/README", "hello from git\n")
        #expect(runCommand([git, "-C", work, "add", "README"]).status == 0)
        #expect(runCommand([git, "-C", work] + identity + ["commit", "-q", "-m", "first"]).status == 0)
        #expect(runCommand([git, "clone", "-q", "--bare", work, repos + "/project.git"]).status == 0)
        #expect(runCommand([git, "-C", repos + "/project.git", "config", "http.receivepack", "true"]).status == 0)
        fixture.script("cgi-bin/git", """
            export GIT_PROJECT_ROOT='\(repos)' GIT_HTTP_EXPORT_ALL=1
            exec /usr/lib/git-core/git-http-backend
            """)
        let running = try fixture.serve()
        defer { running.stop() }
        let url = "http://127.0.0.1:\(running.port)/cgi-bin/git/project.git"
        let clone = fixture.root + "/clone"
        let cloned = runCommand([git, "clone", "-q", url, clone])
        #expect(cloned.status == 0, "\(cloned.output)")
        #expect(readTextFile(clone + "/README") == "hello from git\n")
        fixture.scratch.write("clone/NEW", "pushed over CGI\n")
        #expect(runCommand([git, "-C", clone, "add", "NEW"]).status == 0)
        #expect(runCommand([git, "-C", clone] + identity + ["commit", "-q", "-m", "second"]).status == 0)
        let pushed = runCommand([git, "-C", clone, "push", "-q", "origin", "HEAD"])
        #expect(pushed.status == 0, "\(pushed.output)")
        let log = runCommand([git, "-C", repos + "/project.git", "log", "--format=%s", "main"])
        #expect(log.output == "second\nfirst\n", "\(log.output)")
        let shown = runCommand([git, "-C", repos + "/project.git", "show", "main:NEW"])
        #expect(shown.output == "pushed over CGI\n")
    }
}

@Suite("CGI response heads, as Go's net/http/cgi reads them")
struct CGIResponseHeadTests {
    private func parse(_ text: String) throws(CGIResponseHead.Failure) -> CGIResponseHead {
        try CGIResponseHead(parsing: ArraySlice(Array(text.utf8)))
    }

    @Test func theEndOfTheHeaderBlock() {
        #expect(CGIResponseHead.end(in: Array("A: b\n\nbody".utf8)) == 6)
        #expect(CGIResponseHead.end(in: Array("A: b\r\n\r\nbody".utf8)) == 8)
        #expect(CGIResponseHead.end(in: Array("A: b\r\n".utf8)) == nil)
        #expect(CGIResponseHead.end(in: Array("\nbody".utf8)) == 1)
    }

    @Test func statusLocationAndContentType() throws {
        #expect(try parse("Content-Type: text/plain\n").disposition == .respond(status: 200, reason: nil))
        #expect(try parse("Status: 404 Not Here\n").disposition == .respond(status: 404, reason: "Not Here"))
        #expect(try parse("Location: http://x/\n").disposition == .respond(status: 302, reason: nil))
        #expect(try parse("Location: /local?q\n").disposition == .internalRedirect(path: "/local?q"))
        #expect(try parse("Location: //other.example/\n").disposition == .respond(status: 302, reason: nil))
        #expect(try parse("Content-Type: a/b\nContent-Length: 12\n").contentLength == 12)
        #expect(throws: CGIResponseHead.Failure.missingContentType) { try parse("X: y\n") }
        #expect(throws: CGIResponseHead.Failure.badStatus("abc")) { try parse("Status: abc\n") }
        #expect(throws: CGIResponseHead.Failure.malformedLine("no colon")) { try parse("no colon\n") }
        #expect(throws: CGIResponseHead.Failure.badContentLength("-1")) {
            try parse("Content-Type: a/b\nContent-Length: -1\n")
        }
    }

    @Test func pathsCollapseAsPythons() {
        #expect(collapsePath("/cgi-bin/a.sh/x?q=1")! == ("/cgi-bin/a.sh/x", "q=1"))
        #expect(collapsePath("/a/../cgi-bin/./b")! == ("/cgi-bin/b", ""))
        #expect(collapsePath("/cgi-bin/..")! == ("/", ""))
        #expect(collapsePath("/../etc/passwd") == nil)
        #expect(decodeBase64(Array("dXNlcjpwYXNz".utf8)) == Array("user:pass".utf8))
        #expect(decodeBase64(Array("not base64!".utf8)) == nil)
    }
}
