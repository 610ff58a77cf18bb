import Glibc
import UVLoop

/// Serves the files under a directory for `GET` and `HEAD`: Python's `SimpleHTTPRequestHandler`.
///
/// Python 3.12's behaviour (index pages, directory listings, `/dir` → 301 `/dir/`,
/// `Content-type` from the extension, `Last-Modified`, `If-Modified-Since` → 304), with the
/// settings Python 3.15 added (`responseHeaders`, `defaultContentType`), plus what Python
/// lacks: a single `Range` → 206 (416 when unsatisfiable); a request path that would
/// leave the directory (`..`, `%2e%2e`, an encoded slash, NUL, a symbolic link pointing
/// outside) → 404; `ETag`s, with `If-None-Match` → 304, `If-Match` and
/// `If-Unmodified-Since` → 412, and `If-Range` by tag or date; names that are not UTF-8
/// (`caf%E9.txt`) served from their percent-encoded bytes.
///
/// Files up to `smallFileLimit` are read straight into the response and leave with its head
/// in one write. Larger ones go with `sendfile(2)` on plain TCP (from the page cache to the
/// socket, the head in the same segment) or a chunk per loop turn where the transport must
/// see the bytes, under backpressure either way: a big download never holds up other
/// connections nor sits in memory (see `FileStreamer`).
///
/// Names are resolved under the directory with one `openat2(RESOLVE_BENEATH)` where the
/// kernel has it (else by `realpath` and a comparison), and the file stays open for later
/// requests for up to `configuration.openFileCacheValidity` (see `OpenFileCache`); its size,
/// time and tag are read from the open file once per loop turn, so an edit is seen by the
/// next request the loop reads.
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

    /// Files up to this size are read into the response and sent with its head in one
    /// write; larger ones go with `sendfile` where the transport can, else a chunk per loop
    /// turn, under backpressure (see `FileStreamer`). Subclasses may override.
    open class var smallFileLimit: Int { 16 * 1024 }

    /// How much a streamed file reads per loop turn. Subclasses may override.
    open class var streamChunkSize: Int { 256 * 1024 }

    /// Whether directory listings carry a form that uploads files there
    /// (`UploadHTTPRequestHandler` turns it on).
    open class var showsUploadForm: Bool { false }

    // MARK: Per connection

    /// The directory this handler serves (Python's `self.directory`).
    public private(set) lazy var directory: String =
        (server as? DirectoryHTTPServer)?.directory ?? Self.directory

    /// The directory `sendHead()` is about to list when its path is not UTF-8: the lossy
    /// String `listDirectory(_:)` is given, and the bytes it stands for.
    private var listingTarget: (path: String, bytes: [UInt8])?

    /// `directory` with every symbolic link resolved: what every served path must lie under.
    lazy var resolvedRoot: [UInt8]? = resolvedPath(Array(directory.utf8))

    /// `directory` as `translatePath(_:)` joins request paths to it (`rootDirectoryPrefix`).
    private lazy var translationRoot = String(Substring(rootDirectoryPrefix(directory)))

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
        guard let location = fileSystemPath() else { return notFound() }
        let cache = server.openFileCache
        let now = server.clockNow
        let validity = UInt64(max(server.configuration.openFileCacheValidity, 0) * 1000)
        if validity > 0, let entry = cache.entry(for: location, now: now, validity: validity) {
            return sendFileHead(entry.file, contentType: entry.contentType, cached: entry, in: cache)
        }
        let target = location.bytes
        guard case .opened(var file) = openUnderRoot(target) else { return notFound() }
        var info = stat()
        guard fstat(file.descriptor, &info) == 0 else { return notFound() }
        var contentPath = target
        if isDirectory(info) {
            let (pathPart, suffix) = splitQuery(self.path)
            if !pathPart.hasSuffix("/") {
                redirect(to: pathPart + "/" + suffix)
                return nil
            }
            switch openIndexPage(in: target) {
            case .opened(let index, let name):
                file = index
                contentPath = target + name
            case .missing:
                // A name that is not UTF-8 reaches the listing through `listingTarget`.
                let path = String(decoding: target, as: UTF8.self)
                if !path.utf8.elementsEqual(target) { listingTarget = (path, target) }
                return listDirectory(path)
            case .refused:
                // An index page that is a link out of the root is refused, not skipped.
                return notFound()
            }
        } else if target.last == UInt8(ascii: "/") {
            return notFound()
        }
        let contentType = guessType(String(decoding: contentPath, as: UTF8.self))
        guard validity > 0 else { return sendFileHead(file, contentType: contentType, cached: nil, in: cache) }
        let entry = cache.insert(file, contentType: contentType, for: .bytes(target), now: now, validity: validity)
        if contentPath == target { cache.keep(info, for: entry) }  // An index page has a status of its own.
        return sendFileHead(file, contentType: contentType, cached: entry, in: cache)
    }

    /// Maps the request path onto a file-system path under `directory` (`translate_path`):
    /// query and fragment dropped, percent-escapes decoded, dot segments resolved. Returns nil
    /// when the path would leave the directory or cannot be a file name (an encoded slash, a
    /// backslash, NUL, invalid UTF-8); the caller answers 404. Symbolic links are checked
    /// later, on the real path. Subclasses may override.
    open func translatePath(_ path: String) -> String? {
        guard hasSlashPrefix(path, count: 1) else { return nil }  // "*" or an absolute URI: not a file.
        return BaseHTTPServer.translatePath(path, rootPrefix: translationRoot)
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
        // `path` as bytes: those of the directory `sendHead()` found when a String could not
        // hold its name.
        let directory = listingTarget.flatMap { $0.path == path ? $0.bytes : nil } ?? Array(path.utf8)
        listingTarget = nil
        server.loop.runInThreadPool({
            directoryListingPage(atPath: directory, displayPath: displayPath, uploadForm: uploadForm)
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

    /// Answers 404 "File not found"; returns nil for `sendHead()` to return.
    func notFound() -> Body? {
        sendError(404, message: "File not found")
        return nil
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

    /// Reads a small file's range and writes it: straight into the response where it can.
    private func writeAtOnce(_ file: OpenFile, _ range: Range<Int>) {
        var filled = 0
        var failed = false
        while filled < range.count {
            guard let count = writeBody(reading: file, at: range.lowerBound + filled, count: range.count - filled)
            else {
                failed = !writeThroughArray(file, range.lowerBound + filled ..< range.upperBound)
                break
            }
            guard count > 0 else {
                failed = true
                break
            }
            filled += count
        }
        if failed {
            logError("read of \(path.debugDescription) ended before \(range.count) bytes")
            closeConnection = true
        }
    }

    /// Reads `range` into an array and writes it (a response framed otherwise than by its
    /// length); false when the file ended or failed first.
    private func writeThroughArray(_ file: OpenFile, _ range: Range<Int>) -> Bool {
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
        return ok
    }
}

/// An `HTTPServer` that serves one directory: Python's `directory=` argument, carried by the
/// server since handler classes declare no initializer.
open class DirectoryHTTPServer: HTTPServer, @unchecked Sendable {
    /// The directory that `SimpleHTTPRequestHandler`s of this server serve.
    public let directory: String

    /// Binds `address` and listens; each connection's handler serves `directory`, over HTTPS
    /// when `tls` is given.
    /// - Throws: `TLSError` (a certificate or key that cannot be used); `UVError`, for
    ///   example `.addressInUse`.
    public init(_ address: (host: String, port: Int),
                _ handler: SimpleHTTPRequestHandler.Type = SimpleHTTPRequestHandler.self,
                directory: String, tls: TLSConfiguration? = nil) throws {
        self.directory = directory
        try super.init(address, handler, tls: tls)
    }
}
