/// What a `Range` request header asks of a file of known size (RFC 9110 §14).
///
/// Python 3.12's `SimpleHTTPRequestHandler` ignores `Range`; we serve single byte ranges and
/// answer everything we do not support by sending the whole file, which RFC 9110 allows.
enum ByteRangeRequest: Equatable, Sendable {
    /// No usable range: the header is absent, malformed, uses another unit, or asks for several
    /// ranges. Serve the whole file with 200.
    case none
    /// One satisfiable range of byte offsets, already clipped to the file. Serve it with 206.
    case satisfiable(Range<Int>)
    /// A well-formed byte range that selects nothing in this file. Answer 416.
    case unsatisfiable

    /// Interprets the value of a `Range` header for a file of `fileSize` bytes.
    ///
    /// Accepts `bytes=a-b`, `bytes=a-` and the suffix form `bytes=-n`, with optional whitespace
    /// around the value, the `=`, the `,` list separators and inside the range, and the unit in
    /// any case. Empty list elements are skipped (`bytes=0-9,` is one range).
    /// - A range whose first position is beyond its last (`5-3`) makes the header invalid: `.none`.
    /// - A first position at or past the end of the file, a suffix of length 0, or any range of
    ///   an empty file: `.unsatisfiable`.
    /// - A last position past the end is clipped to the last byte; a suffix longer than the file
    ///   selects the whole file.
    /// - Parameters:
    ///   - value: The header value, or `nil` when the request has no `Range` header.
    ///   - fileSize: The size of the selected representation in bytes.
    static func parse(_ value: String?, fileSize: Int) -> ByteRangeRequest {
        guard let value, fileSize >= 0 else { return .none }
        let bytes = Array(value.utf8)[...]
        guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { return .none }
        let unit = trimmingWhitespace(bytes[..<equals])
        guard unit.count == 5, zip(unit, "bytes".utf8).allSatisfy({ $0 | 0x20 == $1 }) else { return .none }

        let specs = bytes[(equals + 1)...]
            .split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            .map(trimmingWhitespace)
            .filter { !$0.isEmpty }
        guard specs.count == 1, let spec = specs.first,
              let dash = spec.firstIndex(of: UInt8(ascii: "-"))
        else { return .none }
        let firstText = trimmingWhitespace(spec[..<dash])
        let lastText = trimmingWhitespace(spec[(dash + 1)...])

        if firstText.isEmpty {
            guard let suffixLength = decimal(lastText) else { return .none }
            guard suffixLength > 0, fileSize > 0 else { return .unsatisfiable }
            return .satisfiable(Swift.max(0, fileSize - suffixLength)..<fileSize)
        }
        guard let first = decimal(firstText) else { return .none }
        var last = Int.max
        if !lastText.isEmpty {
            guard let value = decimal(lastText), value >= first else { return .none }
            last = value
        }
        guard first < fileSize else { return .unsatisfiable }
        return .satisfiable(first..<(Swift.min(last, fileSize - 1) + 1))
    }

    /// Reads a run of one or more ASCII digits, saturating at `Int.max`; `nil` for anything else.
    private static func decimal(_ digits: ArraySlice<UInt8>) -> Int? {
        guard !digits.isEmpty else { return nil }
        var value = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            value = overflow1 || overflow2 ? Int.max : sum
        }
        return value
    }

    private static func trimmingWhitespace(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        let isWhitespace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let start = bytes.firstIndex(where: { !isWhitespace($0) }),
              let end = bytes.lastIndex(where: { !isWhitespace($0) })
        else { return bytes[bytes.endIndex...] }
        return bytes[start...end]
    }
}

/// The `Content-Range` value of a 206 response: `"bytes 0-499/1234"`.
/// - Parameters:
///   - range: The non-empty range being sent, as `ByteRangeRequest.satisfiable` gave it.
///   - fileSize: The full size of the file.
func contentRangeValue(_ range: Range<Int>, fileSize: Int) -> String {
    "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(fileSize)"
}

/// The `Content-Range` value of a 416 response: `"bytes */1234"`.
func unsatisfiedContentRangeValue(fileSize: Int) -> String {
    "bytes */\(fileSize)"
}
