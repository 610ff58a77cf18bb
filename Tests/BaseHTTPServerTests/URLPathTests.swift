import Testing
@testable import BaseHTTPServer

@Suite struct URLPathTests {
    @Test(arguments: [
        ("plain", "plain"),
        ("a%20b", "a b"),
        ("%41%42%43", "ABC"),
        ("%c3%a9%C3%A9", "éé"),
        ("a+b", "a+b"),
        ("%", "%"),
        ("%4", "%4"),
        ("%zz%4%41", "%zz%4A"),
        ("100%", "100%"),
        ("%%41", "%A"),
        ("%2F%2f", "//"),
        ("", ""),
    ])
    func percentDecodeKeepsInvalidEscapesLikeUnquote(input: String, expected: String) {
        #expect(percentDecode(input.utf8) == Array(expected.utf8))
        #expect(urlUnquote(input) == expected)
    }

    @Test func percentDecodeWorksOnAnyByteCollection() {
        let bytes: ArraySlice<UInt8> = Array("xx/a%00b".utf8)[3...]
        #expect(percentDecode(bytes) == [0x61, 0x00, 0x62])
        #expect(percentDecode(Array("%ff%FE".utf8)) == [0xFF, 0xFE])
    }

    @Test func urlUnquoteReplacesInvalidUTF8() {
        #expect(urlUnquote("a%ffb") == "a\u{FFFD}b")
    }

    @Test(arguments: [
        ("abc", "/", "abc"),
        ("a&b c%d/é~_.-!*'()", "/", "a%26b%20c%25d/%C3%A9~_.-%21%2A%27%28%29"),
        ("x y/z", "", "x%20y%2Fz"),
        ("a=b&c", "=&", "a=b&c"),
        ("日本", "/", "%E6%97%A5%E6%9C%AC"),
        ("é", "é", "%C3%A9"),
        ("<script>.txt", "/", "%3Cscript%3E.txt"),
        ("", "/", ""),
    ])
    func urlQuoteMatchesPythonsQuote(input: String, safe: String, expected: String) {
        #expect(urlQuote(input, safe: safe) == expected)
    }

    @Test func urlQuoteRoundTripsThroughPercentDecode() {
        let names = ["a b", "100%", "é/ü", "?#[]@!$&'()*+,;=", "\u{1}\u{7F}", "🎉"]
        for name in names {
            #expect(urlUnquote(urlQuote(name)) == name)
        }
    }

    @Test(arguments: [
        ("/", "/srv/www/"),
        ("", "/srv/www"),
        ("/index.html", "/srv/www/index.html"),
        ("/a/./b", "/srv/www/a/b"),
        ("/a/b/../c", "/srv/www/a/c"),
        ("/a/b/..", "/srv/www/a"),
        ("/a/b/../", "/srv/www/a/"),
        ("/a/..", "/srv/www"),
        ("//evil.example", "/srv/www/evil.example"),
        ("//evil.example/x", "/srv/www/evil.example/x"),
        ("/dir/", "/srv/www/dir/"),
        ("/dir//sub///f", "/srv/www/dir/sub/f"),
        ("/dir/.", "/srv/www/dir"),
        ("/a%20b?x=1#f", "/srv/www/a b"),
        ("/a#f?x", "/srv/www/a"),
        ("/dir/?q=/../..", "/srv/www/dir/"),
        ("/caf%C3%A9/%E6%97%A5.txt", "/srv/www/café/日.txt"),
        ("/café/日本.txt", "/srv/www/café/日本.txt"),
        ("/...", "/srv/www/..."),
        ("/..a/b..", "/srv/www/..a/b.."),
        ("/%252e%252e/x", "/srv/www/%2e%2e/x"),
        ("/a%25", "/srv/www/a%"),
        ("/%zz", "/srv/www/%zz"),
        ("relative/path", "/srv/www/relative/path"),
    ])
    func translatePathJoinsCleanSegmentsOntoTheRoot(requestPath: String, expected: String) {
        #expect(translatePath(requestPath, root: "/srv/www") == expected)
    }

    @Test(arguments: [
        "..",
        "/..",
        "/../",
        "/../etc/passwd",
        "/a/../../b",
        "/a/b/../../../etc/passwd",
        "/%2e%2e/",
        "/%2E%2E/etc/passwd",
        "/%2e%2e%2fetc%2fpasswd",
        "/%2E%2E%2F",
        "/..%2f",
        "/..%2F..%2Fetc/passwd",
        "/a%2fb",
        "/a%2Fb",
        "/.%2e/x",
        "/%2e./x",
        "/a\\..\\..\\etc",
        "/a%5c..%5c..",
        "/a%5Cb",
        "/a%00.txt",
        "/a\u{0}.txt",
        "/%ff",
        "/%c3",
        "/%c0%ae%c0%ae/etc/passwd",
    ])
    func translatePathRefusesEscapesAndTraversal(requestPath: String) {
        #expect(translatePath(requestPath, root: "/srv/www") == nil)
    }

    @Test(arguments: [
        ("/srv/www/", "/x", "/srv/www/x"),
        ("/srv/www//", "/x/", "/srv/www/x/"),
        ("/", "/x", "/x"),
        ("/", "/", "/"),
        ("/", "", "/"),
        (".", "/x", "./x"),
        ("", "/x", "./x"),
    ])
    func translatePathNormalisesTheRoot(root: String, requestPath: String, expected: String) {
        #expect(translatePath(requestPath, root: root) == expected)
    }

    @Test func translatePathBytesMapsNamesThatAreNotUTF8ByteForByte() {
        let latin1 = Array("/r/caf".utf8) + [0xE9] + Array(".txt".utf8)
        #expect(translatePathBytes("/caf%E9.txt", root: "/r") == latin1)
        #expect(translatePathBytes("/x/../caf%e9.txt?q", root: "/r/") == latin1)
        #expect(translatePath("/caf%E9.txt", root: "/r") == nil, "a String cannot hold the byte")
        #expect(translatePathBytes("/%FF/..%2F", root: "/r") == nil)
        #expect(translatePathBytes("/a/plain/path.txt", root: "/r") == Array("/r/a/plain/path.txt".utf8))
    }

    @Test func translatePathNeverLeavesTheRoot() {
        let pieces = ["..", ".", "%2e%2e", "%2E.", "a", "b%20c", "", "%2f", "?", "#", "é"]
        var results: [String] = []
        // Every three-segment combination of the pieces, with and without a trailing slash.
        for first in pieces {
            for second in pieces {
                for third in pieces {
                    for tail in ["", "/"] {
                        let request = "/\(first)/\(second)/\(third)\(tail)"
                        if let path = translatePath(request, root: "/srv/www") {
                            results.append(path)
                        }
                    }
                }
            }
        }
        #expect(!results.isEmpty)
        for path in results {
            #expect(path == "/srv/www" || path.hasPrefix("/srv/www/"), "\(path)")
            #expect(!path.split(separator: "/").contains(".."), "\(path)")
        }
    }

    @Test func hasSlashPrefixAnswersAsHasPrefix() {
        let paths = ["", "/", "//", "///", "/a", "//a", "a/", "*", "/\u{301}", "/\u{301}x", "//\u{301}",
                     "/é", "//é", "/\r\n", "/\u{600}", "\u{600}/", "/🎉", "//🎉", "/\u{200D}x", "http://x/"]
        for path in paths {
            #expect(hasSlashPrefix(path, count: 1) == path.hasPrefix("/"), "\(path.debugDescription)")
            #expect(hasSlashPrefix(path, count: 2) == path.hasPrefix("//"), "\(path.debugDescription)")
        }
    }
}
