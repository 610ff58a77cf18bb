import Glibc
import UVLoop

/// `SimpleHTTPRequestHandler` that also receives files (`http-server --upload`):
///
/// - `PUT /dir/name` streams the body into a temporary file in `dir` and renames it to `name`
///   once the body is complete: 201 for a new file, 204 when it replaced one. `dir` must
///   exist (else 409); a directory cannot be replaced (405).
/// - `POST` of `multipart/form-data` to a directory saves each file part under its base name,
///   never replacing a file: a taken name gets a number (`notes-1.txt`). 201 with a page that
///   lists the names used. The directory listing shows a form that does this.
///
/// Nothing partial is ever left: each file is written to a hidden temporary file in the same
/// directory (`.upload-….part`) and renamed or linked into place only when the whole body has
/// arrived; a client that goes away, a body over `maxBodySize` (413), a malformed body (400)
/// or a full disk (507) removes the temporary files. Paths that would leave the served
/// directory are refused (403) before anything is written. Bodies stream to disk through the
/// loop's thread pool, a piece at a time, under backpressure: memory stays flat whatever
/// their size. There is no size limit unless `maxBodySize` sets one.
open class UploadHTTPRequestHandler: SimpleHTTPRequestHandler {
    open override class var streamsRequestBodies: Bool { true }
    open override class var showsUploadForm: Bool { true }

    // MARK: PUT

    /// Stores the body as the file the path names.
    open override func doPUT() throws {
        let (pathPart, _) = splitQuery(path)
        guard !pathPart.hasSuffix("/") else {
            sendError(405, message: "Cannot PUT to a directory")
            return
        }
        guard let target = translatePath(pathPart), let slash = target.utf8.lastIndex(of: UInt8(ascii: "/")) else {
            sendError(403, message: "Path not allowed")
            return
        }
        let name = String(target[target.index(after: slash)...])
        guard let directory = openUploadDirectory(String(target[..<slash])) else { return }
        var existing = stat()
        let replaces = fstatat(directory.descriptor, name, &existing, AT_SYMLINK_NOFOLLOW) == 0
        if replaces && existing.st_mode & S_IFMT == S_IFDIR {
            sendError(405, message: "Cannot replace a directory")
            return
        }
        if replaces && existing.st_mode & S_IFMT != S_IFREG {
            sendError(409, message: "Only a regular file can be replaced")
            return
        }
        guard let upload = TemporaryUpload(in: directory, loop: server.loop) else {
            sendError(500, message: "Cannot create a temporary file: \(String(cString: strerror(errno)))")
            return
        }
        let response = deferResponse()
        receiveBody(into: upload, response) { [self] in
            upload.whenWritten { [self] failure in
                if let failure {
                    refuse(failure, removing: [upload], response)
                    return
                }
                upload.close { [self] failure in
                    if let failure {
                        refuse(failure, removing: [upload], response)
                    } else if let failure = upload.rename(to: name) {
                        refuse(failure, removing: [upload], response)
                    } else {
                        // The name now means the new file: no request may get the old one
                        // from the open-file cache (which also holds it as an index page).
                        server.openFileCache.removeAll()
                        sendResponse(replaces ? 204 : 201)
                        if !replaces { sendHeader("Location", pathPart) }
                        sendHeader("Content-Length", "0")
                        endHeaders()
                        response.finish()
                    }
                }
            }
        }
    }

    // MARK: POST

    /// Saves each file part of a `multipart/form-data` body in the directory the path names.
    open override func doPOST() throws {
        let (pathPart, _) = splitQuery(path)
        guard let target = translatePath(pathPart) else {
            sendError(403, message: "Path not allowed")
            return
        }
        if let info = fileStatus(target), !isDirectory(info) {
            sendError(405, message: "Files are uploaded to a directory")
            return
        }
        guard let directory = openUploadDirectory(target) else { return }
        guard let boundary = multipartBoundary(contentType: headers["Content-Type"] ?? "") else {
            sendError(415, message: "Expected multipart/form-data with a boundary")
            return
        }
        let response = deferResponse()
        let form = MultipartUpload(boundary: boundary, directory: directory, loop: server.loop)
        receiveBody(into: form, response) { [self] in
            form.finish { [self] result in
                switch result {
                case .failure(let failure):
                    refuse(failure, removing: form.uploads, response)
                case .success(let names):
                    let page = uploadResultHTML(directory: urlUnquote(pathPart), names: names)
                    sendResponse(201)
                    sendHeader("Content-Type", "text/html; charset=utf-8")
                    sendHeader("Content-Length", String(page.count))
                    endHeaders()
                    wfile.write(page)
                    response.finish()
                }
            }
        }
    }

    // MARK: Helpers

    /// Hands the body to `sink` a piece at a time, taking the next piece only once the last
    /// is written (so the server's backpressure reaches the client), then calls `end`. A
    /// failed write is answered (`refuse`); a body that stops short removes the temporary
    /// files, its answer already given by the server.
    private func receiveBody(into sink: some UploadSink, _ response: DeferredResponse,
                             then end: @escaping () -> Void) {
        readBody { [self] part in
            switch part {
            case .data(let bytes):
                sink.take(bytes)
                sink.whenWritten { [self] failure in
                    if let failure {
                        refuse(failure, removing: sink.uploads, response)
                    } else {
                        receiveBody(into: sink, response, then: end)
                    }
                }
            case .end:
                end()
            case .failed(let error):
                logError("upload of \(path.debugDescription) abandoned: \(error)")
                for upload in sink.uploads { upload.discard() }
                response.finish()
            }
        }
    }

    /// Opens the directory at `path` (a translated path) for an upload, or answers why not:
    /// 409 when it does not exist or is not a directory, 403 when it lies outside the root.
    private func openUploadDirectory(_ path: String) -> OpenFile? {
        guard let real = realPath(path.isEmpty ? "/" : path), let info = fileStatus(real), isDirectory(info) else {
            sendError(409, message: "No such directory")
            return nil
        }
        guard let inside = resolveInsideRoot(real) else {
            sendError(403, message: "Path not allowed")
            return nil
        }
        let descriptor = open(inside, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else {
            sendError(403, message: "Cannot open the directory")
            return nil
        }
        return OpenFile(adopting: descriptor)
    }

    /// Answers a failed upload (once) and removes its temporary files.
    private func refuse(_ failure: UploadFailure, removing uploads: [TemporaryUpload], _ response: DeferredResponse) {
        for upload in uploads { upload.discard() }
        guard !response.isClientGone else { return }
        logError("upload of \(path.debugDescription) refused: \(failure.message)")
        sendError(failure.status, message: failure.message)
        response.finish()
    }
}

/// Why an upload failed, and the status that says so.
struct UploadFailure: Error {
    var status: Int
    var message: String

    /// A failed write or rename: 507 when the disk (or quota) is full, else 500.
    init(writing error: Int32) {
        let full = error == ENOSPC || error == EDQUOT || error == EFBIG
        status = full ? 507 : 500
        message = String(cString: strerror(error))
    }

    init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }
}

/// Where `receiveBody` puts an upload's bytes: one file, or a form's files.
protocol UploadSink: AnyObject {
    /// Takes the next piece of the body (its writes start at once).
    func take(_ bytes: [UInt8])
    /// Calls `then` once every write so far has finished, with the first failure.
    func whenWritten(_ then: @escaping (UploadFailure?) -> Void)
    /// The temporary files so far, to remove when the upload fails.
    var uploads: [TemporaryUpload] { get }
}

/// One file being received: a hidden temporary file in the target directory, written on the
/// thread pool in order, renamed or linked into place at the end, removed on failure.
final class TemporaryUpload: UploadSink {
    private let directory: OpenFile
    private let file: File
    let temporaryName: String
    private var offset = 0
    private var writesInFlight = 0
    private var failure: UploadFailure?
    private var waiter: ((UploadFailure?) -> Void)?
    private var placed = false

    init?(in directory: OpenFile, loop: Loop) {
        var name = ""
        var descriptor: Int32 = -1
        for _ in 0..<16 where descriptor < 0 {
            name = ".upload-" + String(UInt64.random(in: 0...UInt64.max), radix: 36) + ".part"
            descriptor = openat(directory.descriptor, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
            if descriptor < 0 && errno != EEXIST { return nil }
        }
        guard descriptor >= 0 else { return nil }
        self.directory = directory
        temporaryName = name
        file = File(adopting: descriptor, loop: loop)
    }

    func take(_ bytes: [UInt8]) { write(bytes) }
    var uploads: [TemporaryUpload] { [self] }

    /// Appends `bytes` (written on the thread pool from the array itself).
    func write(_ bytes: [UInt8]) {
        guard failure == nil, !bytes.isEmpty else { return }
        let at = offset, count = bytes.count
        offset += count
        writesInFlight += 1
        file.write(bytes, at: at) { [self] result in
            didWrite(count, result)
        }
    }

    /// Appends `bytes` (copied at once; written on the thread pool).
    func write(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil, !bytes.isEmpty else { return }
        let at = offset, count = bytes.count
        offset += count
        writesInFlight += 1
        file.write(bytes, at: at) { [self] result in
            didWrite(count, result)
        }
    }

    /// A write of `count` bytes called back: keeps the first failure, and tells the waiter
    /// once none is in flight.
    private func didWrite(_ count: Int, _ result: Result<Int, UVError>) {
        writesInFlight -= 1
        switch result {
        case .success(let written) where written < count:
            // A short write: only a full disk stops a regular file short.
            if failure == nil { failure = UploadFailure(writing: ENOSPC) }
        case .failure(let error):
            if failure == nil { failure = UploadFailure(writing: -error.code) }
        default:
            break
        }
        if writesInFlight == 0, let waiter {
            self.waiter = nil
            waiter(failure)
        }
    }

    /// Calls `then` once every write so far has finished, with the first failure.
    func whenWritten(_ then: @escaping (UploadFailure?) -> Void) {
        if writesInFlight == 0 {
            then(failure)
        } else {
            waiter = then
        }
    }

    /// Closes the file once its writes are done.
    func close(_ then: @escaping (UploadFailure?) -> Void) {
        file.close { error in then(error.map { UploadFailure(writing: -$0.code) }) }
    }

    /// Renames the finished file to `name`, replacing a file of that name.
    func rename(to name: String) -> UploadFailure? {
        guard renameat(directory.descriptor, temporaryName, directory.descriptor, name) == 0 else {
            return UploadFailure(writing: errno)
        }
        placed = true
        return nil
    }

    /// Links the finished file as `name`, or as `name-1`, `name-2`, … when taken (never
    /// replacing a file), and removes the temporary name. Returns the name used.
    func link(as name: String) -> Result<String, UploadFailure> {
        let dot = name.lastIndex(of: ".").flatMap { $0 == name.startIndex ? nil : $0 }
        let stem = dot.map { String(name[..<$0]) } ?? name
        let suffix = dot.map { String(name[$0...]) } ?? ""
        for attempt in 0..<1000 {
            let candidate = attempt == 0 ? name : "\(stem)-\(attempt)\(suffix)"
            if linkat(directory.descriptor, temporaryName, directory.descriptor, candidate, 0) == 0 {
                unlinkat(directory.descriptor, temporaryName, 0)
                placed = true
                return .success(candidate)
            }
            if errno != EEXIST { return .failure(UploadFailure(writing: errno)) }
        }
        return .failure(UploadFailure(409, "No free name for \(name)"))
    }

    /// Removes the temporary file (unless it was put in place); harmless twice.
    func discard() {
        guard !placed else { return }
        placed = true
        unlinkat(directory.descriptor, temporaryName, 0)
        file.close()
    }
}

/// A `multipart/form-data` body being saved: each file part into its own `TemporaryUpload`,
/// linked into place under its base name once the whole body has arrived.
final class MultipartUpload: UploadSink {
    private var parser: MultipartParser
    private let directory: OpenFile
    private let loop: Loop
    /// Every file part so far, with the name it asked for.
    private(set) var uploads: [TemporaryUpload] = []
    private var names: [String] = []
    /// The part being received, when it is a file.
    private var current: TemporaryUpload?
    private var failure: UploadFailure?

    init(boundary: [UInt8], directory: OpenFile, loop: Loop) {
        parser = MultipartParser(boundary: boundary)
        self.directory = directory
        self.loop = loop
    }

    /// Parses the next piece of the body, starting the writes of its file data.
    func take(_ bytes: [UInt8]) {
        guard failure == nil else { return }
        do {
            try bytes.withUnsafeBytes { buffer in
                try parser.feed(buffer) { event in try handle(event, buffer) }
            }
        } catch let error as UploadFailure {
            failure = error
        } catch {
            failure = UploadFailure(400, "Malformed multipart body: \(error)")
        }
    }

    private func handle(_ event: MultipartParser.Event, _ buffer: UnsafeRawBufferPointer) throws {
        switch event {
        case .partBegin(_, let filename, _):
            current = nil
            guard let filename, !filename.isEmpty else { return }  // A form field, or no file chosen.
            guard isPlainFileName(filename) else { throw UploadFailure(400, "Bad file name \(filename.debugDescription)") }
            guard let upload = TemporaryUpload(in: directory, loop: loop) else {
                throw UploadFailure(writing: errno)
            }
            uploads.append(upload)
            names.append(filename)
            current = upload
        case .data(let range):
            current?.write(UnsafeRawBufferPointer(rebasing: buffer[range]))
        case .heldData(let bytes):
            current?.write(bytes)
        case .partEnd, .end:
            current = nil
        }
    }

    /// Calls `then` once every write so far has finished, with the first failure.
    func whenWritten(_ then: @escaping (UploadFailure?) -> Void) {
        if let failure { return then(failure) }
        var waiting = uploads.count
        guard waiting > 0 else { return then(nil) }
        var first: UploadFailure?
        for upload in uploads {
            upload.whenWritten { failure in
                first = first ?? failure
                waiting -= 1
                if waiting == 0 { then(first) }
            }
        }
    }

    /// The body has ended: checks that it was complete, closes the files and links each into
    /// place. Returns the names used, in order.
    func finish(_ then: @escaping (Result<[String], UploadFailure>) -> Void) {
        if failure == nil && !parser.isFinished {
            failure = UploadFailure(400, "Malformed multipart body: no closing boundary")
        }
        whenWritten { [self] failure in
            if let failure { return then(.failure(failure)) }
            var open = uploads.count
            guard open > 0 else { return then(.failure(UploadFailure(400, "No file in the form"))) }
            var closeFailure: UploadFailure?
            for upload in uploads {
                upload.close { [self] failure in
                    closeFailure = closeFailure ?? failure
                    open -= 1
                    guard open == 0 else { return }
                    if let closeFailure { return then(.failure(closeFailure)) }
                    var placedNames: [String] = []
                    for (upload, name) in zip(uploads, names) {
                        switch upload.link(as: name) {
                        case .success(let used): placedNames.append(used)
                        case .failure(let failure): return then(.failure(failure))
                        }
                    }
                    then(.success(placedNames))
                }
            }
        }
    }
}

/// Whether `name` can be saved as it is in the target directory: not empty, not `.` or `..`,
/// no `/`, `\` or NUL.
func isPlainFileName(_ name: String) -> Bool {
    !name.isEmpty && name != "." && name != ".."
        && !name.utf8.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") || $0 == 0 }
}

/// The page answering a form upload: the names the files were saved as, and a link back.
func uploadResultHTML(directory: String, names: [String]) -> [UInt8] {
    let title = "Uploaded to " + htmlEscape(directory, quote: false)
    var page = "<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    page += "<title>\(title)</title>\n</head>\n<body>\n<h1>\(title)</h1>\n<hr>\n<ul>\n"
    for name in names {
        page += "<li><a href=\"\(urlQuote(name))\">\(htmlEscape(name, quote: false))</a></li>\n"
    }
    page += "</ul>\n<hr>\n<p><a href=\"./\">Back to the listing</a></p>\n</body>\n</html>\n"
    return Array(page.utf8)
}
