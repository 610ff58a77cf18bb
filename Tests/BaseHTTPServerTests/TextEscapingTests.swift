import Testing
@testable import BaseHTTPServer

@Suite struct TextEscapingTests {
    @Test(arguments: [
        ("plain", "plain", "plain"),
        ("", "", ""),
        ("a&b<c>\"d'e", "a&amp;b&lt;c&gt;&quot;d&#x27;e", "a&amp;b&lt;c&gt;\"d'e"),
        ("&amp;", "&amp;amp;", "&amp;amp;"),
        ("<script>alert('x')</script>", "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;",
         "&lt;script&gt;alert('x')&lt;/script&gt;"),
        ("héllo <wörld> 🎉", "héllo &lt;wörld&gt; 🎉", "héllo &lt;wörld&gt; 🎉"),
    ])
    func htmlEscapeMatchesPythonsHTMLEscape(input: String, quoted: String, unquoted: String) {
        #expect(htmlEscape(input) == quoted)
        #expect(htmlEscape(input, quote: true) == quoted)
        #expect(htmlEscape(input, quote: false) == unquoted)
    }

    @Test(arguments: [
        ("GET / HTTP/1.1", "GET / HTTP/1.1"),
        ("a\u{1B}[31mred", "a\\x1b[31mred"),
        ("line\nbreak\r", "line\\x0abreak\\x0d"),
        ("nul\u{0}tab\t", "nul\\x00tab\\x09"),
        ("back\\slash", "back\\\\slash"),
        ("\\x41", "\\\\x41"),
        ("del\u{7F} c1\u{85}\u{9F} nbsp\u{A0}", "del\\x7f c1\\x85\\x9f nbsp\u{A0}"),
        ("unicode é 日本 🎉", "unicode é 日本 🎉"),
        ("\u{1F}\u{20}", "\\x1f "),
    ])
    func logEscapeMatchesPythonsControlCharacterTable(input: String, expected: String) {
        #expect(logEscape(input) == expected)
    }

    @Test func logEscapeCoversExactlyTheC0AndC1RangesAndBackslash() {
        for value in UInt32(0)...0x2FF {
            let scalar = Unicode.Scalar(value)!
            let escaped = logEscape(String(scalar))
            let expectEscaped = value < 0x20 || (0x7F...0x9F).contains(value) || value == 0x5C
            #expect((escaped != String(scalar)) == expectEscaped, "U+\(value)")
        }
    }

    @Test func logEscapeFindsEveryEscapedCharacterAtEveryPositionOfLongerLines() {
        // Lines are read eight bytes at a time: each character, at each offset of each length.
        for value in UInt32(0)...0x2FF {
            let scalar = Unicode.Scalar(value)!
            let expectEscaped = value < 0x20 || (0x7F...0x9F).contains(value) || value == 0x5C
            for length in [8, 9, 15, 16, 17, 23] {
                for position in 0..<length {
                    let before = String(repeating: "a", count: position)
                    let after = String(repeating: "z", count: length - position - 1)
                    let line = before + String(scalar) + after
                    let escaped = logEscape(line)
                    #expect((escaped != line) == expectEscaped, "U+\(value) at \(position) of \(length)")
                    if expectEscaped {
                        #expect(escaped.hasPrefix(before) && escaped.hasSuffix(after))
                    }
                }
            }
        }
    }

    /// Python 3.14's `DEFAULT_ERROR_MESSAGE`, as its source has it.
    static let pythonDefaultErrorPage = """
        <!DOCTYPE HTML>
        <html lang="en">
            <head>
                <meta charset="utf-8">
                <style type="text/css">
                    :root {
                        color-scheme: light dark;
                    }
                </style>
                <title>Error response</title>
            </head>
            <body>
                <h1>Error response</h1>
                <p>Error code: %(code)d</p>
                <p>Message: %(message)s.</p>
                <p>Error code explanation: %(code)s - %(explain)s.</p>
            </body>
        </html>

        """

    @Test func theDefaultErrorPageIsPython314sByteForByte() {
        #expect(defaultErrorMessageFormat == Self.pythonDefaultErrorPage)
        #expect(BaseHTTPRequestHandler.errorMessageFormat == Self.pythonDefaultErrorPage)
    }

    @Test func percentFormatFillsPythonsDefaultErrorPage() {
        let page = percentFormat(
            Self.pythonDefaultErrorPage, code: 404, message: "File not found",
            explain: "Nothing matches the given URI")
        #expect(page.contains("<p>Error code: 404</p>\n"))
        #expect(page.contains("<p>Message: File not found.</p>\n"))
        #expect(page.contains("<p>Error code explanation: 404 - Nothing matches the given URI.</p>\n"))
        #expect(!page.contains("%"))
    }

    @Test(arguments: [
        ("%(code)d %(message)s", "500 boom"),
        ("100%% sure: %(explain)s", "100% sure: why"),
        ("%%(code)d", "%(code)d"),
        ("%(code)i/%(code)s/%(code)r", "500/500/500"),
        ("%(other)s stays", "%(other)s stays"),
        ("%(message)d stays", "%(message)d stays"),
        ("%(code)5d stays", "%(code)5d stays"),
        ("lone % and trailing %", "lone % and trailing %"),
        ("unclosed %(code", "unclosed %(code"),
        ("at end %(code)", "at end %(code)"),
        ("no placeholders", "no placeholders"),
        ("", ""),
        ("%(message)s%(message)s", "boomboom"),
    ])
    func percentFormatHandlesKeyedPlaceholders(format: String, expected: String) {
        #expect(percentFormat(format, code: 500, message: "boom", explain: "why") == expected)
    }

    @Test func percentFormatDoesNotReinterpretPlaceholdersInsideValues() {
        let out = percentFormat("%(message)s|%(explain)s", code: 400, message: "%(code)d", explain: "%%")
        #expect(out == "%(code)d|%%")
    }
}
