import HTTPParser

/// The header fields of a request: ordered as received, repeats kept, names matched without
/// regard to case. Python's `http.client.HTTPMessage`, read-only.
///
/// The fields stay bytes until asked for: a `String` is made only for the name or value read.
public struct HTTPMessage: Sequence, Sendable {
    /// The request head's bytes; the fields' ranges point into them.
    private var bytes: [UInt8]
    private var fields: [HeaderField]

    /// An empty set of fields.
    public init() {
        bytes = []
        fields = []
    }

    /// Fields given as name and value pairs, in order (for tests and for handlers that build
    /// a message themselves).
    public init(_ pairs: [(name: String, value: String)]) {
        var bytes: [UInt8] = []
        var fields: [HeaderField] = []
        for (name, value) in pairs {
            let nameStart = bytes.count
            bytes.append(contentsOf: name.utf8)
            let valueStart = bytes.count
            bytes.append(contentsOf: value.utf8)
            fields.append(HeaderField(name: nameStart..<valueStart, value: valueStart..<bytes.count))
        }
        self.bytes = bytes
        self.fields = fields
    }

    init(head bytes: [UInt8], fields: [HeaderField]) {
        self.bytes = bytes
        self.fields = fields
    }

    /// The number of fields, repeats included.
    public var count: Int { fields.count }

    /// The first value of the field called `name` (any case), or nil.
    public subscript(name: String) -> String? {
        guard let index = firstIndex(of: name) else { return nil }
        return text(fields[index].value)
    }

    /// Every value of the field called `name` (any case), in received order.
    public func values(for name: String) -> [String] {
        var name = name
        return name.withUTF8 { name in
            fields.filter { matches($0.name, name) }.map { text($0.value) }
        }
    }

    /// Whether a field called `name` (any case) is present.
    public func contains(_ name: String) -> Bool { firstIndex(of: name) != nil }

    public func makeIterator() -> Iterator { Iterator(message: self) }

    /// Yields `(name, value)` pairs in received order, names as received.
    public struct Iterator: IteratorProtocol {
        let message: HTTPMessage
        var index = 0

        public mutating func next() -> (name: String, value: String)? {
            guard index < message.fields.count else { return nil }
            defer { index += 1 }
            let field = message.fields[index]
            return (message.text(field.name), message.text(field.value))
        }
    }

    private func firstIndex(of name: String) -> Int? {
        var name = name
        return name.withUTF8 { name in fields.firstIndex { matches($0.name, name) } }
    }

    private func matches(_ range: Range<Int>, _ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard range.count == name.count else { return false }
        var index = range.lowerBound
        for byte in name {
            if ASCII.lowercase(bytes[index]) != ASCII.lowercase(byte) { return false }
            index += 1
        }
        return true
    }

    private func text(_ range: Range<Int>) -> String {
        latin1String(bytes[range])
    }
}

extension HTTPMessage: CustomStringConvertible {
    /// The fields as they would appear in a message, one `Name: value` line each.
    public var description: String {
        map { "\($0.name): \($0.value)\r\n" }.joined()
    }
}

/// Decodes bytes as ISO-8859-1, as Python does for request lines and header fields: ASCII
/// stays as it is, and every other byte becomes the code point of the same number.
func latin1String(_ bytes: ArraySlice<UInt8>) -> String {
    bytes.withUnsafeBufferPointer { bytes in
        var high: UInt8 = 0
        for byte in bytes { high |= byte }
        if high < 0x80 { return String(decoding: bytes, as: UTF8.self) }
        var scalars = String.UnicodeScalarView()
        for byte in bytes { scalars.append(Unicode.Scalar(byte)) }
        return String(scalars)
    }
}

/// Decodes bytes as ISO-8859-1 (see the slice version).
func latin1String(_ bytes: [UInt8]) -> String {
    latin1String(bytes[...])
}
