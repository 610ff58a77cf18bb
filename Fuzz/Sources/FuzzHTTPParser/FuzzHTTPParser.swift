import HTTPParser

/// What the parser reported for one stream, in a form independent of how it was split:
/// body ranges become stream offsets and adjacent ones are merged.
enum Observed: Equatable {
    case head(RequestHead, at: Int)
    case body(Range<Int>)
    case end(at: Int)
    case error(ParseError)
}

/// Feeds `stream` in reads of `readSize` bytes (the last one shorter) and records what the
/// parser reports, checking the protocol invariants as it goes.
func observe(_ stream: UnsafeRawBufferPointer, readSize: Int, _ limits: ParserLimits) -> [Observed] {
    var parser = RequestParser(limits: limits)
    var observed: [Observed] = []
    var position = 0
    var delivered = 0
    var wantsMore = true
    while true {
        if wantsMore && position == delivered {
            guard delivered < stream.count else { break }
            delivered = min(stream.count, delivered + readSize)
        }
        let input = UnsafeRawBufferPointer(rebasing: stream[position..<delivered])
        let (event, consumed) = parser.parse(input)
        precondition(consumed >= 0 && consumed <= input.count, "consumed beyond the input")
        wantsMore = event == .needMore
        switch event {
        case .needMore:
            precondition(consumed == input.count, "needMore left bytes unconsumed")
        case .head(let head):
            precondition(head.headLength >= 0 && head.fields.allSatisfy { !$0.name.isEmpty })
            observed.append(.head(head, at: position + consumed))
        case .body(let range):
            precondition(range.lowerBound >= 0 && range.upperBound <= consumed && !range.isEmpty)
            let absolute = position + range.lowerBound..<position + range.upperBound
            if case .body(let last) = observed.last, last.upperBound == absolute.lowerBound {
                observed[observed.count - 1] = .body(last.lowerBound..<absolute.upperBound)
            } else {
                observed.append(.body(absolute))
            }
        case .end:
            observed.append(.end(at: position + consumed))
        case .error(let error):
            precondition(consumed == 0, "an error consumed bytes")
            let again = parser.parse(input)
            precondition(again.event == event && again.consumed == 0, "error not sticky")
            observed.append(.error(error))
            return observed
        }
        position += consumed
    }
    return observed
}

/// Tight limits, chosen by the first input byte, so the fuzzer reaches every limit path.
func limits(for selector: UInt8) -> ParserLimits {
    var limits = ParserLimits()
    guard selector & 1 == 1 else { return limits }
    limits.maxRequestLineLength = 40
    limits.maxHeaderLineLength = 48
    limits.maxHeaderCount = 4
    limits.maxHeaderSectionSize = 120
    limits.maxBodySize = 300
    limits.maxChunkLineLength = 24
    limits.maxTrailerSectionSize = 40
    return limits
}

/// libFuzzer's entry point: the result of the whole input must equal that of the input split
/// at a point derived from the data, and that of the input fed one byte at a time.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let chosen = limits(for: data[0])
    let stream = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    let whole = observe(stream, readSize: max(1, stream.count), chosen)
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for k in 0..<size { hash = (hash ^ UInt64(data[k])) &* 0x100_0000_01B3 }
    let splitSize = stream.isEmpty ? 1 : Int(hash % UInt64(stream.count)) + 1
    let split = observe(stream, readSize: splitSize, chosen)
    precondition(split == whole, "split at \(splitSize) differs: \(split) vs \(whole)")
    let byteByByte = observe(stream, readSize: 1, chosen)
    precondition(byteByByte == whole, "byte by byte differs: \(byteByByte) vs \(whole)")
    return 0
}

/// libFuzzer's driver, which runs the fuzzing loop with our entry point and its command line.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ body: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

/// The program's entry point. SwiftPM links an executable's `main` to `<module>_main`, which
/// keeps libFuzzer's own `main` out of the link; so this hands control to libFuzzer's driver.
@_cdecl("FuzzHTTPParser_main")
public func fuzzerMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
) -> CInt {
    var count = argc
    var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return runFuzzerDriver(&count, &arguments) { data, size in fuzzHTTPParser(data, size) }
}
