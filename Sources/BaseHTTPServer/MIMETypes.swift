/// Guesses the `Content-Type` of a file from its extension, as `SimpleHTTPRequestHandler.guess_type` does.
///
/// The extension is what Python's `posixpath.splitext` finds in the last path component (leading
/// dots do not count, so `.bashrc` has none) and is matched without regard to case. Text types
/// carry no `charset` parameter, as Python 3.12 sends them.
/// - Returns: The MIME type, or `application/octet-stream` when the extension is unknown.
func mimeType(forPath path: String) -> String {
    knownMIMEType(forPath: path) ?? defaultMIMEType
}

/// The MIME type the table gives the extension of `path` (as `mimeType(forPath:)` finds it),
/// or nil when it has none: Python's `mimetypes.guess_file_type` before the handler's
/// `default_content_type` steps in.
func knownMIMEType(forPath path: String) -> String? {
    guard let ext = fileExtension(of: path) else { return nil }
    return MIMETypeTable.byExtension[ext.lowercased()]
}

/// The type sent for files whose extension is not in the table.
let defaultMIMEType = "application/octet-stream"

/// The extension of the last component of `path` without its dot, as `posixpath.splitext` splits it.
///
/// Returns `nil` when there is none: no dot, only leading dots (`.profile`), or a trailing dot.
func fileExtension(of path: String) -> Substring? {
    let name = path.utf8.lastIndex(of: UInt8(ascii: "/")).map { path[path.index(after: $0)...] } ?? path[...]
    let stem = name.drop { $0 == "." }
    guard let dot = stem.lastIndex(of: ".") else { return nil }
    let ext = stem[stem.index(after: dot)...]
    return ext.isEmpty ? nil : ext
}

/// The extension table: Python 3.12's built-in `mimetypes` map and `extensions_map` overrides.
enum MIMETypeTable {
    /// Lowercased extension (no dot) → MIME type, built once on first use.
    ///
    /// Where Python's built-in table has an entry, its value is used (so `.js` is
    /// `text/javascript` and `.xml` is `text/xml`, whatever `/etc/mime.types` says); common web
    /// types Python only learns from the system's `mime.types` (fonts, Ogg, Markdown, …) use
    /// their IANA-registered types. `SimpleHTTPRequestHandler.extensions_map` wins over both:
    /// `.gz`, `.Z`, `.bz2` and `.xz` are served as the compressed file they are.
    static let byExtension: [String: String] = {
        var table: [String: String] = [:]
        for (type, extensions) in entries {
            for ext in extensions.split(separator: " ") {
                table[String(ext)] = type
            }
        }
        return table
    }()

    /// MIME type → space-separated lowercased extensions; each extension appears once.
    static let entries: [(String, String)] = [
        // SimpleHTTPRequestHandler.extensions_map.
        ("application/gzip", "gz"),
        ("application/octet-stream", "z bin a dll exe o obj so"),
        ("application/x-bzip2", "bz2"),
        ("application/x-xz", "xz"),
        // Compressed archives mimetypes knows through its suffix map (.tgz → .tar.gz → tar).
        ("application/x-tar", "tar tgz taz tz tbz2 txz"),
        ("image/svg+xml", "svg svgz"),

        // Text.
        ("text/html", "html htm"),
        ("text/css", "css"),
        ("text/javascript", "js mjs"),
        ("text/plain", "txt bat c h ksh pl srt text log"),
        ("text/xml", "xml"),
        ("text/csv", "csv"),
        ("text/tab-separated-values", "tsv"),
        ("text/markdown", "md markdown"),
        ("text/x-python", "py"),
        ("text/x-rst", "rst"),
        ("text/vtt", "vtt"),
        ("text/calendar", "ics"),
        ("text/richtext", "rtx"),
        ("text/x-setext", "etx"),
        ("text/x-sgml", "sgm sgml"),
        ("text/x-vcard", "vcf"),
        ("text/n3", "n3"),

        // Applications.
        ("application/json", "json"),
        ("application/ld+json", "jsonld"),
        ("application/manifest+json", "webmanifest"),
        ("application/wasm", "wasm"),
        ("application/pdf", "pdf"),
        ("application/zip", "zip"),
        ("application/xml", "xsl rdf wsdl xpdl"),
        ("application/xhtml+xml", "xhtml xht"),
        ("application/atom+xml", "atom"),
        ("application/rss+xml", "rss"),
        ("application/rtf", "rtf"),
        ("application/epub+zip", "epub"),
        ("application/postscript", "ps ai eps"),
        ("application/msword", "doc dot wiz"),
        ("application/vnd.ms-excel", "xls xlb"),
        ("application/vnd.ms-powerpoint", "ppt pot ppa pps pwz"),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
        ("application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"),
        ("application/vnd.oasis.opendocument.text", "odt"),
        ("application/vnd.oasis.opendocument.spreadsheet", "ods"),
        ("application/vnd.oasis.opendocument.presentation", "odp"),
        ("application/vnd.ms-fontobject", "eot"),
        ("application/vnd.apple.mpegurl", "m3u m3u8"),
        ("application/x-7z-compressed", "7z"),
        ("application/vnd.rar", "rar"),
        ("application/x-sh", "sh"),
        ("application/x-csh", "csh"),
        ("application/x-tcl", "tcl"),
        ("application/x-tex", "tex"),
        ("application/x-latex", "latex"),
        ("application/x-texinfo", "texi texinfo"),
        ("application/x-troff", "roff t tr"),
        ("application/x-python-code", "pyc pyo"),
        ("application/x-shockwave-flash", "swf"),
        ("application/x-pn-realaudio", "ram"),
        ("application/x-pkcs12", "p12 pfx"),
        ("application/pkcs7-mime", "p7c"),
        ("application/x-hdf5", "h5"),
        ("application/x-netcdf", "nc cdf"),
        ("application/x-cpio", "cpio"),
        ("application/x-gtar", "gtar"),
        ("application/x-ustar", "ustar"),
        ("application/x-shar", "shar"),
        ("application/x-dvi", "dvi"),
        ("message/rfc822", "eml mht mhtml nws"),

        // Images.
        ("image/png", "png"),
        ("image/jpeg", "jpg jpe jpeg"),
        ("image/gif", "gif"),
        ("image/webp", "webp"),
        ("image/avif", "avif"),
        ("image/heic", "heic"),
        ("image/heif", "heif"),
        ("image/bmp", "bmp"),
        ("image/tiff", "tif tiff"),
        ("image/vnd.microsoft.icon", "ico"),
        ("image/x-portable-anymap", "pnm"),
        ("image/x-portable-bitmap", "pbm"),
        ("image/x-portable-graymap", "pgm"),
        ("image/x-portable-pixmap", "ppm"),
        ("image/x-xbitmap", "xbm"),
        ("image/x-xpixmap", "xpm"),
        ("image/x-rgb", "rgb"),
        ("image/ief", "ief"),

        // Fonts.
        ("font/woff", "woff"),
        ("font/woff2", "woff2"),
        ("font/ttf", "ttf"),
        ("font/otf", "otf"),
        ("font/collection", "ttc"),

        // Audio.
        ("audio/mpeg", "mp3 mp2"),
        ("audio/ogg", "ogg oga"),
        ("audio/opus", "opus"),
        ("audio/flac", "flac"),
        ("audio/x-wav", "wav"),
        ("audio/aac", "aac adts loas ass"),
        ("audio/mp4", "m4a"),
        ("audio/midi", "mid midi"),
        ("audio/basic", "au snd"),
        ("audio/x-aiff", "aif aifc aiff"),
        ("audio/x-pn-realaudio", "ra"),
        ("audio/3gpp", "3gp 3gpp"),
        ("audio/3gpp2", "3g2 3gpp2"),

        // Video.
        ("video/mp4", "mp4 m4v"),
        ("video/webm", "webm"),
        ("video/ogg", "ogv"),
        ("video/mpeg", "mpeg mpg mpe m1v mpa"),
        ("video/quicktime", "mov qt"),
        ("video/x-msvideo", "avi"),
        ("video/x-matroska", "mkv"),
        ("video/x-sgi-movie", "movie"),
    ]
}
