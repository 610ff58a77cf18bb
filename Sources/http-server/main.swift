// http-server: serves a directory over HTTP, like `python3 -m http.server`, on one libuv loop.
import BaseHTTPServer
import UVLoop
import Glibc

/// Stops `server` at SIGINT or SIGTERM, in two steps, and the process then exits 0, as
/// Python's does. The first signal prints Python's `Keyboard interrupt received, exiting.`
/// and shuts the server down: it stops accepting, idle connections close at once (an idle
/// server is done), and responses in flight get up to `shutdownGracePeriod` to finish, which
/// the server says when there are any. A second signal of either kind cuts those off. The
/// signals arrive as loop events (libuv's signal watcher), so all this runs on the loop
/// thread like any handler code.
func stopOnSignals(_ server: HTTPServer) {
    // A parent may hand the signals down blocked (a blocked mask survives exec).
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGINT)
    sigaddset(&signals, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &signals, nil)
    var stopping = false
    for number in [SIGINT, SIGTERM] {
        do {
            _ = try SignalWatcher(loop: server.loop, signal: number) { received in
                guard !stopping else {
                    server.closeAllConnections()  // serveForever() returns once they have closed
                    return
                }
                stopping = true
                let name = received == SIGINT ? "Keyboard interrupt" : "SIGTERM"
                writeAll(to: STDOUT_FILENO, "\n\(name) received, exiting.\n")
                server.shutdown()
                announceWait(server)
            }
        } catch {
            writeAll(to: STDERR_FILENO, "http-server: cannot watch signal \(number): \(error)\n")
            exit(1)
        }
    }
}

/// Says how many responses a shutdown waits for, if any, once the idle connections have gone:
/// `shutdown()` closes them at once, and their close callbacks run at the end of this loop
/// turn, so a timer due now fires after them. (When nothing is left the serve ends in that
/// turn, and the timer finds no connection.)
private func announceWait(_ server: HTTPServer) {
    let check = LoopTimer(loop: server.loop)
    check.start(after: 0) {
        check.close()
        let count = server.connectionCount
        guard count > 0 else { return }
        let grace = server.configuration.shutdownGracePeriod
        let seconds = grace == grace.rounded(.down) && grace < 1e9 ? String(Int(grace)) : String(grace)
        let responses = count == 1 ? "1 response" : "\(count) responses"
        writeAll(to: STDOUT_FILENO, "Waiting up to \(seconds) s for \(responses) in flight; Ctrl-C again to stop now.\n")
    }
}

signal(SIGPIPE, SIG_IGN)
// Uploads pass through pieces of a few hundred KiB, each freed once on disk. By default glibc
// maps such blocks fresh or gives the heap's top back after a few of them, and every new
// page costs a fault: 70,000 faults and 1.0-1.1 s of CPU per GiB uploaded, against under 300
// and 0.6-0.7 s with the memory kept for the next piece (Scripts/bench U1, BENCHMARKS.md).
// The heap keeps up to 32 MiB it does not use, which a file server can spare.
// (`mallopt` is not in Swift's Glibc module: looked up by name, with <malloc.h>'s constants.)
if let symbol = dlsym(nil, "mallopt") {
    let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
    _ = mallopt(-3, 8 << 20)   // M_MMAP_THRESHOLD
    _ = mallopt(-1, 32 << 20)  // M_TRIM_THRESHOLD
}
guard options.protocolVersion == "HTTP/1.1" || options.protocolVersion == "HTTP/1.0" else {
    fail("argument -p/--protocol: expected HTTP/1.0 or HTTP/1.1, not '\(options.protocolVersion)'")
}
guard let directoryPointer = realpath(options.directory, nil) else {
    fail("argument -d/--directory: cannot open '\(options.directory)': \(String(cString: strerror(errno)))")
}
let directory = String(cString: directoryPointer)
free(directoryPointer)
var info = stat()
guard fstatat(AT_FDCWD, directory, &info, 0) == 0, info.st_mode & S_IFMT == S_IFDIR else {
    fail("argument -d/--directory: '\(options.directory)' is not a directory")
}

let tls = options.tlsCertificate.map {
    TLSConfiguration(certificateChain: $0, privateKey: options.tlsKey, password: options.tlsPassword)
}
let server: DirectoryHTTPServer
do {
    let handler: SimpleHTTPRequestHandler.Type = options.cgi ? CGIFileHandler.self : FileHandler.self
    server = try DirectoryHTTPServer((options.bind, options.port), handler, directory: directory, tls: tls)
} catch let error as TLSError {
    writeAll(to: STDERR_FILENO, "http-server: \(error)\n")
    exit(1)
} catch {
    writeAll(to: STDERR_FILENO, "http-server: cannot listen on \(options.bind) port \(options.port): \(error)\n")
    exit(1)
}

// Serving files is this process's whole work: poll briefly between close requests rather
// than sleep (the library's default is off; see `Configuration.busyPollLimit`).
server.configuration.busyPollLimit = 0.0001
stopOnSignals(server)
let host = server.serverAddress.host
let urlHost = host.contains(":") ? "[\(host)]" : host
let scheme = tls == nil ? "http" : "https"
let url = "\(scheme)://\(urlHost):\(server.serverPort)/"
let banner = "Serving \(scheme.uppercased()) on \(host) port \(server.serverPort)"
if canColorize(STDOUT_FILENO) {
    let (green, cyan, reset) = (LogColor.green, LogColor.cyan, LogColor.reset)
    writeAll(to: STDOUT_FILENO, "\(green)\(banner) (\(cyan)\(url)\(green)) ...\(reset)\n")
} else {
    writeAll(to: STDOUT_FILENO, "\(banner) (\(url)) ...\n")
}
do {
    try server.serveForever()
} catch {
    writeAll(to: STDERR_FILENO, "http-server: \(error)\n")
    exit(1)
}
exit(0)
