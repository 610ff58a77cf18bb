import Foundation
import Glibc
import Testing

@Suite("http-server --cgi")
struct CGICLITests {
    @Test func runsScriptsUnderCgiBinAndServesTheRest() throws {
        let served = try makeServedDirectory()
        defer { try? FileManager.default.removeItem(atPath: served) }
        try FileManager.default.createDirectory(atPath: served + "/cgi-bin", withIntermediateDirectories: true)
        try "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nhello from %s with %s\\n' \"$SCRIPT_NAME\" \"$QUERY_STRING\"\necho 'a note' >&2\n"
            .write(toFile: served + "/cgi-bin/hello.sh", atomically: true, encoding: .utf8)
        chmod(served + "/cgi-bin/hello.sh", 0o755)
        let child = try ChildServer(["-d", served, "--cgi", "0"])
        let port = try #require(servingPort(child.firstLine()))
        let script = try fetch(port: port, "GET /cgi-bin/hello.sh?x=1 HTTP/1.0\r\n\r\n")
        #expect(script.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(script)")
        #expect(script.hasSuffix("\r\n\r\nhello from /cgi-bin/hello.sh with x=1\n"), "\(script)")
        #expect(try fetch(port: port, "GET /hello.txt HTTP/1.0\r\n\r\n").hasSuffix("\r\n\r\nfrom the CLI\n"))
        #expect(try fetch(port: port, "POST /hello.txt HTTP/1.0\r\nContent-Length: 0\r\n\r\n").hasPrefix("HTTP/1.1 501 "))
        kill(child.pid, SIGTERM)
        #expect(child.waitForExit())
        #expect(child.exitStatus == 0)
        let log = child.standardError
        #expect(log.contains("\"GET /cgi-bin/hello.sh?x=1 HTTP/1.0\" 200 -"), "\(log)")
        #expect(log.contains("CGI script /cgi-bin/hello.sh: a note"), "\(log)")
    }

    @Test func cgiAndUploadTogetherAreAUsageError() throws {
        let child = try ChildServer(["--cgi", "--upload"])
        #expect(child.waitForExit())
        #expect(child.exitStatus == 2)
        #expect(child.standardError.contains("http-server: error: argument --cgi: not allowed with argument --upload"))
    }
}
