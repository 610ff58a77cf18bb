import Testing
@testable import BaseHTTPServer

/// `isSafeHeaderText` reads eight bytes at a time with overlapping and padded words: every
/// length, every position of a bad byte, and the harmless bytes that look alike.
@Suite struct HeaderTextTests {
    private func isSafe(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { isSafeHeaderText($0) }
    }

    @Test func crLfAndNULAreFoundAtEveryPositionOfEveryLength() {
        for length in 1...40 {
            for position in 0..<length {
                for bad: UInt8 in [13, 10, 0] {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[position] = bad
                    #expect(!isSafe(bytes), "length \(length), byte \(bad) at \(position)")
                }
            }
        }
    }

    @Test func bytesFrom0x80UpAreFoundAtEveryPositionOfEveryLength() {
        // Not unsafe, but not ASCII: they go through `latin1HeaderText`.
        for length in 1...40 {
            for position in 0..<length {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                bytes[position] = 0xC3
                #expect(!isSafe(bytes), "length \(length), 0xC3 at \(position)")
            }
        }
    }

    @Test func latin1TextIsWrittenAsPythonEncodesItAndOtherTextIsRefused() {
        func latin1(_ text: String) -> [UInt8]? {
            Array(text.utf8).withUnsafeBufferPointer { latin1HeaderText($0) }
        }
        #expect(latin1("café") == [0x63, 0x61, 0x66, 0xE9])
        #expect(latin1("ÿ ") == [0xFF, 0x20])
        #expect(latin1("€uro") == nil)
        #expect(latin1("a\u{0100}") == nil)
        #expect(latin1("é\r\nX: y") == nil)
    }

    @Test func otherBytesPassAtEveryLength() {
        #expect(isSafe([]))
        let harmless = (1...127).map(UInt8.init).filter { $0 != 13 && $0 != 10 }
        for length in 1...40 {
            for start in stride(from: 0, to: harmless.count, by: 7) {
                let bytes = (0..<length).map { harmless[(start + $0) % harmless.count] }
                #expect(isSafe(bytes), "length \(length) from \(start)")
            }
            // Tabs and other control bytes below 14 take the byte-by-byte path.
            for position in 0..<length {
                var bytes = [UInt8](repeating: 0x7F, count: length)
                bytes[position] = 9
                bytes[length - 1 - position] = 11
                #expect(isSafe(bytes), "length \(length), tab at \(position)")
            }
        }
    }

    @Test func aDeclaredLengthIsReadAsIntReadsTheTrimmedValue() {
        let values = ["4096", "0", " 12\t", "\t 7 ", "+5", "-3", "-0", "", " ", "+", "-", "1 2", "12a",
                      "0x10", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                      "-9223372036854775809", "99999999999999999999", "007", " \u{301}4", "４", "1.0",
                      "++1", "+-1", "\u{A0}1"]
        for value in values {
            let read = Array(value.utf8).withUnsafeBufferPointer { decimalValue($0) }
            #expect(read == Int(value.trimmingASCIIWhitespace()), "\(value.debugDescription)")
        }
    }
}
