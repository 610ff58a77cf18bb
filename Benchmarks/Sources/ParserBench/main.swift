// Measures the Swift request parser against the C http_parser on the same requests in the
// same run, and prints the cost of feeding a 64 KiB head one byte at a time versus whole.
import CHTTPParser
import CParserBench
import Glibc
import HTTPParser

/// Nanoseconds on the monotonic clock.
func now() -> Int {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return time.tv_sec * 1_000_000_000 + time.tv_nsec
}

/// Parses one request with the Swift parser, touching what a server would use.
@inline(never)
func parseOurs(_ bytes: UnsafeRawBufferPointer, _ parser: inout RequestParser) -> Int {
    var position = 0
    var checksum = 0
    while true {
        let (event, consumed) = parser.parse(UnsafeRawBufferPointer(rebasing: bytes[position...]))
        position += consumed
        switch event {
        case .head(let head): checksum += head.fields.count + head.target.count + head.headLength
        case .body(let range): checksum += range.count
        case .end: return checksum
        case .needMore, .error: fatalError("benchmark request did not parse: \(event)")
        }
    }
}

/// The median of `repetitions` timings of `iterations` calls of `body`, in ns per call.
func medianNanoseconds(repetitions: Int = 9, iterations: Int, _ body: (Int) -> Int) -> Double {
    var samples: [Double] = []
    var sink = 0
    for _ in 0..<repetitions {
        let start = now()
        sink &+= body(iterations)
        samples.append(Double(now() - start) / Double(iterations))
    }
    if sink == 42 { print("") }  // keeps the work observable
    return samples.sorted()[repetitions / 2]
}

/// Times both parsers on `request` and prints one table row. The two alternate run by run,
/// so a busy machine slows both alike and the ratio stays fair.
func compare(_ name: String, _ request: String) {
    let bytes = Array(request.utf8)
    let iterations = max(10_000, 40_000_000 / bytes.count)
    var oursSamples: [Double] = []
    var theirsSamples: [Double] = []
    for _ in 0..<9 {
        oursSamples.append(bytes.withUnsafeBytes { raw in
            medianNanoseconds(repetitions: 1, iterations: iterations) { count in
                var parser = RequestParser()
                var checksum = 0
                for _ in 0..<count { checksum &+= parseOurs(raw, &parser) }
                return checksum
            }
        })
        theirsSamples.append(bytes.withUnsafeBufferPointer { buffer in
            medianNanoseconds(repetitions: 1, iterations: iterations) { count in
                buffer.withMemoryRebound(to: CChar.self) { chars in
                    let result = c_parser_bench(chars.baseAddress, chars.count, count)
                    precondition(result >= 0, "http_parser rejected the benchmark request")
                    return result
                }
            }
        })
    }
    let ours = oursSamples.sorted()[4]
    let theirs = theirsSamples.sorted()[4]
    func mbps(_ ns: Double) -> Double { Double(bytes.count) / ns * 1000 }
    print(
        pad(name, 26), pad("\(bytes.count)", 6), pad(fixed(mbps(ours)), 10),
        pad(fixed(ours), 10), pad(fixed(mbps(theirs)), 10), pad(fixed(theirs), 10),
        pad(fixed(theirs / ours, 2) + "x", 8))
}

func fixed(_ value: Double, _ decimals: Int = 1) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    let text = "\(rounded)"
    let fraction = text.split(separator: ".").last?.count ?? 0
    return decimals == 0 ? text : text + String(repeating: "0", count: max(0, decimals - fraction))
}

func pad(_ text: String, _ width: Int) -> String {
    String(repeating: " ", count: max(0, width - text.count)) + text
}

let minimalGET = "GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n"
let browserGET = """
    GET /products/catalog/item.html?id=12345&ref=home HTTP/1.1\r
    Host: shop.example.com\r
    User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r
    Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r
    Accept-Language: en-US,en;q=0.5\r
    Accept-Encoding: gzip, deflate, br\r
    Referer: https://shop.example.com/\r
    Connection: keep-alive\r
    Cookie: session=abc123def456; theme=dark\r
    Upgrade-Insecure-Requests: 1\r
    Sec-Fetch-Dest: document\r
    Sec-Fetch-Mode: navigate\r
    Cache-Control: max-age=0\r
    \r

    """
let chunk = String(repeating: "0123456789abcdef", count: 64)  // 1 KiB
let chunkedPOST = "POST /upload HTTP/1.1\r\nHost: localhost:8080\r\nTransfer-Encoding: chunked\r\n"
    + "Content-Type: application/octet-stream\r\n\r\n"
    + String(repeating: "400\r\n" + chunk + "\r\n", count: 4) + "0\r\n\r\n"

// `ParserBench --profile a|b|c` runs only the Swift parser on one case, for perf/callgrind.
if CommandLine.arguments.count == 3 && CommandLine.arguments[1] == "--profile" {
    let cases = ["a": minimalGET, "b": browserGET, "c": chunkedPOST]
    let bytes = Array((cases[CommandLine.arguments[2]] ?? minimalGET).utf8)
    let checksum = bytes.withUnsafeBytes { raw in
        var parser = RequestParser()
        var checksum = 0
        for _ in 0..<2_000_000 { checksum &+= parseOurs(raw, &parser) }
        return checksum
    }
    print("checksum", checksum)
    exit(0)
}

let version = http_parser_version()
print(
    "request parsing, median of 9 runs; ours = HTTPParser, C = http_parser",
    "\(version >> 16).\((version >> 8) & 255).\(version & 255)")
print(
    pad("case", 26), pad("bytes", 6), pad("ours MB/s", 10), pad("ns/req", 10),
    pad("C MB/s", 10), pad("ns/req", 10), pad("ours/C", 8))
compare("(a) wrk minimal GET", minimalGET)
compare("(b) browser GET, 12 fields", browserGET)
compare("(c) 4 KiB chunked POST", chunkedPOST)

// Linearity: a 64 KiB header section fed whole and one byte at a time.
var head = "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + String(repeating: "v", count: 32 * 1024) + "\r\n"
while head.utf8.count < 64 * 1024 { head += "X-Field: some value here\r\n" }
let bigHead = Array((head + "\r\n").utf8)
func feed(_ readSize: Int) -> Double {
    bigHead.withUnsafeBytes { raw in
        medianNanoseconds(repetitions: 5, iterations: 1) { _ in
            var limits = ParserLimits()
            limits.maxHeaderCount = 10_000
            limits.maxHeaderSectionSize = 1 << 20
            var parser = RequestParser(limits: limits)
            var position = 0
            var heads = 0
            while position < raw.count {
                let end = min(raw.count, position + readSize)
                let (event, consumed) = parser.parse(UnsafeRawBufferPointer(rebasing: raw[position..<end]))
                if case .head = event { heads += 1 }
                position += consumed
            }
            precondition(heads == 1)
            return heads
        } / Double(raw.count)
    }
}
let whole = feed(bigHead.count)
let byteByByte = feed(1)
print(
    "64 KiB head (\(bigHead.count) bytes): whole \(fixed(whole, 2)) ns/byte,",
    "byte by byte \(fixed(byteByByte, 2)) ns/byte (one parse() call per byte)")
