/// Byte classes of the HTTP grammar as bit flags in one 256-entry table, so each hot loop
/// tests a byte with one load and one mask instead of a chain of comparisons.
enum ByteClass {
    /// `tchar` (RFC 9110 §5.6.2): the characters of methods, field names, coding names.
    static let token: UInt8 = 1 << 0
    /// A byte allowed inside a field value: VCHAR, obs-text, SP, HTAB.
    static let fieldValue: UInt8 = 1 << 1
    /// A byte allowed in a request target: 0x21–0x7E and obs-text.
    static let target: UInt8 = 1 << 2
    /// HEXDIG, either case.
    static let hex: UInt8 = 1 << 3
    /// unreserved / sub-delims (RFC 3986): the characters of a reg-name.
    static let regName: UInt8 = 1 << 4
    /// ALPHA / DIGIT / "+" / "-" / ".": the characters of a URI scheme after the first.
    static let scheme: UInt8 = 1 << 5
    /// `qdtext` (RFC 9110 §5.6.4): what may stand unescaped inside a quoted string.
    static let quotedText: UInt8 = 1 << 6
    /// SP or HTAB.
    static let whitespace: UInt8 = 1 << 7

    /// The table, indexed by byte value. It is filled once by the (thread-safe) lazy
    /// initializer, never written again and never freed, which is why sharing the pointer
    /// across threads is sound; a pointer, unlike an array, costs no retain per `parse` call.
    nonisolated(unsafe) static let pointer: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        for byte in 0..<256 { table[byte] = classes(of: UInt8(byte)) }
        return UnsafePointer(table)
    }()

    /// The index of the first byte of `p[start..<end]` not in `mask`'s class (one bit), or
    /// `end`. Four table lookups per step, so the loop's bookkeeping is paid once per four bytes.
    @inline(__always)
    static func span(
        _ p: UnsafePointer<UInt8>, from start: Int, to end: Int, _ t: UnsafePointer<UInt8>,
        _ mask: UInt8
    ) -> Int {
        var i = start
        while i &+ 4 <= end {
            let all = t[Int(p[i])] & t[Int(p[i &+ 1])] & t[Int(p[i &+ 2])] & t[Int(p[i &+ 3])]
            if all & mask == 0 { break }
            i &+= 4
        }
        while i < end && t[Int(p[i])] & mask != 0 { i &+= 1 }
        return i
    }

    /// Like ``span(_:from:to:_:_:)`` for a class that admits every byte from `low` up except
    /// DEL (field values with `low` 0x20, targets with 0x21): eight bytes per step, testing a
    /// whole word for a byte below `low` or equal to 0x7F; a word with one (an HTAB in a
    /// value, the end of the line) is finished byte by byte.
    @inline(__always)
    static func span(
        _ p: UnsafePointer<UInt8>, from start: Int, to end: Int, _ t: UnsafePointer<UInt8>,
        _ mask: UInt8, allAbove low: UInt8
    ) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highBits: UInt64 = 0x8080_8080_8080_8080
        var i = start
        while i &+ 8 <= end {
            let word = UInt64(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self))
            let below = (word &- ones &* UInt64(low)) & ~word & highBits
            let notDEL = word ^ (ones &* 0x7F)
            let isDEL = (notDEL &- ones) & ~notDEL & highBits
            if below | isDEL != 0 { break }
            i &+= 8
        }
        return span(p, from: i, to: end, t, mask)
    }

    /// The classes `byte` belongs to; runs once per byte value when the table is built.
    private static func classes(of byte: UInt8) -> UInt8 {
        let isAlpha = (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A
        let isDigit = byte >= 0x30 && byte <= 0x39
        let isVisible = byte >= 0x21 && byte <= 0x7E
        let isObsText = byte >= 0x80
        let isWhitespace = byte == 0x20 || byte == 0x09
        var result: UInt8 = 0
        if isAlpha || isDigit || Array("!#$%&'*+-.^_`|~".utf8).contains(byte) { result |= token }
        if isVisible || isObsText || isWhitespace { result |= fieldValue }
        if isVisible || isObsText { result |= target }
        if isDigit || ((byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x66) { result |= hex }
        if isAlpha || isDigit || Array("-._~!$&'()*+,;=".utf8).contains(byte) { result |= regName }
        if isAlpha || isDigit || byte == 0x2B || byte == 0x2D || byte == 0x2E { result |= scheme }
        if isWhitespace || isObsText || (isVisible && byte != 0x22 && byte != 0x5C) {
            result |= quotedText
        }
        if isWhitespace { result |= whitespace }
        return result
    }
}

/// The byte-class table as a value a parser can hold. The memory behind it is written once,
/// by the thread-safe lazy initializer of ``ByteClass/pointer``, and never again, so sharing it
/// between threads is sound even though the compiler cannot prove it.
struct ByteTable: @unchecked Sendable {
    let pointer: UnsafePointer<UInt8>

    /// The one table.
    static var shared: ByteTable { ByteTable(pointer: ByteClass.pointer) }
}

/// The ASCII bytes the parser branches on, named, and the ASCII comparisons of the package
/// (the server uses them too, so that each exists once).
package enum ASCII {
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let quote: UInt8 = 0x22
    static let percent: UInt8 = 0x25
    static let asterisk: UInt8 = 0x2A
    static let comma: UInt8 = 0x2C
    static let dot: UInt8 = 0x2E
    static let slash: UInt8 = 0x2F
    static let zero: UInt8 = 0x30
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let equals: UInt8 = 0x3D
    static let leftBracket: UInt8 = 0x5B
    static let backslash: UInt8 = 0x5C
    static let rightBracket: UInt8 = 0x5D

    /// The value of a decimal digit, or nil.
    @inline(__always)
    static func digit(_ byte: UInt8) -> Int? {
        byte &- zero < 10 ? Int(byte &- zero) : nil
    }

    /// The value of a hexadecimal digit, or nil.
    @inline(__always)
    static func hexDigit(_ byte: UInt8) -> Int? {
        if byte &- zero < 10 { return Int(byte &- zero) }
        let folded = byte | 0x20
        return folded &- 0x61 < 6 ? Int(folded &- 0x61) + 10 : nil
    }

    /// The byte with an ASCII capital letter made small; any other byte as it is.
    @inline(__always)
    package static func lowercase(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }

    /// Whether `bytes` spell `literal`, ASCII letters compared without case. `literal` must
    /// be lowercase letters, digits and `-`, and `bytes` must hold no CR (which OR-ing 0x20
    /// turns into `-`): true of tokens, and of header text the server has checked.
    @inline(__always)
    package static func equalsIgnoringCase(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        guard let base = bytes.baseAddress else { return literal.utf8CodeUnitCount == 0 }
        return equalsIgnoringCase(base, bytes.count, literal)
    }

    /// Whether `count` bytes at `bytes` spell `literal`, ASCII letters compared without case.
    /// `literal` must be lowercase letters, digits and `-` (for which OR-ing 0x20 is identity).
    /// Eight bytes at a time, then the rest one by one: 110 instructions fewer for
    /// `content-length` than a byte at a time (Scripts/callgrind --f1).
    @inline(__always)
    static func equalsIgnoringCase(
        _ bytes: UnsafePointer<UInt8>, _ count: Int, _ literal: StaticString
    ) -> Bool {
        guard count == literal.utf8CodeUnitCount else { return false }
        let expected = literal.utf8Start
        var k = 0
        while k + 8 <= count {
            let word = UnsafeRawPointer(bytes + k).loadUnaligned(as: UInt64.self)
            if word | 0x2020_2020_2020_2020 != UnsafeRawPointer(expected + k).loadUnaligned(as: UInt64.self) {
                return false
            }
            k += 8
        }
        while k < count {
            if bytes[k] | 0x20 != expected[k] { return false }
            k += 1
        }
        return true
    }

    /// Whether `count` bytes at `bytes` spell `literal` exactly.
    @inline(__always)
    static func equals(_ bytes: UnsafePointer<UInt8>, _ count: Int, _ literal: StaticString) -> Bool {
        guard count == literal.utf8CodeUnitCount else { return false }
        let expected = literal.utf8Start
        for k in 0..<count where bytes[k] != expected[k] { return false }
        return true
    }
}
