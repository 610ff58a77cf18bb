import HTTPParser
import Testing

/// A small deterministic generator (SplitMix64), so every failure reproduces from its seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Builds random requests that are valid by construction, with the outcomes they must produce.
struct RequestGenerator {
    var random: SeededGenerator

    mutating func pick<T>(_ choices: [T]) -> T { choices.randomElement(using: &random)! }
    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }
    mutating func text(_ alphabet: String, _ lengths: ClosedRange<Int>) -> String {
        let characters = Array(alphabet)
        return String((0..<Int.random(in: lengths, using: &random)).map { _ in pick(characters) })
    }

    /// A head line ending: CRLF, sometimes a bare LF (accepted in the head).
    mutating func eol() -> String { chance(20) ? "\n" : "\r\n" }

    /// One request: its bytes and the body the parser must deliver.
    mutating func request() -> (bytes: [UInt8], body: [UInt8]) {
        let http11 = chance(70)
        var head = chance(10) ? "\r\n" : ""
        head += pick(["GET", "POST", "PUT", "DELETE", "X-CUSTOM"]) + " /"
        head += text("abcXYZ019/?=&%-._~", 0...30) + (http11 ? " HTTP/1.1" : " HTTP/1.0")
        head += (chance(10) ? " " : "") + eol()
        if http11 {
            head += "Host: " + text("abc.xyz019", 1...12) + (chance(30) ? ":8080" : "") + eol()
        }
        for _ in 0..<Int.random(in: 0...8, using: &random) {
            head += "X-" + text("abcdefgXYZ-_!#019", 1...12) + ":" + text(" \t", 0...2)
            head += text("abc XYZ019/;,=\"()\t", 0...40) + "z" + text(" \t", 0...2) + eol()
        }
        if chance(20) {
            head += "Connection: " + pick(["close", "keep-alive", "Upgrade, close"]) + eol()
        }
        let body = (0..<Int.random(in: 0...300, using: &random)).map { _ in
            UInt8.random(in: 0...255, using: &random)
        }
        var bytes: [UInt8]
        if http11 && chance(50) {
            head += "Transfer-Encoding: chunked" + eol() + eol()
            bytes = Array(head.utf8)
            var rest = body[...]
            while !rest.isEmpty {
                let size = min(rest.count, Int.random(in: 1...120, using: &random))
                let ext = chance(30) ? ";n=" + pick(["v", "\"q \\\" s\""]) : ""
                bytes += Array((String(size, radix: 16, uppercase: chance(50)) + ext + "\r\n").utf8)
                bytes += rest.prefix(size) + Array("\r\n".utf8)
                rest = rest.dropFirst(size)
            }
            bytes += Array(("0\r\n" + (chance(30) ? "Trailer-X: t\r\n" : "") + "\r\n").utf8)
        } else if !body.isEmpty || chance(50) {
            head += "Content-Length: \(body.count)" + eol() + eol()
            bytes = Array(head.utf8) + body
        } else {
            bytes = Array((head + eol()).utf8)
        }
        return (bytes, body)
    }

    /// Random read sizes covering a stream of `count` bytes.
    mutating func reads(_ count: Int) -> [Int] {
        var sizes: [Int] = []
        var total = 0
        while total < count {
            let size = Int.random(in: 1...max(1, min(count - total, pick([1, 7, 64, 1000]))), using: &random)
            sizes.append(size)
            total += size
        }
        return sizes
    }
}

@Suite struct RequestParserPropertyTests {
    @Test(arguments: 0..<20)
    func validPipelinesParseToTheirBodiesAtRandomSplits(seed: UInt64) {
        var generator = RequestGenerator(random: SeededGenerator(state: seed))
        let driver = ParserDriver()
        for _ in 0..<25 {
            var stream: [UInt8] = []
            var expectedBodies: [[UInt8]] = []
            for _ in 0..<Int.random(in: 1...3, using: &generator.random) {
                let request = generator.request()
                stream += request.bytes
                expectedBodies.append(request.body)
            }
            let whole = driver.run(stream)
            var bodies: [[UInt8]] = []
            var ends = 0
            for outcome in whole {
                switch outcome {
                case .head: bodies.append([])
                case .body(let bytes): bodies[bodies.count - 1] = bytes
                case .end: ends += 1
                case .error(let error): Issue.record("\(error) in \(String(decoding: stream, as: UTF8.self))")
                }
            }
            #expect(bodies == expectedBodies && ends == expectedBodies.count)
            for _ in 0..<4 {
                #expect(driver.run(stream, reads: generator.reads(stream.count)) == whole)
            }
        }
    }

    @Test(arguments: 0..<40)
    func mutatedRequestsGiveTheSameOutcomesAtEverySplit(seed: UInt64) {
        var generator = RequestGenerator(random: SeededGenerator(state: 1000 + seed))
        let driver = ParserDriver()
        for _ in 0..<25 {
            var stream = generator.request().bytes + generator.request().bytes
            for _ in 0..<Int.random(in: 1...3, using: &generator.random) {
                let at = Int.random(in: 0..<stream.count, using: &generator.random)
                let byte = generator.pick(Array("\r\n \t:;,0\0\u{7F}\u{80}aZ\"".utf8))
                switch Int.random(in: 0..<3, using: &generator.random) {
                case 0: stream[at] = byte
                case 1: stream.insert(byte, at: at)
                default: stream.remove(at: at)
                }
            }
            let whole = driver.run(stream)
            let byteByByte = driver.run(stream, reads: Array(repeating: 1, count: stream.count))
            #expect(byteByByte == whole)
            for _ in 0..<4 {
                #expect(driver.run(stream, reads: generator.reads(stream.count)) == whole)
            }
        }
    }
}
