import Testing
@testable import BaseHTTPServer

@Suite struct ByteRangeTests {
    @Test(arguments: [
        ("bytes=0-499", 0..<500),
        ("bytes=500-999", 500..<1000),
        ("bytes=0-0", 0..<1),
        ("bytes=999-999", 999..<1000),
        ("bytes=500-", 500..<1000),
        ("bytes=0-", 0..<1000),
        ("bytes=-500", 500..<1000),
        ("bytes=-1", 999..<1000),
        ("bytes=-1000", 0..<1000),
        ("bytes=-5000", 0..<1000),
        ("bytes=900-5000", 900..<1000),
        ("bytes=0-99999999999999999999999", 0..<1000),
        ("bytes=-99999999999999999999999", 0..<1000),
        ("  bytes=0-9  ", 0..<10),
        ("bytes = 0-9", 0..<10),
        ("bytes= 0 - 9 ", 0..<10),
        ("bytes=\t0-9", 0..<10),
        ("BYTES=0-9", 0..<10),
        ("Bytes=0-9", 0..<10),
        ("bytes=0-9,", 0..<10),
        ("bytes=, 0-9 ,,", 0..<10),
        ("bytes=007-008", 7..<9),
    ])
    func satisfiableRangesAreClippedToTheFile(header: String, expected: Range<Int>) {
        #expect(ByteRangeRequest.parse(header, fileSize: 1000) == .satisfiable(expected))
    }

    @Test(arguments: [
        "bytes=1000-",
        "bytes=1000-1000",
        "bytes=5000-6000",
        "bytes=-0",
        "bytes=99999999999999999999999-",
    ])
    func rangesThatSelectNothingAreUnsatisfiable(header: String) {
        #expect(ByteRangeRequest.parse(header, fileSize: 1000) == .unsatisfiable)
    }

    @Test(arguments: ["bytes=0-", "bytes=0-0", "bytes=-1", "bytes=-0", "bytes=5-10"])
    func anyRangeOfAnEmptyFileIsUnsatisfiable(header: String) {
        #expect(ByteRangeRequest.parse(header, fileSize: 0) == .unsatisfiable)
    }

    @Test(arguments: [
        nil,
        "",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=,",
        "bytes=5-3",
        "bytes=0-1,5-9",
        "bytes=0-1, 3-4, 7-",
        "items=0-9",
        "bytesx=0-9",
        "byte=0-9",
        "bytes=abc",
        "bytes=a-9",
        "bytes=0-9x",
        "bytes=+1-9",
        "bytes=-+1",
        "bytes=0--9",
        "bytes=--9",
        "bytes=1-2-3",
        "bytes=0x10-20",
        "bytes=0 1-9",
        "0-9",
        "=0-9",
    ] as [String?])
    func malformedOrMultiRangeHeadersServeTheWholeFile(header: String?) {
        #expect(ByteRangeRequest.parse(header, fileSize: 1000) == .none)
    }

    @Test func aBackwardsRangeIsIgnoredEvenPastTheEnd() {
        #expect(ByteRangeRequest.parse("bytes=2000-1500", fileSize: 1000) == .none)
    }

    @Test func contentRangeValuesUseInclusiveEnds() {
        #expect(contentRangeValue(0..<500, fileSize: 1234) == "bytes 0-499/1234")
        #expect(contentRangeValue(1233..<1234, fileSize: 1234) == "bytes 1233-1233/1234")
        #expect(unsatisfiedContentRangeValue(fileSize: 1234) == "bytes */1234")
        #expect(unsatisfiedContentRangeValue(fileSize: 0) == "bytes */0")
    }

    @Test func everyParsedRangeLiesInsideTheFile() {
        let sizes = [0, 1, 2, 10, 1000]
        let positions = ["", "0", "1", "5", "9", "10", "999", "1000", "1001"]
        for size in sizes {
            for first in positions {
                for last in positions {
                    let header = "bytes=\(first)-\(last)"
                    if case .satisfiable(let range) = ByteRangeRequest.parse(header, fileSize: size) {
                        #expect(!range.isEmpty, "\(header) size \(size)")
                        #expect(range.lowerBound >= 0 && range.upperBound <= size, "\(header) size \(size)")
                    }
                }
            }
        }
    }
}
