/// Escapes `&`, `<` and `>` (and, when `quote` is true, `"` and `'`) for HTML, as Python's `html.escape`.
///
/// `"` becomes `&quot;` and `'` becomes `&#x27;`, exactly Python's spellings.
/// - Parameters:
///   - s: The text to escape.
///   - quote: Whether to escape quotation marks too, for use inside attribute values.
/// - Returns: `s` itself when nothing needs escaping.
func htmlEscape(_ s: String, quote: Bool = true) -> String {
    let utf8 = s.utf8
    guard utf8.contains(where: { needsHTMLEscape($0, quote: quote) }) else { return s }
    var out: [UInt8] = []
    out.reserveCapacity(utf8.count + 16)
    for byte in utf8 {
        switch byte {
        case UInt8(ascii: "&"): out.append(contentsOf: "&amp;".utf8)
        case UInt8(ascii: "<"): out.append(contentsOf: "&lt;".utf8)
        case UInt8(ascii: ">"): out.append(contentsOf: "&gt;".utf8)
        case UInt8(ascii: "\"") where quote: out.append(contentsOf: "&quot;".utf8)
        case UInt8(ascii: "'") where quote: out.append(contentsOf: "&#x27;".utf8)
        default: out.append(byte)
        }
    }
    return String(decoding: out, as: UTF8.self)
}

private func needsHTMLEscape(_ byte: UInt8, quote: Bool) -> Bool {
    switch byte {
    case UInt8(ascii: "&"), UInt8(ascii: "<"), UInt8(ascii: ">"): true
    case UInt8(ascii: "\""), UInt8(ascii: "'"): quote
    default: false
    }
}

/// Makes a log line safe to write to a terminal, as Python 3.12's `log_message` does.
///
/// Control characters U+0000–U+001F and U+007F–U+009F become `\xHH` (two lowercase hex digits)
/// and a backslash becomes `\\`, so a request cannot forge log lines or send escape sequences to
/// whoever reads the log. All other characters pass through unchanged. (For the package's
/// executables too: `http-server` escapes what it colours itself.)
package func logEscape(_ s: String) -> String {
    guard needsLogEscape(s) else { return s }
    var out = String.UnicodeScalarView()
    for scalar in s.unicodeScalars {
        if scalar == "\\" {
            out.append("\\")
            out.append("\\")
        } else if needsLogEscape(scalar) {
            out.append("\\")
            out.append("x")
            out.append(lowercaseHexDigit(scalar.value >> 4))
            out.append(lowercaseHexDigit(scalar.value & 0xF))
        } else {
            out.append(scalar)
        }
    }
    return String(out)
}

private func lowercaseHexDigit(_ nibble: UInt32) -> Unicode.Scalar {
    Unicode.Scalar(UInt8(truncatingIfNeeded: nibble < 10 ? 0x30 + nibble : 0x57 + nibble))
}

/// Whether any character of `s` needs escaping, read from its UTF-8 bytes: a C0 control or
/// DEL is one byte below 0x20 or 0x7F, a C1 control (U+0080–U+009F) is 0xC2 then 0x80–0x9F.
/// 700 instructions a log line by scalars, a tenth of that by bytes (callgrind, http-server).
/// Eight bytes at a time, the last word overlapping the one before it, as `isSafeHeaderText`
/// reads: a word with no byte below 0x20, none equal to 0x7F or `\\` and none from 0x80 up
/// has nothing to escape, and only text with such a byte is read byte by byte (450
/// instructions fewer per access-log line than a byte at a time, Scripts/callgrind --f1).
private func needsLogEscape(_ s: String) -> Bool {
    withUTF8(of: s) { bytes in
        let raw = UnsafeRawBufferPointer(bytes)
        let count = raw.count
        guard count >= 8 else { return needsLogEscape(bytes) }
        var offset = 0
        while true {
            if mayNeedLogEscape(raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) {
                return needsLogEscape(bytes)
            }
            if offset == count - 8 { return false }
            offset = min(offset + 8, count - 8)
        }
    }
}

/// `needsLogEscape` a byte at a time.
private func needsLogEscape(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    var previous: UInt8 = 0
    for byte in bytes {
        if byte < 0x20 || byte == 0x7F || byte == UInt8(ascii: "\\")
            || (previous == 0xC2 && byte >= 0x80 && byte <= 0x9F) {
            return true
        }
        previous = byte
    }
    return false
}

/// Whether some byte of `word` is below 0x20, is 0x7F or `\\`, or is from 0x80 up. (Each test
/// is exact: a borrow runs only from a byte that already matches.)
@inline(__always)
private func mayNeedLogEscape(_ word: UInt64) -> Bool {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let high: UInt64 = 0x8080_8080_8080_8080
    func hasZeroByte(_ word: UInt64) -> Bool { (word &- ones) & ~word & high != 0 }
    let below20 = (word &- 0x20 &* ones) & ~word & high != 0
    return word & high != 0 || below20 || hasZeroByte(word ^ 0x7F &* ones)
        || hasZeroByte(word ^ UInt64(UInt8(ascii: "\\")) &* ones)
}

private func needsLogEscape(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar == "\\"
}

/// Fills in Python's `%`-style keyed placeholders of an error page template.
///
/// Implements `format % {'code': code, 'message': message, 'explain': explain}` for the
/// placeholders `BaseHTTPRequestHandler.error_message_format` uses: `%(code)d` (also `%(code)s`,
/// `%(code)i`, as Python's default page writes `%(code)s`), `%(message)s`, `%(explain)s` and `%%`.
/// Where Python would raise (an unknown key, a width or flag, a lone `%`), the text is kept as
/// written instead. The values are inserted as given: escape them first for HTML.
func percentFormat(_ format: String, code: Int, message: String, explain: String) -> String {
    var out = ""
    var rest = Substring(format)
    while let percent = rest.firstIndex(of: "%") {
        out += rest[..<percent]
        rest = rest[rest.index(after: percent)...]
        if rest.first == "%" {
            out += "%"
            rest = rest.dropFirst()
            continue
        }
        if let (replacement, remaining) = keyedPlaceholder(rest, code: code, message: message, explain: explain) {
            out += replacement
            rest = remaining
        } else {
            out += "%"
        }
    }
    out += rest
    return out
}

/// Reads `(key)c` at the start of `text` and returns its value and the text after it.
private func keyedPlaceholder(
    _ text: Substring, code: Int, message: String, explain: String
) -> (String, Substring)? {
    guard text.first == "(", let close = text.firstIndex(of: ")") else { return nil }
    let key = text[text.index(after: text.startIndex)..<close]
    let afterClose = text.index(after: close)
    guard afterClose < text.endIndex else { return nil }
    let conversion = text[afterClose]
    let remaining = text[text.index(after: afterClose)...]
    switch (key, conversion) {
    case ("code", "d"), ("code", "i"), ("code", "u"), ("code", "s"), ("code", "r"), ("code", "a"):
        return (String(code), remaining)
    case ("message", "s"):
        return (message, remaining)
    case ("explain", "s"):
        return (explain, remaining)
    default:
        return nil
    }
}

/// `s` as Python's `repr()` writes a string (`%r`): in single quotes, or in double quotes when
/// it holds a `'` and no `"`; a backslash and that quote escaped; `\t`, `\n`, `\r` by name;
/// other characters Python does not print (controls, U+007F–U+00A0, U+00AD) as `\xHH`.
/// Enough for text decoded as ISO-8859-1, which is what request lines are.
func pythonRepr(_ s: String) -> String {
    let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
    var out = String(quote)
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\\": out += "\\\\"
        case "\t": out += "\\t"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case _ where Character(scalar) == quote: out += "\\" + String(quote)
        case _ where scalar.value < 0x20 || (0x7F...0xA0).contains(scalar.value) || scalar.value == 0xAD:
            let hex = String(scalar.value, radix: 16)
            out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
        default: out.unicodeScalars.append(scalar)
        }
    }
    out.append(quote)
    return out
}
