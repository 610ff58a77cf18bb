import Foundation
import Glibc
import Testing
@testable import BaseHTTPServer

/// Logs into the shared `LogBook`, and answers every GET with "Hello, World!".
final class LoggedHelloHandler: BaseHTTPRequestHandler {
    override func logMessage(_ message: String) { LogBook.shared.add("\(server.serverPort) \(message)") }
    override func doGET() throws {
        sendResponse(200)
        endHeaders()
        wfile.write("Hello, World!")
    }
}

private func httpsServer(_ handler: BaseHTTPRequestHandler.Type = HelloHandler.self) throws -> RunningServer {
    RunningServer(server: try HTTPServer(("127.0.0.1", 0), handler, tls: TLSFiles.shared.configuration))
}

private func directoryServer(_ scratch: ScratchDirectory) throws -> RunningServer {
    RunningServer(server: try DirectoryHTTPServer(("127.0.0.1", 0), QuietFileHandler.self,
                                                  directory: scratch.path, tls: TLSFiles.shared.configuration))
}

/// Polls `condition` (about every 10 ms) for up to 20 s: for an outcome that follows I/O.
func eventually(_ condition: () -> Bool) -> Bool {
    for _ in 0..<2000 {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// The first bytes of a TLS 1.2 ClientHello record: a handshake that never finishes.
private let halfAClientHello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0xC8, 0x01, 0x00, 0x00, 0xC4, 0x03, 0x03]
    + [UInt8](repeating: 0x42, count: 32)

@Suite("HTTPS: TLS over the TCP stream, with real clients")
struct TLSTests {
    @Test func curlFetchesFilesOverOneKeptAliveSession() throws {
        let scratch = ScratchDirectory()
        scratch.write("a.txt", "first\n")
        scratch.write("b.txt", "second\n")
        let running = try directoryServer(scratch)
        defer { running.stop() }
        let base = "https://localhost:\(running.port)"
        let result = curlHTTPS(["-w", "[%{http_code} %{num_connects} %{ssl_verify_result}]\n",
                                base + "/a.txt", base + "/b.txt"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output == "first\n[200 1 0]\nsecond\n[200 0 0]\n")
    }

    @Test func pythonSSLAcceptsTLS12And13RefusesOlderAndNegotiatesALPN() throws {
        let running = try httpsServer()
        defer { running.stop() }
        var script = #filePath
        for _ in 0..<2 { script = String(script[..<script.lastIndex(of: "/")!]) }
        let result = runCommand(["/usr/bin/python3", script + "/python/tls_client_check.py",
                                 String(running.port), TLSFiles.shared.certificate])
        #expect(result.status == 0, "\(result.output)")
        for check in ["TLSv1.2 accepted", "TLSv1.3 accepted", "TLSv1 refused", "TLSv1_1 refused",
                      "ALPN chooses http/1.1", "no_application_protocol", "close_notify before",
                      "missing close_notify", "three requests on one session"] {
            #expect(result.output.contains(check), "\(check): \(result.output)")
        }
    }

    @Test func opensslSClientIsAnsweredOverTLS13() throws {
        let running = try httpsServer()
        defer { running.stop() }
        let result = runCommand(["/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:\(running.port)",
                                 "-servername", "localhost", "-CAfile", TLSFiles.shared.certificate,
                                 "-verify_return_error", "-quiet"],
                                input: Array("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8))
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("HTTP/1.1 200 OK"), "\(result.output)")
        #expect(result.output.hasSuffix("Hello, World!"), "\(result.output)")
    }

    @Test func renegotiationIsRefused() throws {
        let running = try httpsServer()
        defer { running.stop() }
        // s_client renegotiates on a line "R" read from a terminal-like input; Python plays it.
        let script = """
            import subprocess, sys
            client = subprocess.Popen(['/usr/bin/openssl', 's_client', '-tls1_2', '-connect',
                                       '127.0.0.1:\(running.port)', '-CAfile', '\(TLSFiles.shared.certificate)'],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            output = b''
            while b'Verify return code' not in output:
                line = client.stdout.readline()
                if not line: break
                output += line
            client.stdin.write(b'R\\n'); client.stdin.flush()
            output += client.stdout.read()
            client.wait(timeout=20)
            sys.stdout.write(output.decode(errors='replace'))
            """
        let result = runCommand(["/usr/bin/python3", "-c", script])
        #expect(result.output.contains("RENEGOTIATING"), "\(result.output)")
        #expect(result.output.contains("no renegotiation"), "\(result.output)")
    }

    @Test func plainHTTPIsAnsweredWithAPlainTextErrorAndLogged() throws {
        let running = try httpsServer(LoggedHelloHandler.self)
        defer { running.stop() }
        let client = try running.client()
        try client.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let response = try #require(try client.readResponse())
        #expect(response.status == 400)
        #expect(response.header("Content-Type") == "text/plain; charset=utf-8")
        #expect(response.bodyText.contains("this port speaks HTTPS"))
        #expect(client.isClosedByServer())
        #expect(eventually {
            LogBook.shared.contains("\(running.port) code 400, message Plain HTTP request sent to an HTTPS port")
        })
        // The port still speaks HTTPS.
        let result = curlHTTPS(["https://localhost:\(running.port)/"])
        #expect(result.output == "Hello, World!")
    }

    @Test func aStalledHandshakeIsClosedAtTheDeadline() throws {
        let running = try httpsServer()
        defer { running.stop() }
        let client = try running.client()
        try client.send(halfAClientHello)
        #expect(eventually { running.server.connectionCount == 1 })
        running.advanceDeadlineClock(by: 9)
        #expect(running.server.connectionCount == 1)
        running.advanceDeadlineClock(by: 1.5)
        #expect(client.isClosedByServer())
        #expect(eventually { running.server.connectionCount == 0 })
    }

    @Test func theHandshakeDeadlineIsConfigurable() throws {
        let running = RunningServer(server: try HTTPServer(("127.0.0.1", 0), HelloHandler.self,
                                                           tls: TLSFiles.shared.configuration)) {
            $0.handshakeTimeout = 2
        }
        defer { running.stop() }
        let client = try running.client()  // connects, says nothing
        #expect(eventually { running.server.connectionCount == 1 })
        running.advanceDeadlineClock(by: 2.5)
        #expect(client.isClosedByServer())
    }

    @Test func randomBytesGetAnAlertAndTheServerGoesOn() throws {
        let running = try httpsServer()
        defer { running.stop() }
        let client = try running.client()
        var garbage = [UInt8](repeating: 0, count: 3000)
        for index in garbage.indices { garbage[index] = .random(in: 0...255) }
        garbage[0] = 0x16  // a handshake record's type, then nonsense
        garbage[1] = 0x03
        try client.send(garbage)
        let answer = try client.readToEOF()
        #expect(answer.isEmpty || answer[0] == 0x15, "an alert record, or nothing: \(answer.prefix(8))")
        #expect(eventually { running.server.connectionCount == 0 })
        #expect(curlHTTPS(["https://localhost:\(running.port)/"]).output == "Hello, World!")
    }

    @Test func hundredsOfStalledHandshakesDoNotHoldUpAnotherClient() throws {
        let running = try httpsServer()
        defer { running.stop() }
        var stalled: [RawClient] = []
        for index in 0..<300 {
            let client = try running.client()
            if index % 2 == 0 { try client.send(halfAClientHello) }
            stalled.append(client)
        }
        #expect(eventually { running.server.connectionCount == 300 })
        let result = curlHTTPS(["--max-time", "5", "https://localhost:\(running.port)/"])
        #expect(result.output == "Hello, World!", "\(result.output)")
        running.advanceDeadlineClock(by: 11)
        #expect(eventually { running.server.connectionCount == 0 })
        #expect(stalled[0].isClosedByServer() && stalled[299].isClosedByServer())
    }

    @Test func aLargeDownloadIsIntactAndItsCiphertextQueueStaysBounded() throws {
        let scratch = ScratchDirectory()
        var bytes = [UInt8](repeating: 0, count: 48 << 20)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for index in stride(from: 0, to: bytes.count, by: 8) {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            withUnsafeBytes(of: state) { bytes.replaceSubrange(index..<(index + 8), with: $0) }
        }
        scratch.write(Array("big.bin".utf8), bytes)
        let digest = runCommand(["/usr/bin/sha256sum", scratch.path + "/big.bin"]).output.prefix(64)
        let running = try directoryServer(scratch)
        defer { running.stop() }
        // The client reads nothing for a second, then everything.
        final class Outcome: @unchecked Sendable { var status: Int32 = -1; var output = "" }
        let result = Outcome()
        let done = DispatchSemaphore(value: 0)
        let port = running.port
        let size = bytes.count
        Thread.detachNewThread {
            (result.status, result.output) = pythonTLS("""
                import hashlib
                tls = connect()
                tls.sendall(b'GET /big.bin HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n')
                time.sleep(1)
                head = b''
                while b'\\r\\n\\r\\n' not in head:
                    head += tls.recv(65536)
                body = head[head.index(b'\\r\\n\\r\\n') + 4:]
                digest = hashlib.sha256(body)
                count = len(body)
                while count < \(size):
                    chunk = tls.recv(1 << 20)
                    if not chunk: break
                    digest.update(chunk)
                    count += len(chunk)
                print(count, digest.hexdigest())
                """, port: port)
            done.signal()
        }
        var largest = 0
        while done.wait(timeout: .now() + .milliseconds(5)) == .timedOut {
            largest = max(largest, running.queuedOutputBytes())
        }
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output == "\(bytes.count) \(digest)\n")
        let limit = running.server.configuration.outputHighWaterMark + (4 << 20)
        #expect(largest > 0 && largest <= limit, "largest queue \(largest) bytes")
    }

    @Test func aResetMidResponseLeavesTheServerServing() throws {
        let scratch = ScratchDirectory()
        scratch.write(Array("big.bin".utf8), [UInt8](repeating: 7, count: 16 << 20))
        scratch.write("small.txt", "small\n")
        let running = try directoryServer(scratch)
        defer { running.stop() }
        let reset = pythonTLS("""
            import struct
            tls = connect()
            tls.sendall(b'GET /big.bin HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n')
            got = 0
            while got < 200000:
                got += len(tls.recv(65536))
            tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            tls.close()
            print('reset after', got >= 200000)
            """, port: running.port)
        #expect(reset.output == "reset after True\n", "\(reset.output)")
        #expect(eventually { running.server.connectionCount == 0 })
        #expect(curlHTTPS(["https://localhost:\(running.port)/small.txt"]).output == "small\n")
    }

    @Test func rangesOfAFileAreServedOverTLS() throws {
        let scratch = ScratchDirectory()
        scratch.write("digits.txt", "0123456789")
        let running = try directoryServer(scratch)
        defer { running.stop() }
        let result = curlHTTPS(["-r", "2-5", "-w", " %{http_code}", "https://localhost:\(running.port)/digits.txt"])
        #expect(result.output == "2345 206")
    }

    @Test func shutdownClosesHandshakesInProgress() throws {
        let running = try httpsServer()
        let client = try running.client()
        try client.send(halfAClientHello)
        #expect(eventually { running.server.connectionCount == 1 })
        running.stop()  // returns at once: a handshake has no response to wait for
        #expect(client.isClosedByServer())
    }
}

@Suite("HTTPS: certificates, keys and passwords")
struct TLSConfigurationTests {
    private func serverError(_ configuration: TLSConfiguration) -> TLSError? {
        do {
            let server = try HTTPServer(("127.0.0.1", 0), HelloHandler.self, tls: configuration)
            server.serverClose()
            return nil
        } catch let error as TLSError {
            return error
        } catch {
            Issue.record("not a TLSError: \(error)")
            return nil
        }
    }

    @Test func eachUnusableFileIsATypedErrorThatNamesIt() {
        let files = TLSFiles.shared
        #expect(serverError(TLSConfiguration(certificateChain: files.directory + "/missing.pem"))
                == .unreadableFile(path: files.directory + "/missing.pem", reason: "No such file or directory"))
        #expect(serverError(TLSConfiguration(certificateChain: files.directory))
                == .unreadableFile(path: files.directory, reason: "not a regular file"))
        if case .invalidCertificate(let path, _)? = serverError(TLSConfiguration(certificateChain: files.notACertificate)) {
            #expect(path == files.notACertificate)
        } else {
            Issue.record("a file with no certificate was accepted")
        }
        #expect(serverError(TLSConfiguration(certificateChain: files.certificate))
                == .invalidPrivateKey(path: files.certificate, reason: "no private key in the file"))
        #expect(serverError(TLSConfiguration(certificateChain: files.certificate, privateKey: files.otherKey))
                == .keyMismatch(certificate: files.certificate, key: files.otherKey))
        #expect(serverError(TLSConfiguration(certificateChain: files.certificate, privateKey: files.encryptedKey))
                == .passwordRequired(path: files.encryptedKey))
        #expect(serverError(TLSConfiguration(certificateChain: files.certificate, privateKey: files.encryptedKey,
                                             password: "wrong"))
                == .wrongPassword(path: files.encryptedKey))
        #expect(serverError(TLSConfiguration(certificateChain: files.certificate, privateKey: files.key,
                                             alpnProtocols: [""]))
                == .invalidALPNProtocol(""))
        #expect(TLSError.wrongPassword(path: "k.pem").description
                == "the password does not decrypt the private key in 'k.pem'")
    }

    @Test func anEncryptedKeyWithItsPasswordServes() throws {
        let files = TLSFiles.shared
        let running = RunningServer(server: try HTTPSServer(("127.0.0.1", 0), HelloHandler.self,
                                                            certfile: files.certificate, keyfile: files.encryptedKey,
                                                            password: files.password))
        defer { running.stop() }
        #expect(curlHTTPS(["https://localhost:\(running.port)/"]).output == "Hello, World!")
    }

    @Test func aCertificateFileThatHoldsTheKeyTooServes() throws {
        let running = RunningServer(server: try HTTPSServer(("127.0.0.1", 0), HelloHandler.self,
                                                            certfile: TLSFiles.shared.combined))
        defer { running.stop() }
        #expect(curlHTTPS(["https://localhost:\(running.port)/"]).output == "Hello, World!")
    }
}
