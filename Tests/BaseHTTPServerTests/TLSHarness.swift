import Foundation
import Glibc
import Testing
@testable import BaseHTTPServer

/// Certificates and keys the TLS tests use, made once per test process with the `openssl`
/// command (none is committed): an ECDSA P-256 certificate for localhost and 127.0.0.1 with
/// its key, the two in one file, the key encrypted with a password, a key of another pair,
/// and a file that holds no certificate.
final class TLSFiles: Sendable {
    static let shared = TLSFiles()

    let directory: String
    var certificate: String { directory + "/cert.pem" }
    var key: String { directory + "/key.pem" }
    var combined: String { directory + "/combined.pem" }
    var encryptedKey: String { directory + "/encrypted-key.pem" }
    let password = "correct horse"
    var otherKey: String { directory + "/other-key.pem" }
    var notACertificate: String { directory + "/not-a-certificate.pem" }

    private init() {
        directory = NSTemporaryDirectory() + "tls-tests-\(getpid())"
        mkdir(directory, 0o700)
        let made = runCommand(["/usr/bin/openssl", "req", "-x509", "-newkey", "ec",
                               "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                               "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem",
                               "-days", "2", "-subj", "/CN=localhost",
                               "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        precondition(made.status == 0, "openssl req: \(made.output)")
        let encrypted = runCommand(["/usr/bin/openssl", "pkey", "-in", directory + "/key.pem", "-aes256",
                                    "-passout", "pass:" + password, "-out", directory + "/encrypted-key.pem"])
        precondition(encrypted.status == 0, "openssl pkey: \(encrypted.output)")
        let other = runCommand(["/usr/bin/openssl", "genpkey", "-algorithm", "EC",
                                "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", directory + "/other-key.pem"])
        precondition(other.status == 0, "openssl genpkey: \(other.output)")
        let pair = (readTextFile(directory + "/cert.pem") ?? "") + (readTextFile(directory + "/key.pem") ?? "")
        _ = FileManager.default.createFile(atPath: directory + "/combined.pem", contents: Data(pair.utf8))
        _ = FileManager.default.createFile(atPath: directory + "/not-a-certificate.pem",
                                       contents: Data("just some text\n".utf8))
    }

    var configuration: TLSConfiguration {
        TLSConfiguration(certificateChain: certificate, privateKey: key)
    }
}

/// Runs a command to completion, its standard input from `input`, standard output and error
/// collected together. (posix_spawn: Foundation's Process leaks on Linux, which LeakSanitizer
/// reports.)
func runCommand(_ arguments: [String], input: [UInt8] = []) -> (status: Int32, output: String) {
    let base = NSTemporaryDirectory() + "command-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    _ = FileManager.default.createFile(atPath: base + ".in", contents: Data(input))
    defer {
        unlink(base + ".in")
        unlink(base + ".out")
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, base + ".in", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, base + ".out", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ) == 0 else {
        return (-1, "cannot run \(arguments[0])")
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let output = readTextFile(base + ".out") ?? ""
    return ((status & 0x7f) == 0 ? (status >> 8) & 0xff : -1, output)
}

/// `curl` over HTTPS, trusting the tests' certificate: the body and what `-w` wrote.
func curlHTTPS(_ arguments: [String]) -> (status: Int32, output: String) {
    runCommand(["/usr/bin/curl", "-sS", "--max-time", "20", "--cacert", TLSFiles.shared.certificate] + arguments)
}

/// Runs `script` in Python after a prelude that defines `PORT` and `connect()` (a TLS socket
/// to the server, verified against the tests' certificate): for what the usual clients do
/// not do, such as stop reading mid-response or reset.
func pythonTLS(_ script: String, port: Int) -> (status: Int32, output: String) {
    let prelude = """
        import socket, ssl, sys, time
        PORT = \(port)
        def connect():
            ctx = ssl.create_default_context(cafile='\(TLSFiles.shared.certificate)')
            plain = socket.create_connection(('127.0.0.1', PORT), timeout=20)
            return ctx.wrap_socket(plain, server_hostname='localhost')

        """
    return runCommand(["/usr/bin/python3", "-c", prelude + script])
}
