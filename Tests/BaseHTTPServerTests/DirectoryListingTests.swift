import Testing
@testable import BaseHTTPServer

@Suite struct DirectoryListingTests {
    /// The directory behind `pythonPage`, listed in scrambled order.
    static let entries: [DirectoryListingEntry] = [
        (name: "sub", isDirectory: true, isSymlink: false),
        (name: "café.txt", isDirectory: false, isSymlink: false),
        (name: "link", isDirectory: true, isSymlink: true),
        (name: "a&b", isDirectory: false, isSymlink: false),
        (name: "B.txt", isDirectory: false, isSymlink: false),
        (name: "My Docs", isDirectory: true, isSymlink: false),
        (name: "<script>.txt", isDirectory: false, isSymlink: false),
        (name: "alias", isDirectory: false, isSymlink: true),
        (name: "100%", isDirectory: false, isSymlink: false),
        (name: "a.txt", isDirectory: false, isSymlink: false),
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
        let page = directoryListingHTML(displayPath: "/x y/<b>&/", entries: Self.entries)
        #expect(String(decoding: page, as: UTF8.self) == Self.pythonPage)
        #expect(page == Array(Self.pythonPage.utf8))
    }

    @Test func anEmptyDirectoryHasAnEmptyList() {
        let page = String(decoding: directoryListingHTML(displayPath: "/", entries: []), as: UTF8.self)
        #expect(page.contains("<title>Directory listing for /</title>\n</head>\n"))
        #expect(page.contains("<hr>\n<ul>\n</ul>\n<hr>\n</body>\n</html>\n"))
        #expect(page.hasSuffix("</html>\n"))
        #expect(!page.hasSuffix("\n\n"))
    }

    @Test func scriptNamesAreEscapedNotInterpreted() {
        let entries: [DirectoryListingEntry] = [(name: "<script>alert('x')</script>.txt", isDirectory: false, isSymlink: false)]
        let page = String(decoding: directoryListingHTML(displayPath: "/<img src=x>/", entries: entries), as: UTF8.self)
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
        let page = String(
            decoding: directoryListingHTML(displayPath: "/", entries: [(name: name, isDirectory: false, isSymlink: false)]),
            as: UTF8.self)
        #expect(page.contains("<li><a href=\"\(href)\">\(text)</a></li>\n"))
    }

    @Test func sortingIgnoresCaseAndDoesNotDependOnInputOrder() {
        let names = ["b", "B", "a", "A", "_x", "Z", "é", "E"]
        let forward = names.map { (name: $0, isDirectory: false, isSymlink: false) }
        let page1 = directoryListingHTML(displayPath: "/", entries: forward)
        let page2 = directoryListingHTML(displayPath: "/", entries: forward.reversed())
        #expect(page1 == page2)
        let text = String(decoding: page1, as: UTF8.self)
        let order = text.split(separator: "\n").filter { $0.hasPrefix("<li>") }.map { line in
            line.split(separator: ">")[2].split(separator: "<")[0]
        }
        #expect(order == ["_x", "A", "a", "B", "b", "E", "Z", "é"])
    }
}
