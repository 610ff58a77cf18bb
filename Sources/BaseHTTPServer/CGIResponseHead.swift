/// The header block a CGI script writes before its body (RFC 3875 §6), read as Go's
/// `net/http/cgi` reads it: fields up to a blank line, `Status:` for the status, `Location:`
/// for a redirect, and no `Content-Type` (without a status or a location) an error.
struct CGIResponseHead: Equatable {
    /// What the server does with the response.
    enum Disposition: Equatable {
        /// Send `status` with the fields and the body that follows.
        case respond(status: Int, reason: String?)
        /// `Location` is a local path: serve that path as a `GET` instead (RFC 3875 §6.2.2).
        case internalRedirect(path: String)
    }

    /// The fields to send, in order, without `Status` (and without `Location` for an
    /// internal redirect).
    var fields: [(name: String, value: String)]
    var disposition: Disposition
    /// The body length the script declared, if any.
    var contentLength: Int?

    static func == (a: CGIResponseHead, b: CGIResponseHead) -> Bool {
        a.disposition == b.disposition && a.contentLength == b.contentLength
            && a.fields.elementsEqual(b.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    /// Why a header block is refused (the server answers 500 and logs this).
    enum Failure: Error, Equatable, CustomStringConvertible {
        case tooLong(limit: Int)
        case malformedLine(String)
        case badStatus(String)
        case missingContentType
        case badContentLength(String)

        var description: String {
            switch self {
            case .tooLong(let limit): "its header block is longer than \(limit) bytes"
            case .malformedLine(let line): "malformed header line \(line.debugDescription)"
            case .badStatus(let value): "malformed Status \(value.debugDescription)"
            case .missingContentType: "no Content-Type (nor Status, nor Location) in its header block"
            case .badContentLength(let value): "malformed Content-Length \(value.debugDescription)"
            }
        }
    }

    /// Where the header block in `bytes` ends: the offset of the body's first byte, or nil
    /// when the blank line has not come yet. Lines end with LF or CRLF.
    static func end(in bytes: [UInt8]) -> Int? {
        var lineStart = 0
        while let newline = bytes[lineStart...].firstIndex(of: 10) {
            let length = newline - lineStart
            if length == 0 || (length == 1 && bytes[lineStart] == 13) { return newline + 1 }
            lineStart = newline + 1
        }
        return nil
    }

    /// Parses the header block `bytes` (its blank line included or not).
    init(parsing bytes: ArraySlice<UInt8>) throws(Failure) {
        var fields: [(name: String, value: String)] = []
        var status: (code: Int, reason: String?)?
        var location: String?
        var hasContentType = false
        var contentLength: Int?
        for rawLine in bytes.split(separator: 10, omittingEmptySubsequences: false) {
            var line = rawLine
            if line.last == 13 { line = line.dropLast() }
            if line.isEmpty { continue }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                  line[..<colon].allSatisfy(isTokenByte),
                  !line.contains(0), !line.contains(13)
            else { throw .malformedLine(String(decoding: line, as: UTF8.self)) }
            let name = String(decoding: line[..<colon], as: UTF8.self)
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingSpaces
            switch name.lowercased() {
            case "status":
                let parts = value.split(separator: " ", maxSplits: 1)
                guard let first = parts.first, first.count == 3, let code = Int(first), (100...999).contains(code)
                else { throw .badStatus(value) }
                status = (code, parts.count > 1 ? String(parts[1]) : nil)
            case "location":
                location = value
                fields.append((name, value))
            case "content-type":
                hasContentType = true
                fields.append((name, value))
            case "content-length":
                guard let length = Int(value), length >= 0, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 })
                else { throw .badContentLength(value) }
                contentLength = length
                fields.append((name, value))
            default:
                fields.append((name, value))
            }
        }
        self.contentLength = contentLength
        if let location, location.hasPrefix("/"), !location.hasPrefix("//"), status == nil {
            self.fields = fields.filter { $0.name.lowercased() != "location" }
            disposition = .internalRedirect(path: location)
            return
        }
        self.fields = fields
        if let status {
            disposition = .respond(status: status.code, reason: status.reason)
        } else if location != nil {
            disposition = .respond(status: 302, reason: nil)
        } else if hasContentType {
            disposition = .respond(status: 200, reason: nil)
        } else {
            throw .missingContentType
        }
    }
}

private func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
         UInt8(ascii: "A")...UInt8(ascii: "Z"):
        true
    default:
        "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
}

extension String {
    /// Without the spaces and tabs around it.
    fileprivate var trimmingSpaces: String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isBlank($0) }),
              let last = lastIndex(where: { !isBlank($0) }) else { return "" }
        return String(self[first...last])
    }
}
