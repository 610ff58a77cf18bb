/// An HTTP status code with the reason phrase and explanation Python 3.12's `http.HTTPStatus` gives it.
///
/// Any integer is a valid status: codes outside the registry simply have an empty `phrase` and
/// `explanation`. The registered codes are available as static members spelled the Swift way
/// (`NOT_FOUND` → `.notFound`), and `registered` lists them in ascending order.
public struct HTTPStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The numeric status code, for example `404`.
    public let rawValue: Int

    /// Wraps any numeric code, registered or not.
    public init(rawValue: Int) {
        self.rawValue = rawValue
    }

    /// Wraps any numeric code, registered or not.
    public init(_ code: Int) {
        self.rawValue = code
    }

    /// The short reason phrase, as Python's `HTTPStatus.phrase` (`"Not Found"`); empty when unknown.
    public var phrase: String {
        HTTPStatus.phraseAndExplanation(rawValue)?.phrase ?? ""
    }

    /// The longer explanation, as Python's `HTTPStatus.description`; empty when unknown or when
    /// Python has none for this code.
    public var explanation: String {
        HTTPStatus.phraseAndExplanation(rawValue)?.explanation ?? ""
    }

    /// The code followed by its phrase, such as `"200 OK"`; just the code when the phrase is unknown.
    public var description: String {
        let phrase = self.phrase
        return phrase.isEmpty ? String(rawValue) : "\(rawValue) \(phrase)"
    }

    /// Whether the code is in the 1xx range.
    public var isInformational: Bool { (100...199).contains(rawValue) }
    /// Whether the code is in the 2xx range.
    public var isSuccess: Bool { (200...299).contains(rawValue) }
    /// Whether the code is in the 3xx range.
    public var isRedirection: Bool { (300...399).contains(rawValue) }
    /// Whether the code is in the 4xx range.
    public var isClientError: Bool { (400...499).contains(rawValue) }
    /// Whether the code is in the 5xx range.
    public var isServerError: Bool { (500...599).contains(rawValue) }

    // MARK: Informational

    /// 100 Continue.
    public static let `continue` = HTTPStatus(rawValue: 100)
    /// 101 Switching Protocols.
    public static let switchingProtocols = HTTPStatus(rawValue: 101)
    /// 102 Processing.
    public static let processing = HTTPStatus(rawValue: 102)
    /// 103 Early Hints.
    public static let earlyHints = HTTPStatus(rawValue: 103)

    // MARK: Success

    /// 200 OK.
    public static let ok = HTTPStatus(rawValue: 200)
    /// 201 Created.
    public static let created = HTTPStatus(rawValue: 201)
    /// 202 Accepted.
    public static let accepted = HTTPStatus(rawValue: 202)
    /// 203 Non-Authoritative Information.
    public static let nonAuthoritativeInformation = HTTPStatus(rawValue: 203)
    /// 204 No Content.
    public static let noContent = HTTPStatus(rawValue: 204)
    /// 205 Reset Content.
    public static let resetContent = HTTPStatus(rawValue: 205)
    /// 206 Partial Content.
    public static let partialContent = HTTPStatus(rawValue: 206)
    /// 207 Multi-Status.
    public static let multiStatus = HTTPStatus(rawValue: 207)
    /// 208 Already Reported.
    public static let alreadyReported = HTTPStatus(rawValue: 208)
    /// 226 IM Used.
    public static let imUsed = HTTPStatus(rawValue: 226)

    // MARK: Redirection

    /// 300 Multiple Choices.
    public static let multipleChoices = HTTPStatus(rawValue: 300)
    /// 301 Moved Permanently.
    public static let movedPermanently = HTTPStatus(rawValue: 301)
    /// 302 Found.
    public static let found = HTTPStatus(rawValue: 302)
    /// 303 See Other.
    public static let seeOther = HTTPStatus(rawValue: 303)
    /// 304 Not Modified.
    public static let notModified = HTTPStatus(rawValue: 304)
    /// 305 Use Proxy.
    public static let useProxy = HTTPStatus(rawValue: 305)
    /// 307 Temporary Redirect.
    public static let temporaryRedirect = HTTPStatus(rawValue: 307)
    /// 308 Permanent Redirect.
    public static let permanentRedirect = HTTPStatus(rawValue: 308)

    // MARK: Client error

    /// 400 Bad Request.
    public static let badRequest = HTTPStatus(rawValue: 400)
    /// 401 Unauthorized.
    public static let unauthorized = HTTPStatus(rawValue: 401)
    /// 402 Payment Required.
    public static let paymentRequired = HTTPStatus(rawValue: 402)
    /// 403 Forbidden.
    public static let forbidden = HTTPStatus(rawValue: 403)
    /// 404 Not Found.
    public static let notFound = HTTPStatus(rawValue: 404)
    /// 405 Method Not Allowed.
    public static let methodNotAllowed = HTTPStatus(rawValue: 405)
    /// 406 Not Acceptable.
    public static let notAcceptable = HTTPStatus(rawValue: 406)
    /// 407 Proxy Authentication Required.
    public static let proxyAuthenticationRequired = HTTPStatus(rawValue: 407)
    /// 408 Request Timeout.
    public static let requestTimeout = HTTPStatus(rawValue: 408)
    /// 409 Conflict.
    public static let conflict = HTTPStatus(rawValue: 409)
    /// 410 Gone.
    public static let gone = HTTPStatus(rawValue: 410)
    /// 411 Length Required.
    public static let lengthRequired = HTTPStatus(rawValue: 411)
    /// 412 Precondition Failed.
    public static let preconditionFailed = HTTPStatus(rawValue: 412)
    /// 413 Content Too Large (RFC 9110's name; Python 3.13's `CONTENT_TOO_LARGE`).
    public static let contentTooLarge = HTTPStatus(rawValue: 413)
    /// 413 under its older name (`REQUEST_ENTITY_TOO_LARGE`).
    public static let requestEntityTooLarge = contentTooLarge
    /// 414 URI Too Long (RFC 9110's name; Python 3.13's `URI_TOO_LONG`).
    public static let uriTooLong = HTTPStatus(rawValue: 414)
    /// 414 under its older name (`REQUEST_URI_TOO_LONG`).
    public static let requestURITooLong = uriTooLong
    /// 415 Unsupported Media Type.
    public static let unsupportedMediaType = HTTPStatus(rawValue: 415)
    /// 416 Range Not Satisfiable (RFC 9110's name; Python 3.13's `RANGE_NOT_SATISFIABLE`).
    public static let rangeNotSatisfiable = HTTPStatus(rawValue: 416)
    /// 416 under its older name (`REQUESTED_RANGE_NOT_SATISFIABLE`).
    public static let requestedRangeNotSatisfiable = rangeNotSatisfiable
    /// 417 Expectation Failed.
    public static let expectationFailed = HTTPStatus(rawValue: 417)
    /// 418 I'm a Teapot.
    public static let imATeapot = HTTPStatus(rawValue: 418)
    /// 421 Misdirected Request.
    public static let misdirectedRequest = HTTPStatus(rawValue: 421)
    /// 422 Unprocessable Content (RFC 9110's name; Python 3.13's `UNPROCESSABLE_CONTENT`).
    public static let unprocessableContent = HTTPStatus(rawValue: 422)
    /// 422 under its older name (`UNPROCESSABLE_ENTITY`).
    public static let unprocessableEntity = unprocessableContent
    /// 423 Locked.
    public static let locked = HTTPStatus(rawValue: 423)
    /// 424 Failed Dependency.
    public static let failedDependency = HTTPStatus(rawValue: 424)
    /// 425 Too Early.
    public static let tooEarly = HTTPStatus(rawValue: 425)
    /// 426 Upgrade Required.
    public static let upgradeRequired = HTTPStatus(rawValue: 426)
    /// 428 Precondition Required.
    public static let preconditionRequired = HTTPStatus(rawValue: 428)
    /// 429 Too Many Requests.
    public static let tooManyRequests = HTTPStatus(rawValue: 429)
    /// 431 Request Header Fields Too Large.
    public static let requestHeaderFieldsTooLarge = HTTPStatus(rawValue: 431)
    /// 451 Unavailable For Legal Reasons.
    public static let unavailableForLegalReasons = HTTPStatus(rawValue: 451)

    // MARK: Server error

    /// 500 Internal Server Error.
    public static let internalServerError = HTTPStatus(rawValue: 500)
    /// 501 Not Implemented.
    public static let notImplemented = HTTPStatus(rawValue: 501)
    /// 502 Bad Gateway.
    public static let badGateway = HTTPStatus(rawValue: 502)
    /// 503 Service Unavailable.
    public static let serviceUnavailable = HTTPStatus(rawValue: 503)
    /// 504 Gateway Timeout.
    public static let gatewayTimeout = HTTPStatus(rawValue: 504)
    /// 505 HTTP Version Not Supported.
    public static let httpVersionNotSupported = HTTPStatus(rawValue: 505)
    /// 506 Variant Also Negotiates.
    public static let variantAlsoNegotiates = HTTPStatus(rawValue: 506)
    /// 507 Insufficient Storage.
    public static let insufficientStorage = HTTPStatus(rawValue: 507)
    /// 508 Loop Detected.
    public static let loopDetected = HTTPStatus(rawValue: 508)
    /// 510 Not Extended.
    public static let notExtended = HTTPStatus(rawValue: 510)
    /// 511 Network Authentication Required.
    public static let networkAuthenticationRequired = HTTPStatus(rawValue: 511)

    /// Every status Python 3.12's `HTTPStatus` defines, in ascending order of code.
    public static let registered: [HTTPStatus] = [
        .continue, .switchingProtocols, .processing, .earlyHints,
        .ok, .created, .accepted, .nonAuthoritativeInformation, .noContent, .resetContent,
        .partialContent, .multiStatus, .alreadyReported, .imUsed,
        .multipleChoices, .movedPermanently, .found, .seeOther, .notModified, .useProxy,
        .temporaryRedirect, .permanentRedirect,
        .badRequest, .unauthorized, .paymentRequired, .forbidden, .notFound, .methodNotAllowed,
        .notAcceptable, .proxyAuthenticationRequired, .requestTimeout, .conflict, .gone,
        .lengthRequired, .preconditionFailed, .requestEntityTooLarge, .requestURITooLong,
        .unsupportedMediaType, .requestedRangeNotSatisfiable, .expectationFailed, .imATeapot,
        .misdirectedRequest, .unprocessableEntity, .locked, .failedDependency, .tooEarly,
        .upgradeRequired, .preconditionRequired, .tooManyRequests, .requestHeaderFieldsTooLarge,
        .unavailableForLegalReasons,
        .internalServerError, .notImplemented, .badGateway, .serviceUnavailable, .gatewayTimeout,
        .httpVersionNotSupported, .variantAlsoNegotiates, .insufficientStorage, .loopDetected,
        .notExtended, .networkAuthenticationRequired,
    ]

    /// The table behind `BaseHTTPRequestHandler.responses`: code → (phrase, explanation), as
    /// Python builds it from `HTTPStatus`.
    public static let defaultResponses: [Int: (String, String)] = {
        var table: [Int: (String, String)] = [:]
        table.reserveCapacity(registered.count)
        for status in registered {
            table[status.rawValue] = (status.phrase, status.explanation)
        }
        return table
    }()

    /// Looks up the phrase and explanation of a registered code; a `switch`, so no table is built.
    private static func phraseAndExplanation(_ code: Int) -> (phrase: String, explanation: String)? {
        switch code {
        case 100: ("Continue", "Request received, please continue")
        case 101: ("Switching Protocols", "Switching to new protocol; obey Upgrade header")
        case 102: ("Processing", "")
        case 103: ("Early Hints", "")
        case 200: ("OK", "Request fulfilled, document follows")
        case 201: ("Created", "Document created, URL follows")
        case 202: ("Accepted", "Request accepted, processing continues off-line")
        case 203: ("Non-Authoritative Information", "Request fulfilled from cache")
        case 204: ("No Content", "Request fulfilled, nothing follows")
        case 205: ("Reset Content", "Clear input form for further input")
        case 206: ("Partial Content", "Partial content follows")
        case 207: ("Multi-Status", "")
        case 208: ("Already Reported", "")
        case 226: ("IM Used", "")
        case 300: ("Multiple Choices", "Object has several resources -- see URI list")
        case 301: ("Moved Permanently", "Object moved permanently -- see URI list")
        case 302: ("Found", "Object moved temporarily -- see URI list")
        case 303: ("See Other", "Object moved -- see Method and URL list")
        case 304: ("Not Modified", "Document has not changed since given time")
        case 305: ("Use Proxy", "You must use proxy specified in Location to access this resource")
        case 307: ("Temporary Redirect", "Object moved temporarily -- see URI list")
        case 308: ("Permanent Redirect", "Object moved permanently -- see URI list")
        case 400: ("Bad Request", "Bad request syntax or unsupported method")
        case 401: ("Unauthorized", "No permission -- see authorization schemes")
        case 402: ("Payment Required", "No payment -- see charging schemes")
        case 403: ("Forbidden", "Request forbidden -- authorization will not help")
        case 404: ("Not Found", "Nothing matches the given URI")
        case 405: ("Method Not Allowed", "Specified method is invalid for this resource")
        case 406: ("Not Acceptable", "URI not available in preferred format")
        case 407: ("Proxy Authentication Required", "You must authenticate with this proxy before proceeding")
        case 408: ("Request Timeout", "Request timed out; try again later")
        case 409: ("Conflict", "Request conflict")
        case 410: ("Gone", "URI no longer exists and has been permanently removed")
        case 411: ("Length Required", "Client must specify Content-Length")
        case 412: ("Precondition Failed", "Precondition in headers is false")
        case 413: ("Content Too Large", "Content is too large")
        case 414: ("URI Too Long", "URI is too long")
        case 415: ("Unsupported Media Type", "Entity body in unsupported format")
        case 416: ("Range Not Satisfiable", "Cannot satisfy request range")
        case 417: ("Expectation Failed", "Expect condition could not be satisfied")
        case 418: ("I'm a Teapot", "Server refuses to brew coffee because it is a teapot.")
        case 421: ("Misdirected Request", "Server is not able to produce a response")
        case 422: ("Unprocessable Content", "")
        case 423: ("Locked", "")
        case 424: ("Failed Dependency", "")
        case 425: ("Too Early", "")
        case 426: ("Upgrade Required", "")
        case 428: ("Precondition Required", "The origin server requires the request to be conditional")
        case 429: (
            "Too Many Requests",
            "The user has sent too many requests in a given amount of time (\"rate limiting\")"
        )
        case 431: (
            "Request Header Fields Too Large",
            "The server is unwilling to process the request because its header fields are too large"
        )
        case 451: (
            "Unavailable For Legal Reasons",
            "The server is denying access to the resource as a consequence of a legal demand"
        )
        case 500: ("Internal Server Error", "Server got itself in trouble")
        case 501: ("Not Implemented", "Server does not support this operation")
        case 502: ("Bad Gateway", "Invalid responses from another server/proxy")
        case 503: ("Service Unavailable", "The server cannot process the request due to a high load")
        case 504: ("Gateway Timeout", "The gateway server did not receive a timely response")
        case 505: ("HTTP Version Not Supported", "Cannot fulfill request")
        case 506: ("Variant Also Negotiates", "")
        case 507: ("Insufficient Storage", "")
        case 508: ("Loop Detected", "")
        case 510: ("Not Extended", "")
        case 511: ("Network Authentication Required", "The client needs to authenticate to gain network access")
        default: nil
        }
    }
}
