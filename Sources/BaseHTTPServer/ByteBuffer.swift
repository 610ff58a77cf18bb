/// A growable run of bytes with one owner: appending is a capacity check and a `memcpy`.
///
/// Output is assembled from many small appends per request (status line, header lines,
/// body); `Array`'s copy-on-write checks and generic paths cost more than the copying itself.
/// Being non-copyable, a buffer is never shared, so it needs none of that. The raw memory
/// buys 1,796 instructions and 3 retains per request: 6,217 and 20 against 8,013 and 23 with
/// the same operations on an `[UInt8]` (Scripts/callgrind, S2's shape, at 4aa5a87).
struct ByteBuffer: ~Copyable {
    private var base: UnsafeMutableRawPointer?
    private(set) var count = 0
    private(set) var capacity = 0

    init() {}

    deinit {
        base?.deallocate()
    }

    /// The bytes, valid until the buffer is next changed.
    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: count)
    }

    var isEmpty: Bool { count == 0 }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        if count + bytes.count > capacity { grow(to: count + bytes.count) }
        (base! + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        count += bytes.count
    }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        append(UnsafeRawBufferPointer(bytes))
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    mutating func append(_ other: borrowing ByteBuffer) {
        append(other.bytes)
    }

    mutating func append(_ byte: UInt8) {
        if count == capacity { grow(to: count + 1) }
        base!.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    /// Appends a header line, `name: value` and CRLF, with one capacity check. Inlined into
    /// `Exchange.appendHeaderLine`, its one user: 200 instructions fewer per F1 request, of
    /// seven header lines (Scripts/callgrind --f1).
    @inline(__always)
    mutating func appendHeaderLine(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        let needed = count + name.count + value.count + 4
        if needed > capacity { grow(to: needed) }
        var end = base! + count
        if let source = name.baseAddress { end.copyMemory(from: source, byteCount: name.count) }
        end += name.count
        end.storeBytes(of: UInt8(ascii: ":"), as: UInt8.self)
        (end + 1).storeBytes(of: UInt8(ascii: " "), as: UInt8.self)
        end += 2
        if let source = value.baseAddress { end.copyMemory(from: source, byteCount: value.count) }
        end += value.count
        end.storeBytes(of: UInt8(ascii: "\r"), as: UInt8.self)
        (end + 1).storeBytes(of: UInt8(ascii: "\n"), as: UInt8.self)
        count = needed
    }

    /// Appends the decimal digits of a non-negative integer.
    mutating func appendDecimal(_ value: Int) {
        let magnitude = UInt(max(value, 0))
        let digits = decimalDigitCount(magnitude)
        if count + digits > capacity { grow(to: count + digits) }
        count += writeDecimal(magnitude, digits: digits, to: (base! + count).assumingMemoryBound(to: UInt8.self))
    }

    /// Appends a non-negative integer in lowercase hexadecimal (a chunk size).
    mutating func appendHexadecimal(_ value: Int) {
        let value = UInt(max(value, 0))
        let digits = max(1, (UInt.bitWidth - value.leadingZeroBitCount + 3) / 4)
        if count + digits > capacity { grow(to: count + digits) }
        for index in 0..<digits {
            let nibble = UInt8((value >> UInt(4 * (digits - 1 - index))) & 15)
            let digit = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            base!.storeBytes(of: digit, toByteOffset: count + index, as: UInt8.self)
        }
        count += digits
    }

    /// Drops the bytes from `index` on.
    mutating func truncate(to index: Int) {
        count = min(max(index, 0), count)
    }

    /// Empties the buffer; keeps its memory unless that is larger than `keepingAtMost`.
    /// Lets `fill` write up to `count` bytes into the buffer's spare room (a `pread` straight
    /// into the response, with no array to zero and copy from), and keeps the number it
    /// returns. nil from `fill` (an error) appends nothing.
    mutating func append(upTo count: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Int?) -> Int? {
        if self.count + count > capacity { grow(to: self.count + count) }
        guard let filled = fill(UnsafeMutableRawBufferPointer(start: base! + self.count, count: count))
        else { return nil }
        self.count += min(max(filled, 0), count)
        return filled
    }

    mutating func removeAll(keepingAtMost limit: Int = .max) {
        count = 0
        if capacity > limit {
            base?.deallocate()
            base = nil
            capacity = 0
        }
    }

    private mutating func grow(to needed: Int) {
        let newCapacity = max(needed, capacity * 2, 256)
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        if let base {
            newBase.copyMemory(from: base, byteCount: count)
            base.deallocate()
        }
        base = newBase
        capacity = newCapacity
    }
}

/// How many decimal digits `value` has.
@inline(__always)
func decimalDigitCount(_ value: UInt) -> Int {
    var digits = 1
    var scale: UInt = 10
    while value >= scale && digits < 20 {
        digits += 1
        scale = scale &* 10
    }
    return digits
}

/// Writes the `digits` decimal digits of `value` at `output` (the one decimal writer of the
/// response and log paths). Returns `digits`.
@inline(__always)
func writeDecimal(_ value: UInt, digits: Int, to output: UnsafeMutablePointer<UInt8>) -> Int {
    var rest = value
    var position = output + digits
    repeat {
        position -= 1
        position.pointee = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
        rest /= 10
    } while position > output
    return digits
}
