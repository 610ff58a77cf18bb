import Glibc

/// The strong entity tag of a file's current version (RFC 9110 section 8.8.3): its
/// modification time in nanoseconds and its size, in hexadecimal, as nginx makes them but
/// with the nanoseconds, so that two edits within a second that keep the size still differ.
func entityTag(_ info: stat) -> String {
    let nanoseconds = Int64(info.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(info.st_mtim.tv_nsec)
    return "\"" + String(UInt64(bitPattern: nanoseconds), radix: 16) + "-"
        + String(UInt64(max(info.st_size, 0)), radix: 16) + "\""
}

/// Whether the field value `list` (`If-Match`, `If-None-Match`: `*`, or entity tags
/// separated by commas) matches `tag`. The weak comparison ignores `W/` on either side;
/// the strong one never matches a weak tag (RFC 9110 section 8.8.3.2).
func entityTagListMatches(_ list: String, _ tag: String, weak: Bool) -> Bool {
    var rest = Substring(list)
    while true {
        rest = rest.drop { $0 == " " || $0 == "\t" || $0 == "," }
        if rest.isEmpty { return false }
        if rest.first == "*" { return true }
        var isWeak = false
        if rest.hasPrefix("W/") {
            isWeak = true
            rest = rest.dropFirst(2)
        }
        // An entity tag is a quoted string without escapes: up to the next quote.
        guard rest.first == "\"", let close = rest.dropFirst().firstIndex(of: "\"") else { return false }
        let candidate = rest[...close]
        if candidate == tag && (weak || !isWeak) { return true }
        rest = rest[rest.index(after: close)...]
    }
}
