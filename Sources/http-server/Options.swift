// The command line of http-server: its usage text, its options and their parser.
import BaseHTTPServer
import Glibc

let usage = """
    usage: http-server [-h] [-b ADDRESS] [-d DIRECTORY] [-p VERSION] [-H NAME VALUE]
                       [--content-type TYPE] [--upload] [--max-upload-size BYTES] [--cgi]
                       [--tls-cert PATH] [--tls-key PATH] [--tls-password-file PATH] [port]

    Serves the files of a directory over HTTP (GET and HEAD), with directory listings; over
    HTTPS with --tls-cert.

    positional arguments:
      port                  the port to listen on (default: 8000; 0 picks a free one)

    options:
      -h, --help            print this help and exit
      -b ADDRESS, --bind ADDRESS
                            the address to listen on (default: 127.0.0.1, this machine
                            only; use 0.0.0.0 or :: to serve every interface)
      -d DIRECTORY, --directory DIRECTORY
                            the directory to serve (default: the current directory)
      -p VERSION, --protocol VERSION
                            the HTTP version of responses: HTTP/1.1 (default, keep-alive)
                            or HTTP/1.0
      -H NAME VALUE, --header NAME VALUE
                            add this header to every response (files, listings,
                            redirects, errors); repeat it for more headers
      --content-type TYPE   the Content-Type of files whose extension is unknown
                            (default: application/octet-stream)
      --upload              also receive files: PUT /dir/name stores a file (201, or 204
                            when it replaced one); a multipart/form-data POST to a
                            directory saves each file part without replacing any (the
                            listing shows a form). Off by default: PUT and POST get 501
      --max-upload-size BYTES
                            refuse uploads larger than this with 413 (default: no limit)
      --cgi                 run the executable files under /cgi-bin and /htbin as CGI
                            scripts (RFC 3875; GET, HEAD and POST), directly, never through
                            a shell; serve the rest of the directory as usual
      --tls-cert PATH       serve HTTPS (TLS 1.2 and 1.3) with the PEM certificate chain in
                            PATH; the file may hold the private key too
      --tls-key PATH        the PEM private key, when it is not in the --tls-cert file
      --tls-password-file PATH
                            the password of an encrypted private key: the file's first
                            line (surrounding white space removed)

    Ctrl-C or SIGTERM stops the server: it stops accepting, and responses in flight get up
    to 5 s to finish; a second Ctrl-C (or SIGTERM) stops it at once. It exits 0 either way.
    Log lines are coloured when standard error is a terminal, as Python 3.15's are:
    NO_COLOR=1 turns colour off, FORCE_COLOR=1 on (NO_COLOR wins).

    """

/// The command line, parsed once, on first use (a global `let`: initialized lazily and
/// thread-safely, never changed). The handler classes read their settings here: a class
/// property cannot reach the server or any other instance.
let options = parse(Array(CommandLine.arguments.dropFirst()))

/// The command line, parsed.
struct Options: Sendable {
    var port = 8000
    var bind = "127.0.0.1"
    var directory = "."
    var protocolVersion = "HTTP/1.1"
    /// `-H NAME VALUE`, in the order given.
    var responseHeaders: [(String, String)] = []
    /// `--content-type`.
    var defaultContentType = "application/octet-stream"
    var upload = false
    var maxUploadSize: Int?
    var cgi = false
    /// `--tls-cert`, `--tls-key`, and the password read from `--tls-password-file`.
    var tlsCertificate: String?
    var tlsKey: String?
    var tlsPassword: String?
}

/// Prints `message` and the usage line to standard error and exits with status 2.
func fail(_ message: String) -> Never {
    writeAll(to: STDERR_FILENO, "usage: http-server [-h] [-b ADDRESS] [-d DIRECTORY] [-p VERSION] [-H NAME VALUE] [--content-type TYPE] [--upload] [--max-upload-size BYTES] [--cgi] [--tls-cert PATH] [--tls-key PATH] [--tls-password-file PATH] [port]\n")
    writeAll(to: STDERR_FILENO, "http-server: error: \(message)\n")
    exit(2)
}

func parse(_ arguments: [String]) -> Options {
    var options = Options()
    var sawPort = false
    var passwordFile: String?
    var index = 0
    func value(for flag: String) -> String {
        index += 1
        guard index < arguments.count else { fail("argument \(flag): expected one argument") }
        return arguments[index]
    }
    while index < arguments.count {
        let argument = arguments[index]
        var flag = argument
        var inline: String?
        if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
            flag = String(argument[..<equals])
            inline = String(argument[argument.index(after: equals)...])
        }
        switch flag {
        case "-h", "--help":
            writeAll(to: STDOUT_FILENO, usage)
            exit(0)
        case "-b", "--bind":
            options.bind = inline ?? value(for: flag)
        case "-d", "--directory":
            options.directory = inline ?? value(for: flag)
        case "-p", "--protocol":
            options.protocolVersion = inline ?? value(for: flag)
        case "-H", "--header":
            guard inline == nil, index + 2 < arguments.count else {
                fail("argument -H/--header: expected 2 arguments")
            }
            let name = arguments[index + 1]
            let text = arguments[index + 2]
            index += 2
            guard isToken(name) else { fail("argument -H/--header: invalid header name: '\(name)'") }
            guard isFieldValue(text) else {
                fail("argument -H/--header: invalid value for \(name): CR, LF or NUL")
            }
            options.responseHeaders.append((name, text))
        case "--content-type":
            let type = inline ?? value(for: flag)
            guard !type.isEmpty, isFieldValue(type) else {
                fail("argument --content-type: invalid type: '\(type)'")
            }
            options.defaultContentType = type
        case "--upload":
            options.upload = true
        case "--max-upload-size":
            let text = inline ?? value(for: flag)
            guard let bytes = Int(text), bytes >= 0 else {
                fail("argument --max-upload-size: invalid size: '\(text)' (a number of bytes)")
            }
            options.maxUploadSize = bytes
        case "--cgi":
            options.cgi = true
        case "--tls-cert":
            options.tlsCertificate = inline ?? value(for: flag)
        case "--tls-key":
            options.tlsKey = inline ?? value(for: flag)
        case "--tls-password-file":
            passwordFile = inline ?? value(for: flag)
        default:
            guard !argument.hasPrefix("-") || argument == "-" else {
                fail("unrecognized argument: \(argument)")
            }
            guard !sawPort else { fail("unrecognized argument: \(argument)") }
            guard let port = Int(argument), (0...65535).contains(port) else {
                fail("argument port: invalid port: '\(argument)'")
            }
            options.port = port
            sawPort = true
        }
        index += 1
    }
    if options.cgi && options.upload {
        fail("argument --cgi: not allowed with argument --upload")
    }
    if options.tlsKey != nil && options.tlsCertificate == nil {
        fail("--tls-key requires --tls-cert to be set")
    }
    if let passwordFile {
        guard options.tlsCertificate != nil else { fail("--tls-password-file requires --tls-cert to be set") }
        options.tlsPassword = readPassword(passwordFile)
    }
    return options
}

/// The password in `path`: the file's text without the white space around it, as Python's
/// `f.read().strip()`.
private func readPassword(_ path: String) -> String {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
        fail("Failed to read TLS password file: \(String(cString: strerror(errno))): '\(path)'")
    }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(descriptor, &chunk, chunk.count)
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else {
            fail("Failed to read TLS password file: \(String(cString: strerror(errno))): '\(path)'")
        }
        if count == 0 { break }
        bytes += chunk[..<count]
        guard bytes.count <= 1 << 16 else { fail("Failed to read TLS password file: larger than 64 KiB: '\(path)'") }
    }
    let isSpace: (UInt8) -> Bool = { $0 == 0x20 || (0x09...0x0D).contains($0) }
    let trimmed = bytes.drop(while: isSpace).reversed().drop(while: isSpace).reversed()
    return String(decoding: trimmed, as: UTF8.self)
}

/// Whether `name` can be a header field's name: a token (RFC 9110 §5.1), so that `-H` cannot
/// make a malformed head.
private func isToken(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "A")...UInt8(ascii: "Z"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

/// Whether `value` can be a header field's value as `sendHeader` sends one: no CR, LF or NUL.
private func isFieldValue(_ value: String) -> Bool {
    !value.utf8.contains { $0 == 13 || $0 == 10 || $0 == 0 }
}
