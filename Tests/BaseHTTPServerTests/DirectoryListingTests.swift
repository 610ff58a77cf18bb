import Testing
import UVLoop
@testable import BaseHTTPServer

/// An entry named `name` (its UTF-8 bytes).
func entry(_ name: String, directory: Bool = false, link: Bool = false) -> DirectoryEntry {
    DirectoryEntry(name: Array(name.utf8), isDirectory: directory, isSymbolicLink: link)
}

/// The listing of `entries` under the display path `path`, as text.
func listingText(_ entries: [DirectoryEntry], path: String = "/") -> String {
    String(decoding: directoryListingHTML(displayPath: Array(path.utf8), entries: entries), as: UTF8.self)
}

@Suite struct DirectoryListingTests {
    /// The directory behind `pythonPage`, listed in scrambled order.
    static let entries: [DirectoryEntry] = [
        entry("sub", directory: true),
        entry("café.txt"),
        entry("link", directory: true, link: true),
        entry("a&b"),
        entry("B.txt"),
        entry("My Docs", directory: true),
        entry("<script>.txt"),
        entry("alias", link: true),
        entry("100%"),
        entry("a.txt"),
    ]

    /// What Python's `list_directory` produced for the same directory and path (3.12's page,
    /// checked against its output, with the `<style>` line 3.14's adds, as 3.14's source has it).
    static let pythonPage = """
        <!DOCTYPE HTML>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <style type="text/css">
        :root {
        color-scheme: light dark;
        }
        </style>
        <title>Directory listing for /x y/&lt;b&gt;&amp;/</title>
        </head>
        <body>
        <h1>Directory listing for /x y/&lt;b&gt;&amp;/</h1>
        <hr>
        <ul>
        <li><a href="100%25">100%</a></li>
        <li><a href="%3Cscript%3E.txt">&lt;script&gt;.txt</a></li>
        <li><a href="a%26b">a&amp;b</a></li>
        <li><a href="a.txt">a.txt</a></li>
        <li><a href="alias">alias@</a></li>
        <li><a href="B.txt">B.txt</a></li>
        <li><a href="caf%C3%A9.txt">café.txt</a></li>
        <li><a href="link/">link@</a></li>
        <li><a href="My%20Docs/">My Docs/</a></li>
        <li><a href="sub/">sub/</a></li>
        </ul>
        <hr>
        </body>
        </html>

        """

    @Test func pageMatchesPython314sListDirectoryByteForByte() {
        let page = directoryListingHTML(displayPath: Array("/x y/<b>&/".utf8), entries: Self.entries)
        #expect(String(decoding: page, as: UTF8.self) == Self.pythonPage)
        #expect(page == Array(Self.pythonPage.utf8))
    }

    @Test func anEmptyDirectoryHasAnEmptyList() {
        let page = listingText([])
        #expect(page.contains("<title>Directory listing for /</title>\n</head>\n"))
        #expect(page.contains("<hr>\n<ul>\n</ul>\n<hr>\n</body>\n</html>\n"))
        #expect(page.hasSuffix("</html>\n"))
        #expect(!page.hasSuffix("\n\n"))
    }

    @Test func scriptNamesAreEscapedNotInterpreted() {
        let page = listingText([entry("<script>alert('x')</script>.txt")], path: "/<img src=x>/")
        #expect(!page.contains("<script>"))
        #expect(!page.contains("<img"))
        #expect(page.contains(">&lt;script&gt;alert('x')&lt;/script&gt;.txt</a>"))
        #expect(page.contains("href=\"%3Cscript%3Ealert%28%27x%27%29%3C/script%3E.txt\""))
        #expect(page.contains("Directory listing for /&lt;img src=x&gt;/"))
    }

    @Test(arguments: [
        ("a&b", "a%26b", "a&amp;b"),
        ("with space", "with%20space", "with space"),
        ("50%off", "50%25off", "50%off"),
        ("日本語", "%E6%97%A5%E6%9C%AC%E8%AA%9E", "日本語"),
        ("quote\"d", "quote%22d", "quote\"d"),
        ("hash#q?", "hash%23q%3F", "hash#q?"),
    ])
    func namesAreQuotedInHrefsAndEscapedInText(name: String, href: String, text: String) {
        let page = listingText([entry(name)])
        #expect(page.contains("<li><a href=\"\(href)\">\(text)</a></li>\n"))
    }

    @Test func sortingIgnoresCaseAndDoesNotDependOnInputOrder() {
        let names = ["b", "B", "a", "A", "_x", "Z", "é", "E"]
        let forward = names.map { entry($0) }
        let page1 = directoryListingHTML(displayPath: Array("/".utf8), entries: forward)
        let page2 = directoryListingHTML(displayPath: Array("/".utf8), entries: forward.reversed())
        #expect(page1 == page2)
        let text = String(decoding: page1, as: UTF8.self)
        let order = text.split(separator: "\n").filter { $0.hasPrefix("<li>") }.map { line in
            line.split(separator: ">")[2].split(separator: "<")[0]
        }
        #expect(order == ["_x", "A", "a", "B", "b", "E", "Z", "é"])
    }

    @Test func namesThatAreNotUTF8LinkWithTheirBytesAndShowAReplacementCharacter() {
        let entries = [
            DirectoryEntry(name: Array("caf".utf8) + [0xE9] + Array(".txt".utf8), isDirectory: false, isSymbolicLink: false),
            DirectoryEntry(name: Array("dir".utf8) + [0xFF], isDirectory: true, isSymbolicLink: false),
            DirectoryEntry(name: [0x3C, 0xE6, 0x97, 0x3E], isDirectory: false, isSymbolicLink: true),
        ]
        let page = listingText(entries)
        #expect(page.contains("<li><a href=\"caf%E9.txt\">caf\u{FFFD}.txt</a></li>\n"))
        #expect(page.contains("<li><a href=\"dir%FF/\">dir\u{FFFD}/</a></li>\n"))
        // A truncated sequence is one replacement character (its maximal subpart), escaped around.
        #expect(page.contains("<li><a href=\"%3C%E6%97%3E\">&lt;\u{FFFD}&gt;@</a></li>\n"))
        // The page itself is valid UTF-8: decoding it changes no byte.
        let bytes = directoryListingHTML(displayPath: Array("/".utf8), entries: entries)
        #expect(Array(String(decoding: bytes, as: UTF8.self).utf8) == bytes)
    }

    @Test func aTitleThatIsNotUTF8IsShownWithReplacementCharacters() {
        let path: [UInt8] = Array("/old/caf".utf8) + [0xE9] + Array("<&>/".utf8) + [0xC3]
        let page = String(decoding: directoryListingHTML(displayPath: path, entries: []), as: UTF8.self)
        #expect(page.contains("<title>Directory listing for /old/caf\u{FFFD}&lt;&amp;&gt;/\u{FFFD}</title>"))
        #expect(page.contains("<h1>Directory listing for /old/caf\u{FFFD}&lt;&amp;&gt;/\u{FFFD}</h1>"))
    }

    /// Text shown is what Swift's own UTF-8 decoding (one U+FFFD per maximal subpart) and
    /// `htmlEscape` make of the bytes, for random bytes biased towards the tricky ones.
    @Test func shownTextIsTheReplacementDecodingEscaped() {
        var generator = SystemRandomNumberGenerator()
        let pool: [UInt8] = [0x26, 0x3C, 0x3E, 0x61, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1,
                             0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        for _ in 0..<5_000 {
            let bytes = (0..<Int.random(in: 0...8, using: &generator)).map { _ in
                Bool.random(using: &generator) ? pool.randomElement(using: &generator)! : UInt8.random(in: 0...255, using: &generator)
            }
            var shown: [UInt8] = []
            appendHTMLText(bytes, to: &shown)
            let expected = htmlEscape(String(decoding: bytes, as: UTF8.self), quote: false)
            #expect(shown == Array(expected.utf8), "\(bytes)")
        }
    }

    /// Python 3.11's `sorted(names, key=lambda b: (os.fsdecode(b).lower(), b))`: full case
    /// mapping, a final Σ as ς, bytes that are not UTF-8 as the surrogates `surrogateescape`
    /// makes of them.
    @Test func sortingMatchesPythonsLowerOfTheDecodedName() {
        let pythonOrder: [[UInt8]] = [
            Array("_x".utf8), Array("A".utf8), Array("a".utf8), Array("aé".utf8), [0x61, 0xC3],
            Array("B".utf8), Array("b".utf8), Array("café.txt".utf8), Array("caf".utf8) + [0xE9] + Array(".txt".utf8),
            Array("E".utf8), Array("istanbul".utf8), Array("İstanbul".utf8), Array("K".utf8), Array("k".utf8),
            Array("STRASSE".utf8), Array("straße".utf8), Array("Z".utf8), Array("ẞ".utf8), Array("é".utf8),
            Array("ǅ".utf8), Array("ΟΔΟΣ".utf8), Array("ΟΔΟΣ.txt".utf8), Array("Σ".utf8), Array("ΣΑ".utf8),
            Array("日本".utf8), [0xE6, 0x97], [0xED, 0xA0, 0x80, 0x78], [0xF4, 0x90, 0x80, 0x80], [0xFF],
            Array("Ａ".utf8), Array("😀".utf8),
        ]
        let entries = pythonOrder.reversed().map { DirectoryEntry(name: $0, isDirectory: false, isSymbolicLink: false) }
        let page = directoryListingHTML(displayPath: Array("/".utf8), entries: entries)
        let hrefs = String(decoding: page, as: UTF8.self).split(separator: "\n")
            .filter { $0.hasPrefix("<li>") }.map { $0.split(separator: "\"")[1] }
        let expected = pythonOrder.map { name in
            var quoted: [UInt8] = []
            appendQuoted(name, to: &quoted)
            return String(decoding: quoted, as: UTF8.self)
        }
        #expect(hrefs.map(String.init) == expected)
        // The key of a final sigma is ς, of any other σ.
        #expect(listingSortKey(Array("ΟΔΟΣ".utf8)) == Array("οδος".utf8))
        #expect(listingSortKey(Array("ΟΔΟΣ.txt".utf8)) == Array("οδοσ.txt".utf8))
        #expect(listingSortKey(Array("ΟΔΟΣ ΑΒ".utf8)) == Array("οδος αβ".utf8))
    }

    @Test func anAllLowercaseASCIINameIsItsOwnSortKey() {
        #expect(listingSortKey(Array("report-2024.txt".utf8)) == Array("report-2024.txt".utf8))
        #expect(listingSortKey(Array("Report-2024.TXT".utf8)) == Array("report-2024.txt".utf8))
    }
}
