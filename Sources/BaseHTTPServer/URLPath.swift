/// Decodes `%XX` escapes in `bytes`, keeping any `%` that does not start a valid escape, as Python's `unquote`.
///
/// `+` is left alone (this is path decoding, not form decoding).
func percentDecode(_ bytes: some Collection<UInt8>) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var index = bytes.startIndex
    while index != bytes.endIndex {
        let byte = bytes[index]
        bytes.formIndex(after: &index)
        guard byte == UInt8(ascii: "%"), index != bytes.endIndex else {
            out.append(byte)
            continue
        }
        let highIndex = index
        let lowIndex = bytes.index(after: highIndex)
        guard lowIndex != bytes.endIndex,
              let high = hexValue(bytes[highIndex]), let low = hexValue(bytes[lowIndex])
        else {
            out.append(byte)
            continue
        }
        out.append(high << 4 | low)
        index = bytes.index(after: lowIndex)
    }
    return out
}

/// Percent-decodes `s` and reads the result as UTF-8, replacing invalid sequences with U+FFFD.
///
/// The equivalent of Python's `urllib.parse.unquote(s)` with its default `errors='replace'`.
func urlUnquote(_ s: String) -> String {
    guard s.utf8.contains(UInt8(ascii: "%")) else { return s }
    return String(decoding: percentDecode(s.utf8), as: UTF8.self)
}

/// Percent-encodes `s` for a URL path, as Python's `urllib.parse.quote(s, safe=safe)`.
///
/// The UTF-8 bytes of `s` are kept when they are ASCII letters, digits, `_.-~` or one of the
/// ASCII characters in `safe`; every other byte becomes `%XX` with uppercase hex digits.
func urlQuote(_ s: String, safe: String = "/") -> String {
    let safeBytes = Array(safe.utf8.filter { $0 < 0x80 })
    let isKept: (UInt8) -> Bool = { isUnreserved($0) || safeBytes.contains($0) }
    guard !s.utf8.allSatisfy(isKept) else { return s }
    var out: [UInt8] = []
    out.reserveCapacity(s.utf8.count * 3)
    for byte in s.utf8 {
        if isKept(byte) {
            out.append(byte)
        } else {
            out.append(UInt8(ascii: "%"))
            out.append(uppercaseHexDigit(byte >> 4))
            out.append(uppercaseHexDigit(byte & 0xF))
        }
    }
    return String(decoding: out, as: UTF8.self)
}

/// Maps a request path onto a file-system path under `root`, as `SimpleHTTPRequestHandler.translate_path` does, but refusing what Python silently rewrites.
///
/// The query (`?…`) and fragment (`#…`) are dropped, each `/`-separated segment is
/// percent-decoded as UTF-8, empty and `.` segments are skipped, and `..` removes the segment
/// before it. A trailing `/` in the request is kept (`/dir/` → `root/dir/`), because the
/// directory redirect depends on it.
///
/// The result never names a path outside `root`: the function returns `nil` (answer 404) when a
/// `..` would climb above `root`, when a segment contains an encoded slash (`%2F`), a backslash
/// or a NUL (raw or encoded), or when a segment does not decode to valid UTF-8. Python instead
/// drops such `..` segments and serves whatever remains. Symbolic links are not looked at here:
/// a link inside `root` may still point outside it, which the caller must check on the real path.
/// - Parameters:
///   - requestPath: The request target as received, for example `/docs/a%20b.txt?x=1`.
///   - root: The directory being served, without or with a trailing `/`.
/// - Returns: `root` joined with the cleaned segments, or `nil` if the path must be refused.
func translatePath(_ requestPath: String, root: String) -> String? {
    translatePath(requestPath, rootPrefix: String(Substring(rootDirectoryPrefix(root))))
}

/// `translatePath(_:root:)` for a root already made into its `rootDirectoryPrefix` (a handler
/// makes it once). A plain path (see `plainPath`), the usual one, is read from its bytes and
/// joined to the prefix in one allocation: 1,500 instructions a request fewer than with
/// Substrings (Scripts/callgrind --f1).
func translatePath(_ requestPath: String, rootPrefix: String) -> String? {
    let joined = withUTF8(of: requestPath) { path -> String? in
        guard let plain = plainPath(pathPart(of: path)) else { return nil }
        return withUTF8(of: rootPrefix) { prefix in
            String(unsafeUninitializedCapacity: prefix.count + plain.count) { buffer in
                _ = buffer.initialize(fromContentsOf: prefix)
                _ = UnsafeMutableBufferPointer(rebasing: buffer[prefix.count...]).initialize(fromContentsOf: plain)
                return prefix.count + plain.count
            }
        }
    }
    if let joined { return joined }
    guard let bytes = translatePathBytes(requestPath, rootPrefix: rootPrefix.utf8) else { return nil }
    return String(validating: bytes, as: UTF8.self)
}

/// The request target's bytes without its `?query` and `#fragment`.
private func pathPart(of requestPath: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
    let end = requestPath.firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? requestPath.count
    return UnsafeBufferPointer(rebasing: requestPath[..<end])
}

/// `translatePath(_:root:)` byte for byte: the same mapping and refusals, except that the
/// segments need not decode to UTF-8 (a name from an old archive, `caf%E9.txt`). The file
/// system takes any bytes but `/` and NUL, and so does this.
func translatePathBytes(_ requestPath: String, root: String) -> [UInt8]? {
    translatePathBytes(requestPath, rootPrefix: rootDirectoryPrefix(root))
}

private func translatePathBytes(_ requestPath: String, rootPrefix: some Collection<UInt8>) -> [UInt8]? {
    withUTF8(of: requestPath) { requestPath in
        let raw = pathPart(of: requestPath)
        if let plain = plainPath(raw) {
            // Nothing to decode, drop or refuse: the root and the path as they are.
            var path: [UInt8] = []
            path.reserveCapacity(rootPrefix.count + plain.count)
            path.append(contentsOf: rootPrefix)
            path.append(contentsOf: plain)
            return path
        }
        let hasTrailingSlash = raw.last == UInt8(ascii: "/")

        var segments: [[UInt8]] = []
        for rawSegment in raw.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            let segment = percentDecode(rawSegment)
            if segment.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") || $0 == 0 }) {
                return nil
            }
            if segment.count == 1 && segment[0] == UInt8(ascii: ".") { continue }
            if segment.count == 2 && segment[0] == UInt8(ascii: ".") && segment[1] == UInt8(ascii: ".") {
                guard segments.popLast() != nil else { return nil }
                continue
            }
            segments.append(segment)
        }

        var path = Array(rootPrefix)
        for segment in segments {
            path.append(UInt8(ascii: "/"))
            path += segment
        }
        if hasTrailingSlash || path.isEmpty {
            path.append(UInt8(ascii: "/"))
        }
        return path
    }
}

/// `path` itself when translating it changes nothing: it starts with `/`, and has no `%`,
/// backslash, NUL, empty segment (`//`), `.` or `..` segment. The usual request path, mapped
/// with one scan instead of a split and a decoding per segment.
private func plainPath(_ path: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
    guard path.first == UInt8(ascii: "/") else { return nil }
    var dots = 0  // dots since the last slash, -1 once the segment has another byte
    var previous = UInt8(ascii: "/")
    for byte in path.dropFirst() {
        switch byte {
        case UInt8(ascii: "%"), UInt8(ascii: "\\"), 0:
            return nil
        case UInt8(ascii: "/"):
            if previous == UInt8(ascii: "/") || dots == 1 || dots == 2 { return nil }
            dots = 0
        case UInt8(ascii: "."):
            if dots >= 0 { dots += 1 }
        default:
            dots = -1
        }
        previous = byte
    }
    return dots == 1 || dots == 2 ? nil : path
}

/// Whether `path` starts with `count` slashes, as `path.hasPrefix` with that many answers,
/// which compares characters: read from the first bytes where they settle it (no byte, or an
/// ASCII one, after the slashes: each slash is a character of its own), else by `hasPrefix`
/// (a combining mark after a slash makes one character of the two). 90 instructions fewer
/// per check (Scripts/callgrind --f1).
func hasSlashPrefix(_ path: String, count: Int) -> Bool {
    let settled = withUTF8(of: path) { bytes -> Bool? in
        guard bytes.count >= count, bytes.prefix(count).allSatisfy({ $0 == UInt8(ascii: "/") }) else { return false }
        return bytes.count == count || bytes[count] < 0x80 ? true : nil
    }
    return settled ?? path.hasPrefix(String(repeating: "/", count: count))
}

/// `root` as `translatePath` joins segments to it: without trailing slashes, `""` for `/`,
/// `"."` for an empty root.
func rootDirectoryPrefix(_ root: String) -> Substring.UTF8View {
    var path = Substring(root.isEmpty ? "." : root)
    while path.utf8.count > 1, path.utf8.last == UInt8(ascii: "/") { path.removeLast() }
    return (path == "/" ? "" : path).utf8
}

/// Whether `byte` is one of the characters `quote` never escapes: ASCII letters, digits and `_.-~`.
private func isUnreserved(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
         UInt8(ascii: "0")...UInt8(ascii: "9"),
         UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "~"):
        true
    default:
        false
    }
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

private func uppercaseHexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "A") + nibble - 10
}
