import Testing
@testable import BaseHTTPServer

@Suite struct MIMETypesTests {
    @Test(arguments: [
        ("index.html", "text/html"),
        ("page.htm", "text/html"),
        ("style.css", "text/css"),
        ("app.js", "text/javascript"),
        ("module.mjs", "text/javascript"),
        ("data.json", "application/json"),
        ("notes.txt", "text/plain"),
        ("feed.xml", "text/xml"),
        ("logo.svg", "image/svg+xml"),
        ("a.png", "image/png"),
        ("a.jpg", "image/jpeg"),
        ("a.jpeg", "image/jpeg"),
        ("a.gif", "image/gif"),
        ("a.webp", "image/webp"),
        ("favicon.ico", "image/vnd.microsoft.icon"),
        ("a.avif", "image/avif"),
        ("doc.pdf", "application/pdf"),
        ("a.zip", "application/zip"),
        ("a.tar", "application/x-tar"),
        ("a.wasm", "application/wasm"),
        ("a.mp4", "video/mp4"),
        ("a.webm", "video/webm"),
        ("a.mp3", "audio/mpeg"),
        ("a.ogg", "audio/ogg"),
        ("a.wav", "audio/x-wav"),
        ("a.woff", "font/woff"),
        ("a.woff2", "font/woff2"),
        ("a.ttf", "font/ttf"),
        ("a.otf", "font/otf"),
        ("a.csv", "text/csv"),
        ("README.md", "text/markdown"),
        ("script.py", "text/x-python"),
        ("run.sh", "application/x-sh"),
        ("site.webmanifest", "application/manifest+json"),
    ])
    func commonWebFilesGetPythonsTypes(path: String, expected: String) {
        #expect(mimeType(forPath: path) == expected)
    }

    @Test(arguments: [
        ("a.gz", "application/gzip"),
        ("a.tar.gz", "application/gzip"),
        ("a.Z", "application/octet-stream"),
        ("a.z", "application/octet-stream"),
        ("a.bz2", "application/x-bzip2"),
        ("a.tar.xz", "application/x-xz"),
        ("a.tgz", "application/x-tar"),
        ("a.svgz", "image/svg+xml"),
    ])
    func extensionsMapOverridesWin(path: String, expected: String) {
        #expect(mimeType(forPath: path) == expected)
    }

    @Test(arguments: [
        ("INDEX.HTML", "text/html"),
        ("Photo.JPG", "image/jpeg"),
        ("archive.GZ", "application/gzip"),
        ("/srv/www/dir.d/file.CsS", "text/css"),
    ])
    func extensionsMatchWithoutRegardToCase(path: String, expected: String) {
        #expect(mimeType(forPath: path) == expected)
    }

    @Test(arguments: [
        "noextension",
        "file.unknownext",
        ".bashrc",
        "..hidden",
        "trailing.",
        "/srv/www/dir.html/",
        "/srv/www/dir.html/file",
        "",
        "a.ts",
    ])
    func unknownOrMissingExtensionsAreOctetStream(path: String) {
        #expect(mimeType(forPath: path) == "application/octet-stream")
    }

    @Test(arguments: [
        ("a.txt", "txt"), ("a.tar.gz", "gz"), (".bashrc", nil), ("..a.b", "b"), ("x/.y.z", "z"),
        ("d.x/file", nil), ("file.", nil), ("plain", nil),
    ] as [(String, String?)])
    func fileExtensionSplitsLikeSplitext(path: String, expected: String?) {
        #expect(fileExtension(of: path).map(String.init) == expected)
    }

    @Test func theTableListsEachExtensionOnceInLowercase() {
        var seen: Set<String> = []
        for (type, extensions) in MIMETypeTable.entries {
            #expect(!type.contains(";"), "\(type) has parameters")
            for ext in extensions.split(separator: " ") {
                #expect(seen.insert(String(ext)).inserted, "\(ext) listed twice")
                #expect(ext == ext.lowercased())
            }
        }
        #expect(MIMETypeTable.byExtension.count == seen.count)
    }
}
