import HTTPParser

/// The message Python's `send_error` gives a request the parser refused (the status line's
/// phrase, the error page's message and the log line), with Python's detail quoted as its
/// `%r` does: `Bad request version ('FUBAR')`. nil where Python sends the status's standard
/// phrase (414, 413, and the header-section limits it lacks); our own wording where Python has
/// no such error.
func pythonErrorMessage(_ error: ParseError, requestLine: [UInt8]) -> String? {
    let line = latin1String(requestLine)
    let words = line.split { $0 == " " || $0 == "\t" || $0 == "\u{0B}" || $0 == "\u{0C}" }
    switch error.kind {
    case .badRequestLine, .badVersion:
        // Python takes the version from the last of three or more words, then counts them.
        guard let last = words.last, words.count >= 3 else {
            return "Bad request syntax (\(pythonRepr(line)))"
        }
        if words.count > 3 && isPythonVersion(last) {
            return "Bad request syntax (\(pythonRepr(line)))"
        }
        // (Also a version Python takes and RFC 9112 does not, such as HTTP/1.10.)
        return "Bad request version (\(pythonRepr(String(last))))"
    case .versionNotSupported:
        let version = words.last ?? ""
        return "Invalid HTTP version (\(version.hasPrefix("HTTP/") ? version.dropFirst(5) : version))"
    case .badHTTP09Method:
        return "Bad HTTP/0.9 request type (\(pythonRepr(String(words.first ?? ""))))"
    case .requestLineTooLong, .bodyTooLarge, .headerSectionTooLarge, .trailerSectionTooLarge:
        return nil
    default:
        return String(describing: error.reason)
    }
}

/// Whether Python's `parse_request` takes `word` for a version: `HTTP/`, then two runs of
/// digits (at most 10 each) around one dot.
private func isPythonVersion(_ word: Substring) -> Bool {
    guard word.hasPrefix("HTTP/") else { return false }
    let parts = word.dropFirst(5).split(separator: ".", omittingEmptySubsequences: false)
    return parts.count == 2 && parts.allSatisfy { part in
        !part.isEmpty && part.count <= 10 && part.allSatisfy { $0.isASCII && $0.isNumber }
    }
}
