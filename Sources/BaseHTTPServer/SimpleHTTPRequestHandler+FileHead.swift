import Glibc
import HTTPParser

/// The head of a file's response: validators (`ETag`, `Last-Modified`), preconditions
/// (RFC 9110 section 13) and byte ranges.
extension SimpleHTTPRequestHandler {
    /// Sends the head for the open `file` (200, 206, 304, 412 or 416) and returns its body,
    /// or answers 404 when it is not a regular file. Size and times come from `fstat`, taken
    /// now or earlier in this loop turn (`OpenFileCache.status(of:into:)`).
    func sendFileHead(_ file: OpenFile, contentType: String, cached: OpenFileCache.Entry?,
                      in cache: OpenFileCache) -> Body? {
        var info = stat()
        let isKnown = cached.map { cache.status(of: $0, into: &info) } ?? false
        if !isKnown {
            guard fstat(file.descriptor, &info) == 0 else {
                file.close()
                return notFound()
            }
            if let cached { cache.keep(info, for: cached) }
        }
        // Only regular files: a FIFO or a device would never end.
        guard info.st_mode & Glibc.S_IFMT == Glibc.S_IFREG else {
            file.close()
            return notFound()
        }
        let size = Int(info.st_size)
        let modified = Int(info.st_mtim.tv_sec)
        let version = Int64(info.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(info.st_mtim.tv_nsec)
        let lastModified: String
        let etag: String
        let length: String
        if let known = cached?.validators, known.modified == version, known.size == size {
            (lastModified, etag) = (known.lastModified, known.entityTag)
            length = cached?.lengthText ?? String(size)
        } else {
            lastModified = dateTimeString(Double(modified))
            etag = entityTag(info)
            length = String(size)
            cached?.validators = (version, size, lastModified, etag)
            cached?.lengthText = length
        }
        let mayBeConditional = hasConditionalFields
        switch mayBeConditional ? evaluatePreconditions(etag: etag, modified: modified) : .proceed {
        case .proceed:
            break
        case .notModified:
            file.close()
            sendResponse(304)
            sendHeader("ETag", etag)
            sendHeader("Last-Modified", lastModified)
            endHeaders()
            return nil
        case .preconditionFailed:
            file.close()
            sendResponse(412)
            sendHeader("ETag", etag)
            sendHeader("Content-Length", "0")
            endHeaders()
            return nil
        }
        var rangeHeader = mayBeConditional ? headers["Range"] : nil
        if mayBeConditional, let ifRange = headers["If-Range"],
           !ifRangeMatches(ifRange, etag: etag, lastModified: lastModified) {
            rangeHeader = nil
        }
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
        sendHeader("Content-Length", range.count == size ? length : String(range.count))
        sendHeader("Last-Modified", lastModified)
        sendHeader("ETag", etag)
        sendHeader("Accept-Ranges", "bytes")
        endHeaders()
        return .file(file, range: range)
    }

    private enum Precondition { case proceed, notModified, preconditionFailed }

    /// Whether the request has a field named `If-…` or `Range` (any case): without one, each
    /// of the six fields `evaluatePreconditions` and the range look up is absent, and the
    /// usual request skips their lookups and the making of `headers` (1,300 instructions,
    /// Scripts/callgrind --f1). Read from the request's head, which `headers` is made from.
    private var hasConditionalFields: Bool {
        withRequest(false) { request in
            guard let fields = request.head?.fields else { return false }
            return request.headBytes.withUnsafeBufferPointer { bytes in
                fields.contains { field in
                    let name = UnsafeBufferPointer(rebasing: bytes[field.name])
                    return name.count >= 3 && ASCII.equalsIgnoringCase(UnsafeBufferPointer(rebasing: name[..<3]), "if-")
                        || ASCII.equalsIgnoringCase(name, "range")
                }
            }
        }
    }

    /// RFC 9110 section 13.2.2's order: `If-Match`, else `If-Unmodified-Since` (412 when it
    /// fails); then `If-None-Match` (304 on a match), else `If-Modified-Since`.
    private func evaluatePreconditions(etag: String, modified: Int) -> Precondition {
        if let ifMatch = headers["If-Match"] {
            if !entityTagListMatches(ifMatch, etag, weak: false) { return .preconditionFailed }
        } else if let since = headers["If-Unmodified-Since"], let sinceTime = HTTPDate.parse(since),
                  modified > sinceTime {
            return .preconditionFailed
        }
        if let ifNoneMatch = headers["If-None-Match"] {
            return entityTagListMatches(ifNoneMatch, etag, weak: true) ? .notModified : .proceed
        }
        if let since = headers["If-Modified-Since"], let sinceTime = HTTPDate.parse(since),
           modified <= sinceTime {
            return .notModified
        }
        return .proceed
    }

    /// `If-Range`: an entity tag must match strongly, a date exactly (RFC 9110 section 13.1.5).
    private func ifRangeMatches(_ value: String, etag: String, lastModified: String) -> Bool {
        let value = value.trimmingASCIIWhitespace()
        if value.hasPrefix("\"") || value.hasPrefix("W/") {
            return !value.hasPrefix("W/") && value == etag
        }
        return value == lastModified
    }
}
