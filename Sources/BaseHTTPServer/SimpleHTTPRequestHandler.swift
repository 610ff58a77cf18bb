import Glibc

/// Serves the files under a directory for `GET` and `HEAD`: Python's `SimpleHTTPRequestHandler`.
///
/// Python 3.12's behaviour (index pages, directory listings, `/dir` → 301 `/dir/`,
/// `Content-type` from the extension, `Last-Modified`, `If-Modified-Since` → 304), with the
/// settings Python 3.15 added (`responseHeaders`, `defaultContentType`), plus what Python
/// lacks: a single `Range` → 206 (416 when unsatisfiable); a request path that would
/// leave the directory (`..`, `%2e%2e`, an encoded slash, NUL, a symbolic link pointing
/// outside) → 404; files above `smallFileLimit` stream a chunk per loop turn, a chunk read only
/// when the client has taken most of the last, so a big download never holds up other
/// connections nor sits in memory.
///
/// The directory served is, in order: the server's `directory` when the server is a
/// `DirectoryHTTPServer`, else the class's `directory` (override it), which defaults to the
/// process's current directory.
open class SimpleHTTPRequestHandler: BaseHTTPRequestHandler {
    /// What `sendHead()` leaves for `doGET()` to write after the head: Python's file object.
    public enum Body {
        /// Bytes already in memory (a directory listing).
        case bytes([UInt8])
        /// The bytes `range` of an open file. Whoever holds the file closes it (or lets it go).
        case file(OpenFile, range: Range<Int>)
    }

    // MARK: Class-level settings. Subclasses override these.

    /// `"SimpleHTTP/0.6"`, as Python.
    open override class var serverVersion: String { "SimpleHTTP/0.6" }

    /// The directory served when the server does not say (`directory`); defaults to the
    /// process's current directory. Subclasses may override.
    open class var directory: String { currentDirectory() }

    /// The files tried, in order, when a directory is asked for (`index_pages`).
    open class var indexPages: [String] { ["index.html", "index.htm"] }

    /// Extension (with its dot) → `Content-Type`, consulted before the built-in table
    /// (`extensions_map`). The default serves compressed files as what they are.
    open class var extensionsMap: [String: String] {
        [".gz": "application/gzip", ".Z": "application/octet-stream",
         ".bz2": "application/x-bzip2", ".xz": "application/x-xz"]
    }

    /// The `Content-Type` of files whose extension neither `extensionsMap` nor the built-in
    /// table knows (`default_content_type`, Python 3.15). Subclasses may override.
    open class var defaultContentType: String { "application/octet-stream" }

    /// Header fields added to every response, in order, just before its head ends
    /// (`response_headers`, Python 3.15): files, listings, redirects, 304s and errors alike,
    /// and interim `100 Continue` heads too, as Python adds them in `end_headers()`. Empty by
    /// default. A name or value with CR, LF or NUL is refused and logged, as by `sendHeader`.
    /// Subclasses may override.
    open class var responseHeaders: [(String, String)] { [] }

    /// Files up to this size are read and sent at once; larger ones stream a chunk per loop
    /// turn under backpressure (see `FileStreamer`). Subclasses may override.
    open class var smallFileLimit: Int { 64 * 1024 }

    /// How much a streamed file reads per loop turn. Subclasses may override.
    open class var streamChunkSize: Int { 256 * 1024 }

    /// Whether directory listings carry a form that uploads files there
    /// (`UploadHTTPRequestHandler` turns it on).
    open class var showsUploadForm: Bool { false }

    // MARK: Per connection

    /// The directory this handler serves (Python's `self.directory`).
    public private(set) lazy var directory: String =
        (server as? DirectoryHTTPServer)?.directory ?? Self.directory

    /// `directory` with every symbolic link resolved: what every served path must lie under.
    private lazy var resolvedRoot: String? = realPath(directory)

    // MARK: Dispatch

    /// Serves a file or a directory listing.
    open override func doGET() throws {
        guard let body = sendHead() else { return }
        copyFile(body)
    }

    /// Like `doGET()`, without the body.
    open override func doHEAD() throws {
        if case .file(let file, _) = sendHead() { file.close() }
    }

    // MARK: Hooks. Subclasses may override these.

    /// Sends the response's status line and headers (`send_head`), and returns the body for
    /// `doGET()` to write, or nil when the response is complete (an error, a redirect, 304).
    open func sendHead() -> Body? {
        guard let path = translatePath(self.path), let real = resolveInsideRoot(path) else {
            sendError(404, message: "File not found")
            return nil
        }
        guard let info = fileStatus(real) else {
            sendError(404, message: "File not found")
            return nil
        }
        var filePath = path
        var fileReal = real
        if isDirectory(info) {
            let (pathPart, suffix) = splitQuery(self.path)
            if !pathPart.hasSuffix("/") {
                redirect(to: pathPart + "/" + suffix)
                return nil
            }
            guard let index = indexPage(in: real) else { return listDirectory(real) }
            // An index page that is a link out of the root is refused, not skipped.
            guard let indexReal = resolveInsideRoot(real + "/" + index) else {
                sendError(404, message: "File not found")
                return nil
            }
            filePath = path + index
            fileReal = indexReal
        }
        let contentType = guessType(filePath)
        guard !filePath.hasSuffix("/") else {
            sendError(404, message: "File not found")
            return nil
        }
        return sendFileHead(fileReal, contentType: contentType)
    }

    /// Maps the request path onto a file-system path under `directory` (`translate_path`):
    /// query and fragment dropped, percent-escapes decoded, dot segments resolved. Returns nil
    /// when the path would leave the directory or cannot be a file name (an encoded slash, a
    /// backslash, NUL, invalid UTF-8); the caller answers 404. Symbolic links are checked
    /// later, on the real path. Subclasses may override.
    open func translatePath(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return nil }  // "*" or an absolute URI: not a file.
        return BaseHTTPServer.translatePath(path, root: directory)
    }

    /// Sends a listing of the directory at `path` (`list_directory`): 200 with the page as the
    /// body (for `GET`; the head alone for `HEAD`), or 404 "No permission to list directory"
    /// when the directory cannot be read. Subclasses may override.
    ///
    /// Unlike Python's, it answers later: the directory is read, sorted and turned into HTML on
    /// libuv's thread pool, so a directory of 100,000 entries holds up no other connection.
    /// It defers the response (`deferResponse()`) and returns nil at once; when the page is
    /// ready, it sends the head and hands the page to `copyFile(_:)` on the loop thread, then
    /// finishes the response. So a subclass that calls `sendHead()` (or this) sees nil for a
    /// listing, as for a redirect, and must not answer again: the listing answers itself. An
    /// override may still return a `Body` for `doGET()` to write, as Python's does.
    open func listDirectory(_ path: String) -> Body? {
        let response = deferResponse()
        // Only plain values cross to the pool; the handler stays on the loop thread.
        let displayPath = percentDecode(self.path.utf8)
        let uploadForm = Self.showsUploadForm
        let sendsBody = command != "HEAD"
        server.loop.runInThreadPool({
            directoryListingPage(atPath: path, displayPath: displayPath, uploadForm: uploadForm)
        }, then: { [self] page in
            if let page {
                sendResponse(200)
                sendHeader("Content-type", "text/html; charset=utf-8")
                sendHeader("Content-Length", String(page.count))
                endHeaders()
                if sendsBody { copyFile(.bytes(page)) }
            } else {
                sendError(404, message: "No permission to list directory")
            }
            response.finish()
        })
        return nil
    }

    /// The `Content-Type` for a file (`guess_type`): `extensionsMap` by the exact extension,
    /// then by the lowercased one, then the built-in table, else `defaultContentType`.
    /// Subclasses may override.
    open func guessType(_ path: String) -> String {
        if let ext = fileExtension(of: path) {
            let map = Self.extensionsMap
            if let type = map["." + ext] ?? map["." + ext.lowercased()] { return type }
        }
        return knownMIMEType(forPath: path) ?? Self.defaultContentType
    }

    /// Adds `responseHeaders`, then ends the headers (`end_headers`).
    open override func endHeaders() {
        for (name, value) in Self.responseHeaders {
            sendHeader(name, value)
        }
        super.endHeaders()
    }

    /// Writes `body` after the head (`copyfile`): bytes at once, a small file read at once, a
    /// larger one streamed under the connection's backpressure (the response is deferred until
    /// the last chunk has been handed to the connection). Takes ownership of the file.
    open func copyFile(_ body: Body) {
        switch body {
        case .bytes(let bytes):
            wfile.write(bytes)
        case .file(let file, let range) where range.count <= Self.smallFileLimit:
            writeAtOnce(file, range)
            file.close()
        case .file(let file, let range):
            FileStreamer(handler: self, file: file, range: range, chunkSize: Self.streamChunkSize).start()
        }
    }

    // MARK: Helpers

    /// Sends the head for the regular file at `real` (200, 206, 304 or 416) and returns its
    /// body, or answers 404 when it cannot be opened or is not a regular file.
    private func sendFileHead(_ real: String, contentType: String) -> Body? {
        // `real` has no links left; O_NOFOLLOW keeps its last component from becoming one meanwhile.
        let descriptor = Glibc.open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW)
        guard descriptor >= 0 else {
            sendError(404, message: "File not found")
            return nil
        }
        let file = OpenFile(adopting: descriptor)
        var info = stat()
        // Only regular files: a FIFO or a device would hold a thread-pool thread for ever.
        guard fstat(descriptor, &info) == 0, info.st_mode & Glibc.S_IFMT == Glibc.S_IFREG else {
            file.close()
            sendError(404, message: "File not found")
            return nil
        }
        let size = Int(info.st_size)
        let modified = Int(info.st_mtim.tv_sec)
        let lastModified = dateTimeString(Double(modified))
        if let since = headers["If-Modified-Since"], headers["If-None-Match"] == nil,
           let sinceTime = HTTPDate.parse(since), modified <= sinceTime {
            file.close()
            sendResponse(304)
            endHeaders()
            return nil
        }
        var rangeHeader = headers["Range"]
        if let ifRange = headers["If-Range"], ifRange != lastModified { rangeHeader = nil }
        var range = 0..<size
        switch ByteRangeRequest.parse(rangeHeader, fileSize: size) {
        case .none:
            sendResponse(200)
        case .satisfiable(let selected):
            range = selected
            sendResponse(206)
            sendHeader("Content-Range", contentRangeValue(selected, fileSize: size))
        case .unsatisfiable:
            file.close()
            sendResponse(416)
            sendHeader("Content-Range", unsatisfiedContentRangeValue(fileSize: size))
            sendHeader("Content-Length", "0")
            endHeaders()
            return nil
        }
        sendHeader("Content-type", contentType)
        sendHeader("Content-Length", String(range.count))
        sendHeader("Last-Modified", lastModified)
        sendHeader("Accept-Ranges", "bytes")
        endHeaders()
        return .file(file, range: range)
    }

    /// Resolves every symbolic link in `path`; nil unless the result lies under the root.
    func resolveInsideRoot(_ path: String) -> String? {
        guard let root = resolvedRoot, let real = realPath(path) else { return nil }
        if root == "/" || real == root { return real }
        return real.utf8.starts(with: root.utf8) && real.utf8.dropFirst(root.utf8.count).first == UInt8(ascii: "/")
            ? real : nil
    }

    /// The first of `indexPages` that is a file in the directory `real` (a directory named
    /// `index.html` does not hide the listing).
    private func indexPage(in real: String) -> String? {
        Self.indexPages.first { name in
            fileStatus(real + "/" + name).map { !isDirectory($0) } ?? false
        }
    }

    /// 301 to `location` with an empty body. `location` is the request's own path with a `/`
    /// added: a local path (the request target never starts with `//` here, and `\` never
    /// reaches a directory), so the redirect cannot point at another host.
    private func redirect(to location: String) {
        let safe = location.hasPrefix("/") && !location.hasPrefix("//") && !location.hasPrefix("/\\")
        sendResponse(301)
        sendHeader("Location", safe ? location : "/")
        sendHeader("Content-Length", "0")
        endHeaders()
    }

    /// Reads a small file's range and writes it.
    private func writeAtOnce(_ file: OpenFile, _ range: Range<Int>) {
        var bytes = [UInt8](repeating: 0, count: range.count)
        var filled = 0
        let ok = bytes.withUnsafeMutableBytes { buffer -> Bool in
            while filled < range.count {
                let rest = UnsafeMutableRawBufferPointer(rebasing: buffer[filled...])
                guard let count = file.read(into: rest, at: range.lowerBound + filled), count > 0
                else { return false }
                filled += count
            }
            return true
        }
        wfile.write(ok ? bytes : Array(bytes[0..<filled]))
        if !ok {
            logError("read of \(path.debugDescription) ended after \(filled) of \(range.count) bytes")
            closeConnection = true
        }
    }
}

/// An `HTTPServer` that serves one directory: Python's `directory=` argument, carried by the
/// server since handler classes declare no initializer.
open class DirectoryHTTPServer: HTTPServer, @unchecked Sendable {
    /// The directory that `SimpleHTTPRequestHandler`s of this server serve.
    public let directory: String

    /// Binds `address` and listens; each connection's handler serves `directory`.
    /// - Throws: `UVError`, for example `.addressInUse`.
    public init(_ address: (host: String, port: Int),
                _ handler: SimpleHTTPRequestHandler.Type = SimpleHTTPRequestHandler.self,
                directory: String) throws {
        self.directory = directory
        try super.init(address, handler)
    }
}
