/// One directory entry as `directoryListingHTML` needs it.
///
/// `isDirectory` follows symbolic links (Python's `os.path.isdir`); `isSymlink` does not
/// (`os.path.islink`). A link to a directory therefore has both set.
typealias DirectoryListingEntry = (name: String, isDirectory: Bool, isSymlink: Bool)

/// Builds the HTML page Python 3.14's `SimpleHTTPRequestHandler.list_directory` sends, as UTF-8 bytes.
///
/// Python 3.14 (gh-123430) added the `<style>` that declares `color-scheme: light dark`, so
/// browsers show the page in the reader's light or dark scheme; otherwise the page is 3.12's.
///
/// Entries are sorted by lowercased name (code point order, ties broken by the original name so
/// the page does not depend on the order the file system returned). A directory gets a trailing
/// `/` in its link and its displayed name; a symbolic link gets `@` on its displayed name
/// instead, while a link to a directory still links with `/`, exactly as Python does. Links are
/// percent-encoded with `urlQuote`, and names and the title are HTML-escaped without quote
/// escaping, as Python does, so `<script>` in a file name is inert.
/// - Parameters:
///   - displayPath: The request path already percent-decoded by the caller (Python's
///     `unquote(self.path)`); it is HTML-escaped here.
///   - entries: The directory's entries, in any order.
///   - uploadForm: Adds a form that uploads files to this directory (`multipart/form-data`
///     `POST` to the page's own URL), for `UploadHTTPRequestHandler`.
/// - Returns: The page; send it as `text/html; charset=utf-8` with its `Content-Length`.
func directoryListingHTML(displayPath: String, entries: [DirectoryListingEntry], uploadForm: Bool = false) -> [UInt8] {
    let title = "Directory listing for " + htmlEscape(displayPath, quote: false)
    var page: [UInt8] = []
    page.reserveCapacity(256 + entries.count * 64)
    func line(_ text: String) {
        page.append(contentsOf: text.utf8)
        page.append(UInt8(ascii: "\n"))
    }
    line("<!DOCTYPE HTML>")
    line("<html lang=\"en\">")
    line("<head>")
    line("<meta charset=\"utf-8\">")
    line("<style type=\"text/css\">\n:root {\ncolor-scheme: light dark;\n}\n</style>")
    line("<title>\(title)</title>\n</head>")
    line("<body>\n<h1>\(title)</h1>")
    line("<hr>\n<ul>")
    for entry in sortedForListing(entries) {
        var linkName = entry.name
        var displayName = entry.name
        if entry.isDirectory {
            linkName += "/"
            displayName += "/"
        }
        if entry.isSymlink {
            displayName = entry.name + "@"
        }
        line("<li><a href=\"\(urlQuote(linkName))\">\(htmlEscape(displayName, quote: false))</a></li>")
    }
    line("</ul>\n<hr>")
    if uploadForm {
        line("<form method=\"post\" enctype=\"multipart/form-data\">")
        line("<input type=\"file\" name=\"file\" multiple required>")
        line("<input type=\"submit\" value=\"Upload\">\n</form>\n<hr>")
    }
    line("</body>\n</html>\n")
    page.removeLast()  // Python joins the parts with "\n"; the last part brings its own.
    return page
}

/// Orders entries as Python's `list.sort(key=lambda a: a.lower())`, deterministically.
private func sortedForListing(_ entries: [DirectoryListingEntry]) -> [DirectoryListingEntry] {
    let keyed = entries.map { entry in
        (key: Array(entry.name.lowercased().unicodeScalars.map(\.value)),
         tieBreak: Array(entry.name.unicodeScalars.map(\.value)),
         entry: entry)
    }
    return keyed.sorted { a, b in
        if a.key != b.key { return a.key.lexicographicallyPrecedes(b.key) }
        return a.tieBreak.lexicographicallyPrecedes(b.tieBreak)
    }.map(\.entry)
}
