// The command line of http-server: its usage text, its options and their parser.
import BaseHTTPServer
import Glibc

let usage = """
    usage: http-server [-h] [-b ADDRESS] [-d DIRECTORY] [-p VERSION] [--upload]
                       [--max-upload-size BYTES] [port]

    Serves the files of a directory over HTTP (GET and HEAD), with directory listings.

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
      --upload              also receive files: PUT /dir/name stores a file (201, or 204
                            when it replaced one); a multipart/form-data POST to a
                            directory saves each file part without replacing any (the
                            listing shows a form). Off by default: PUT and POST get 501
      --max-upload-size BYTES
                            refuse uploads larger than this with 413 (default: no limit)

    Ctrl-C or SIGTERM stops the server gracefully.

    """

/// The command line, parsed.
struct Options {
    var port = 8000
    var bind = "127.0.0.1"
    var directory = "."
    var protocolVersion = "HTTP/1.1"
    var upload = false
    var maxUploadSize: Int?
}

/// Prints `message` and the usage line to standard error and exits with status 2.
func fail(_ message: String) -> Never {
    writeAll(to: STDERR_FILENO, "usage: http-server [-h] [-b ADDRESS] [-d DIRECTORY] [-p VERSION] [--upload] [--max-upload-size BYTES] [port]\n")
    writeAll(to: STDERR_FILENO, "http-server: error: \(message)\n")
    exit(2)
}

func parse(_ arguments: [String]) -> Options {
    var options = Options()
    var sawPort = false
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
        case "--upload":
            options.upload = true
        case "--max-upload-size":
            let text = inline ?? value(for: flag)
            guard let bytes = Int(text), bytes >= 0 else {
                fail("argument --max-upload-size: invalid size: '\(text)' (a number of bytes)")
            }
            options.maxUploadSize = bytes
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
    return options
}
