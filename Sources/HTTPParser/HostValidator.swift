/// Checks, one byte at a time, that a `Host` value (or a `CONNECT` target) is
/// `uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 3986 §3.2.2).
///
/// `uri-host` is a reg-name (unreserved, sub-delims, percent-escapes), an IPv4 address (which a
/// reg-name's characters cover) or a bracketed IP-literal; `port` is digits. The validator keeps
/// only its phase, so a value split across reads is checked exactly as a whole one.
struct HostValidator: Sendable {
    /// Where in the grammar the next byte lands.
    private enum Phase: UInt8, Sendable {
        case start, regName, percent1, percent2, literal, literalEnd, port, trailingSpace, invalid
    }

    private var phase = Phase.start
    private var literalLength = 0
    private var portDigits = 0
    private var hostLength = 0

    /// Checks the next `count` bytes; returns false once the value can no longer be valid.
    /// Trailing SP/HTAB are accepted (the field value's OWS), anything after them is not.
    @inline(__always)
    mutating func feed(_ bytes: UnsafePointer<UInt8>, _ count: Int, _ table: UnsafePointer<UInt8>)
        -> Bool
    {
        var k = 0
        while k < count {
            // The common runs first, in tight loops: reg-name characters, then port digits.
            if phase == .start || phase == .regName {
                let runStart = k
                k = ByteClass.span(bytes, from: k, to: count, table, ByteClass.regName)
                if k > runStart {
                    phase = .regName
                    hostLength += k - runStart
                    if k == count { break }
                }
            } else if phase == .port {
                let runStart = k
                while k < count && bytes[k] &- ASCII.zero < 10 { k += 1 }
                portDigits += k - runStart
                if k == count { break }
            }
            let byte = bytes[k]
            let classes = table[Int(byte)]
            if classes & ByteClass.whitespace != 0 {
                switch phase {
                case .percent1, .percent2, .literal: phase = .invalid
                case .invalid: break
                default: phase = .trailingSpace
                }
            } else {
                step(byte, classes)
            }
            if phase == .invalid { return false }
            k += 1
        }
        return true
    }

    /// Advances the phase over one byte that is not whitespace.
    private mutating func step(_ byte: UInt8, _ classes: UInt8) {
        switch phase {
        case .start, .regName:
            if byte == ASCII.leftBracket && phase == .start {
                phase = .literal
            } else if classes & ByteClass.regName != 0 {
                phase = .regName
                hostLength += 1
            } else if byte == ASCII.percent {
                phase = .percent1
                hostLength += 1
            } else if byte == ASCII.colon {
                phase = .port
            } else {
                phase = .invalid
            }
        case .percent1:
            phase = classes & ByteClass.hex != 0 ? .percent2 : .invalid
        case .percent2:
            phase = classes & ByteClass.hex != 0 ? .regName : .invalid
        case .literal:
            if byte == ASCII.rightBracket {
                phase = literalLength > 0 ? .literalEnd : .invalid
            } else if classes & ByteClass.regName != 0 || byte == ASCII.colon
                || byte == ASCII.percent
            {
                literalLength += 1
                hostLength += 1
            } else {
                phase = .invalid
            }
        case .literalEnd:
            phase = byte == ASCII.colon ? .port : .invalid
        case .port:
            if ASCII.digit(byte) != nil { portDigits += 1 } else { phase = .invalid }
        case .trailingSpace, .invalid:
            phase = .invalid
        }
    }

    /// Whether the bytes fed so far form a complete host; with `requiringPort` (the `CONNECT`
    /// authority form) the host must be non-empty and a port with digits must follow.
    func isComplete(requiringPort: Bool) -> Bool {
        switch phase {
        case .percent1, .percent2, .literal, .invalid: return false
        default: return !requiringPort || (hostLength > 0 && portDigits > 0)
        }
    }
}
