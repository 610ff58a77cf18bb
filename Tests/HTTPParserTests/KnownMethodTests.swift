import HTTPParser
import Testing

@Suite("Known methods")
struct KnownMethodTests {
    /// Every method with a `doFOO()` is recognised, split at every offset too (the method may
    /// arrive in pieces); near misses and other cases are `.other`.
    @Test(arguments: [
        ("GET", KnownMethod.get), ("HEAD", .head), ("POST", .post), ("PUT", .put),
        ("DELETE", .delete), ("PATCH", .patch), ("OPTIONS", .options), ("TRACE", .trace),
        ("GETS", .other), ("get", .other), ("Post", .other), ("PU", .other), ("DELETES", .other),
        ("OPTIONSX", .other), ("M-SEARCH", .other), ("PROPFIND", .other), ("HEA", .other),
    ])
    func methodIsClassifiedWhateverTheSplit(method: String, expected: KnownMethod) throws {
        let target = method.hasPrefix("OPTIONS") && method.count == 7 ? "*" : "/"
        let stream = Array("\(method) \(target) HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        let (whole, mismatch) = ParserDriver().runEverySplit(stream)
        #expect(mismatch == nil, "\(mismatch ?? "")")
        guard case .head(let head) = try #require(whole.first) else {
            Issue.record("no head: \(whole)")
            return
        }
        #expect(head.knownMethod == expected)
        #expect(head.method == method)
    }

    @Test func connectIsClassifiedWithItsAuthorityTarget() throws {
        let (whole, mismatch) = ParserDriver().runEverySplit(Array("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n".utf8))
        #expect(mismatch == nil)
        guard case .head(let head) = try #require(whole.first) else {
            Issue.record("no head: \(whole)")
            return
        }
        #expect(head.knownMethod == .connect)
    }
}
