import UVLoop

/// Reads the directory at `path` and builds its listing page: the part of `listDirectory` that
/// runs on the thread pool. Touches nothing of the loop.
/// - Parameters:
///   - displayPath: The request path percent-decoded, as bytes (not necessarily UTF-8).
///   - uploadForm: Whether the page carries the upload form.
/// - Returns: The page, or nil when the directory cannot be read.
func directoryListingPage(atPath path: [UInt8], displayPath: [UInt8], uploadForm: Bool) -> [UInt8]? {
    guard case .success(let entries) = readDirectory(atPath: path) else { return nil }
    return directoryListingHTML(displayPath: displayPath, entries: entries, uploadForm: uploadForm)
}

/// Builds the HTML page Python 3.14's `SimpleHTTPRequestHandler.list_directory` sends, as UTF-8 bytes.
///
/// Python 3.14 (gh-123430) added the `<style>` that declares `color-scheme: light dark`, so
/// browsers show the page in the reader's light or dark scheme; otherwise the page is 3.12's.
///
/// Entries are sorted as Python sorts them, by `name.lower()` (see `listingSortKey`), ties
/// broken by the name's bytes so the page does not depend on the order the file system
/// returned. A directory gets a trailing `/` in its link and its displayed name; a symbolic
/// link gets `@` on its displayed name instead, while a link to a directory still links with
/// `/`, exactly as Python does. Links are the name's bytes percent-encoded as Python's `quote`
/// encodes UTF-8 (`caf%C3%A9.txt`); a name that is not UTF-8 links with its own bytes
/// (`caf%E9.txt`), so the link names the file. Names and the title are shown as UTF-8, an
/// invalid sequence as U+FFFD, and HTML-escaped without quote escaping, as Python does, so
/// `<script>` in a file name is inert.
/// - Parameters:
///   - displayPath: The request path already percent-decoded by the caller (Python's
///     `unquote(self.path)`), as bytes; it is HTML-escaped here.
///   - entries: The directory's entries, in any order.
///   - uploadForm: Adds a form that uploads files to this directory (`multipart/form-data`
///     `POST` to the page's own URL), for `UploadHTTPRequestHandler`.
/// - Returns: The page; send it as `text/html; charset=utf-8` with its `Content-Length`.
func directoryListingHTML(displayPath: [UInt8], entries: [DirectoryEntry], uploadForm: Bool = false) -> [UInt8] {
    var page: [UInt8] = []
    page.reserveCapacity(512 + 2 * displayPath.count + entries.count * 40
                         + entries.reduce(0) { $0 + 2 * $1.name.count })
    func title() {
        page.append(contentsOf: "Directory listing for ".utf8)
        appendHTMLText(displayPath, to: &page)
    }
    page.append(contentsOf: """
        <!DOCTYPE HTML>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <style type="text/css">
        :root {
        color-scheme: light dark;
        }
        </style>
        <title>
        """.utf8)
    title()
    page.append(contentsOf: "</title>\n</head>\n<body>\n<h1>".utf8)
    title()
    page.append(contentsOf: "</h1>\n<hr>\n<ul>\n".utf8)
    for index in sortedForListing(entries) {
        let entry = entries[index]
        page.append(contentsOf: "<li><a href=\"".utf8)
        appendQuoted(entry.name, to: &page)
        if entry.isDirectory { page.append(UInt8(ascii: "/")) }
        page.append(contentsOf: "\">".utf8)
        appendHTMLText(entry.name, to: &page)
        if entry.isSymbolicLink {
            page.append(UInt8(ascii: "@"))
        } else if entry.isDirectory {
            page.append(UInt8(ascii: "/"))
        }
        page.append(contentsOf: "</a></li>\n".utf8)
    }
    page.append(contentsOf: "</ul>\n<hr>\n".utf8)
    if uploadForm {
        page.append(contentsOf: """
            <form method="post" enctype="multipart/form-data">
            <input type="file" name="file" multiple required>
            <input type="submit" value="Upload">
            </form>
            <hr>

            """.utf8)
    }
    page.append(contentsOf: "</body>\n</html>\n".utf8)
    return page
}

/// The indices of `entries` in listing order: by `listingSortKey`, then by the name's bytes.
private func sortedForListing(_ entries: [DirectoryEntry]) -> [Int] {
    let keys = entries.map { listingSortKey($0.name) }
    return entries.indices.sorted { a, b in
        let order = compareBytes(keys[a], keys[b])
        return order != 0 ? order < 0 : compareBytes(entries[a].name, entries[b].name) < 0
    }
}

/// Negative, zero or positive as `a` sorts before, with or after `b`, byte by byte.
private func compareBytes(_ a: [UInt8], _ b: [UInt8]) -> Int {
    for index in 0..<min(a.count, b.count) where a[index] != b[index] {
        return a[index] < b[index] ? -1 : 1
    }
    return a.count - b.count
}

// MARK: - Sorting as Python does

/// The bytes whose order is the order of Python's `name.lower()` for the name `bytes`.
///
/// Python reads a file name as UTF-8 with `surrogateescape` (each byte of an invalid sequence
/// becomes U+DC80–U+DCFF), lowercases it (full case mapping, Σ final as ς) and compares code
/// points. This returns that lowercased text in UTF-8, the escapes as the three bytes a
/// surrogate would take: byte order is then code point order, and a name that is all ASCII
/// without capitals is its own key (no copy).
func listingSortKey(_ bytes: [UInt8]) -> [UInt8] {
    guard bytes.contains(where: { $0 >= 0x80 || isASCIIUppercase($0) }) else { return bytes }
    guard bytes.contains(where: { $0 >= 0x80 }) else {
        return bytes.map { isASCIIUppercase($0) ? $0 | 0x20 : $0 }
    }
    let text = pythonFileNameCodePoints(bytes)
    var key: [UInt8] = []
    key.reserveCapacity(bytes.count + 8)
    for (position, codePoint) in text.enumerated() {
        if codePoint < 0x80 {
            key.append(isASCIIUppercase(UInt8(codePoint)) ? UInt8(codePoint) | 0x20 : UInt8(codePoint))
        } else if codePoint == 0x3A3 {  // Σ: ς at the end of a word, σ elsewhere
            appendUTF8(isFinalSigma(text, at: position) ? 0x3C2 : 0x3C3, to: &key)
        } else if let scalar = Unicode.Scalar(codePoint) {
            key.append(contentsOf: scalar.properties.lowercaseMapping.utf8)
        } else {
            appendUTF8(codePoint, to: &key)  // an escaped byte: a surrogate, unchanged
        }
    }
    return key
}

/// The code points Python's `os.fsdecode` makes of a name: UTF-8 with `surrogateescape`.
private func pythonFileNameCodePoints(_ bytes: [UInt8]) -> [UInt32] {
    var text: [UInt32] = []
    text.reserveCapacity(bytes.count)
    var index = 0
    while index < bytes.count {
        let lead = bytes[index]
        guard lead >= 0x80 else {
            text.append(UInt32(lead))
            index += 1
            continue
        }
        let (length, valid) = utf8Sequence(bytes, at: index)
        if valid {
            var value = UInt32(lead) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
            for byte in bytes[(index + 1)..<(index + length)] { value = value << 6 | UInt32(byte & 0x3F) }
            text.append(value)
        } else {
            for byte in bytes[index..<(index + length)] { text.append(0xDC00 | UInt32(byte)) }
        }
        index += length
    }
    return text
}

/// Whether the Σ at `position` is in Unicode's Final_Sigma context, as Python's `lower()`
/// decides it: a cased letter before it, and none after it (case-ignorable ones skipped).
private func isFinalSigma(_ text: [UInt32], at position: Int) -> Bool {
    func properties(_ codePoint: UInt32) -> Unicode.Scalar.Properties? {
        Unicode.Scalar(codePoint)?.properties
    }
    let before = text[..<position].last { properties($0)?.isCaseIgnorable != true }
    guard let before, properties(before)?.isCased == true else { return false }
    let after = text[(position + 1)...].first { properties($0)?.isCaseIgnorable != true }
    return after.map { properties($0)?.isCased != true } ?? true
}

private func isASCIIUppercase(_ byte: UInt8) -> Bool {
    byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")
}

/// Appends `codePoint` in UTF-8, surrogates included (encoded as any other 3-byte code point).
private func appendUTF8(_ codePoint: UInt32, to out: inout [UInt8]) {
    switch codePoint {
    case ..<0x80:
        out.append(UInt8(codePoint))
    case ..<0x800:
        out.append(UInt8(0xC0 | codePoint >> 6))
        out.append(UInt8(0x80 | codePoint & 0x3F))
    case ..<0x10000:
        out.append(UInt8(0xE0 | codePoint >> 12))
        out.append(UInt8(0x80 | codePoint >> 6 & 0x3F))
        out.append(UInt8(0x80 | codePoint & 0x3F))
    default:
        out.append(UInt8(0xF0 | codePoint >> 18))
        out.append(UInt8(0x80 | codePoint >> 12 & 0x3F))
        out.append(UInt8(0x80 | codePoint >> 6 & 0x3F))
        out.append(UInt8(0x80 | codePoint & 0x3F))
    }
}

// MARK: - Writing names

/// The UTF-8 sequence that starts at `bytes[start]` (a byte ≥ 0x80): its length and whether it
/// is one valid scalar. When it is not, the length is that of its maximal subpart (Unicode
/// §3.9, U+FFFD substitution of maximal subparts): the bytes one U+FFFD replaces, as in
/// `String(decoding:as:)` and Python's decoder.
private func utf8Sequence(_ bytes: [UInt8], at start: Int) -> (length: Int, valid: Bool) {
    let length: Int
    var low: UInt8 = 0x80
    var high: UInt8 = 0xBF
    switch bytes[start] {
    case 0xC2...0xDF: length = 2
    case 0xE0: length = 3; low = 0xA0
    case 0xE1...0xEC, 0xEE...0xEF: length = 3
    case 0xED: length = 3; high = 0x9F
    case 0xF0: length = 4; low = 0x90
    case 0xF1...0xF3: length = 4
    case 0xF4: length = 4; high = 0x8F
    default: return (1, false)
    }
    for offset in 1..<length {
        guard start + offset < bytes.count, low...high ~= bytes[start + offset] else { return (offset, false) }
        low = 0x80
        high = 0xBF
    }
    return (length, true)
}

/// Appends `bytes` as HTML text: read as UTF-8 (each invalid sequence shown as U+FFFD), with
/// `&`, `<` and `>` escaped (`html.escape(s, quote=False)`).
func appendHTMLText(_ bytes: [UInt8], to out: inout [UInt8]) {
    var index = 0
    while index < bytes.count {
        let byte = bytes[index]
        switch byte {
        case UInt8(ascii: "&"): out.append(contentsOf: "&amp;".utf8)
        case UInt8(ascii: "<"): out.append(contentsOf: "&lt;".utf8)
        case UInt8(ascii: ">"): out.append(contentsOf: "&gt;".utf8)
        case ..<0x80: out.append(byte)
        default:
            let (length, valid) = utf8Sequence(bytes, at: index)
            if valid {
                out.append(contentsOf: bytes[index..<(index + length)])
            } else {
                out.append(contentsOf: [0xEF, 0xBF, 0xBD])  // U+FFFD
            }
            index += length
            continue
        }
        index += 1
    }
}

/// Appends `bytes` percent-encoded as Python's `urllib.parse.quote` encodes a name's UTF-8:
/// ASCII letters, digits, `_.-~` and `/` kept, every other byte `%XX` (uppercase hex).
func appendQuoted(_ bytes: [UInt8], to out: inout [UInt8]) {
    for byte in bytes {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "~"), UInt8(ascii: "/"):
            out.append(byte)
        default:
            out.append(UInt8(ascii: "%"))
            out.append(hexDigit(byte >> 4))
            out.append(hexDigit(byte & 0xF))
        }
    }
}

private func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "A") + nibble - 10
}
