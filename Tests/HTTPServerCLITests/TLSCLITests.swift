import Foundation
import Glibc
import Testing

/// Runs `arguments` to completion, standard output and error to `/dev/null`; its exit status.
private func run(_ arguments: [String]) -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    closeFrom(&actions, 3)
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, arguments[0], &actions, nil, argv, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
}

/// A directory holding a certificate for localhost and 127.0.0.1, its key encrypted with the
/// password in `password.txt` (followed by a newline, as an editor saves it), and the key in
/// the clear; made with the `openssl` command (no key is committed).
private func makeTLSFiles() throws -> String {
    let directory = NSTemporaryDirectory() + "http-server-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    #expect(run(["/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem", "-days", "2",
                 "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]) == 0)
    #expect(run(["/usr/bin/openssl", "pkey", "-in", directory + "/key.pem", "-aes256",
                 "-passout", "pass:open sesame", "-out", directory + "/encrypted-key.pem"]) == 0)
    try "open sesame\n".write(toFile: directory + "/password.txt", atomically: true, encoding: .utf8)
    try "wrong\n".write(toFile: directory + "/wrong-password.txt", atomically: true, encoding: .utf8)
    return directory
}

@Suite("http-server --tls-cert, --tls-key, --tls-password-file")
struct TLSCLITests {
    @Test func servesHTTPSWithAnEncryptedKeyAndItsPasswordFile() throws {
        let served = try makeServedDirectory()
        let tls = try makeTLSFiles()
        defer {
            try? FileManager.default.removeItem(atPath: served)
            try? FileManager.default.removeItem(atPath: tls)
        }
        let child = try ChildServer(["-d", served, "--tls-cert", tls + "/cert.pem", "--tls-key",
                                     tls + "/encrypted-key.pem", "--tls-password-file", tls + "/password.txt", "0"])
        let line = child.firstLine()
        let pattern = /Serving HTTPS on 127\.0\.0\.1 port (\d+) \(https:\/\/127\.0\.0\.1:(\d+)\/\) \.\.\./
        let match = try #require(line.wholeMatch(of: pattern), "\(line)")
        let port = try #require(Int(match.1))

        let body = NSTemporaryDirectory() + "tls-cli-body-\(getpid())-\(port)"
        defer { unlink(body) }
        #expect(run(["/usr/bin/curl", "-sS", "--max-time", "10", "--cacert", tls + "/cert.pem", "-o", body,
                     "https://localhost:\(port)/hello.txt"]) == 0)
        #expect(contents(of: body) == "from the CLI\n")
        // Plain HTTP to the port is told so.
        #expect(try fetch(port: port, "GET /hello.txt HTTP/1.0\r\n\r\n").hasPrefix("HTTP/1.1 400 Bad Request\r\n"))

        kill(child.pid, SIGTERM)
        #expect(child.waitForExit())
        #expect(child.exitStatus == 0)
        let log = child.standardError
        #expect(log.contains("\"GET /hello.txt HTTP/1.1\" 200 -"), "\(log)")
        #expect(log.contains("code 400, message Plain HTTP request sent to an HTTPS port"), "\(log)")
    }

    @Test func tlsFlagsWithoutACertificateAreUsageErrors() throws {
        for (arguments, message) in [(["--tls-key", "key.pem"], "--tls-key requires --tls-cert to be set"),
                                     (["--tls-password-file", "p.txt"], "--tls-password-file requires --tls-cert to be set"),
                                     (["--tls-cert", "cert.pem", "--tls-password-file", "/nonexistent/p.txt"],
                                      "Failed to read TLS password file: No such file or directory"),
                                     (["--tls-cert"], "argument --tls-cert: expected one argument")] {
            let child = try ChildServer(arguments)
            #expect(child.waitForExit())
            #expect(child.exitStatus == 2, "\(arguments)")
            let errors = child.standardError
            #expect(errors.contains("usage: http-server"), "\(arguments)")
            #expect(errors.contains("http-server: error: \(message)"), "\(arguments): \(errors)")
        }
    }

    @Test func anUnusableCertificateOrKeyIsOneLineAndStatus1() throws {
        let tls = try makeTLSFiles()
        defer { try? FileManager.default.removeItem(atPath: tls) }
        let cases = [
            (["--tls-cert", tls + "/missing.pem"], "http-server: cannot read '\(tls)/missing.pem': No such file or directory\n"),
            (["--tls-cert", tls + "/cert.pem", "--tls-key", tls + "/encrypted-key.pem",
              "--tls-password-file", tls + "/wrong-password.txt"],
             "http-server: the password does not decrypt the private key in '\(tls)/encrypted-key.pem'\n"),
            (["--tls-cert", tls + "/cert.pem", "--tls-key", tls + "/encrypted-key.pem"],
             "http-server: the private key in '\(tls)/encrypted-key.pem' is encrypted: give its password (--tls-password-file)\n"),
        ]
        for (arguments, message) in cases {
            let child = try ChildServer(arguments + ["0"])
            #expect(child.waitForExit())
            #expect(child.exitStatus == 1, "\(arguments)")
            #expect(child.standardError == message, "\(arguments)")
            #expect(child.standardOutputRest.isEmpty, "no serving line: \(arguments)")
        }
    }
}
