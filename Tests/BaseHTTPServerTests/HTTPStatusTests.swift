import Testing
@testable import BaseHTTPServer

@Suite struct HTTPStatusTests {
    @Test(arguments: [
        (HTTPStatus.ok, 200, "OK", "Request fulfilled, document follows"),
        (.continue, 100, "Continue", "Request received, please continue"),
        (.earlyHints, 103, "Early Hints", ""),
        (.notFound, 404, "Not Found", "Nothing matches the given URI"),
        (.contentTooLarge, 413, "Content Too Large", "Content is too large"),
        (.requestEntityTooLarge, 413, "Content Too Large", "Content is too large"),
        (.uriTooLong, 414, "URI Too Long", "URI is too long"),
        (.requestURITooLong, 414, "URI Too Long", "URI is too long"),
        (.rangeNotSatisfiable, 416, "Range Not Satisfiable", "Cannot satisfy request range"),
        (.requestedRangeNotSatisfiable, 416, "Range Not Satisfiable", "Cannot satisfy request range"),
        (.imATeapot, 418, "I'm a Teapot", "Server refuses to brew coffee because it is a teapot."),
        (.misdirectedRequest, 421, "Misdirected Request", "Server is not able to produce a response"),
        (.unprocessableContent, 422, "Unprocessable Content", ""),
        (.unprocessableEntity, 422, "Unprocessable Content", ""),
        (.tooEarly, 425, "Too Early", ""),
        (
            .tooManyRequests, 429, "Too Many Requests",
            "The user has sent too many requests in a given amount of time (\"rate limiting\")"
        ),
        (
            .requestHeaderFieldsTooLarge, 431, "Request Header Fields Too Large",
            "The server is unwilling to process the request because its header fields are too large"
        ),
        (
            .unavailableForLegalReasons, 451, "Unavailable For Legal Reasons",
            "The server is denying access to the resource as a consequence of a legal demand"
        ),
        (.notImplemented, 501, "Not Implemented", "Server does not support this operation"),
        (.httpVersionNotSupported, 505, "HTTP Version Not Supported", "Cannot fulfill request"),
        (
            .networkAuthenticationRequired, 511, "Network Authentication Required",
            "The client needs to authenticate to gain network access"
        ),
    ])
    func registeredCodesHavePythonsPhraseAndExplanation(
        status: HTTPStatus, code: Int, phrase: String, explanation: String
    ) {
        #expect(status.rawValue == code)
        #expect(status.phrase == phrase)
        #expect(status.explanation == explanation)
        #expect(HTTPStatus(rawValue: code) == status)
    }

    @Test func registryMatchesPythonThreeTwelveCodeForCode() {
        let codes = HTTPStatus.registered.map(\.rawValue)
        #expect(codes == [
            100, 101, 102, 103,
            200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
            300, 301, 302, 303, 304, 305, 307, 308,
            400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416,
            417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451,
            500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
        ])
    }

    @Test func everyCodeWithAPhraseIsRegisteredAndNoOther() {
        let registered = Set(HTTPStatus.registered.map(\.rawValue))
        for code in 0...999 {
            #expect(HTTPStatus(rawValue: code).phrase.isEmpty != registered.contains(code), "code \(code)")
        }
    }

    @Test func unknownCodesHaveEmptyTextAndDescribeAsTheBareNumber() {
        let status = HTTPStatus(rawValue: 599)
        #expect(status.phrase == "")
        #expect(status.explanation == "")
        #expect(status.description == "599")
        #expect(HTTPStatus(rawValue: 599) == HTTPStatus(599))
    }

    @Test func descriptionIsCodeSpacePhrase() {
        #expect(HTTPStatus.ok.description == "200 OK")
        #expect("\(HTTPStatus.notFound)" == "404 Not Found")
    }

    @Test func defaultResponsesMirrorTheRegistry() {
        #expect(HTTPStatus.defaultResponses.count == HTTPStatus.registered.count)
        for status in HTTPStatus.registered {
            let entry = HTTPStatus.defaultResponses[status.rawValue]
            #expect(entry?.0 == status.phrase)
            #expect(entry?.1 == status.explanation)
        }
        #expect(HTTPStatus.defaultResponses[599] == nil)
    }

    @Test(arguments: [
        (100, "informational"), (199, "informational"), (200, "success"), (304, "redirection"),
        (404, "client"), (511, "server"), (99, "none"), (600, "none"),
    ])
    func classesFollowTheHundreds(code: Int, kind: String) {
        let status = HTTPStatus(rawValue: code)
        #expect(status.isInformational == (kind == "informational"))
        #expect(status.isSuccess == (kind == "success"))
        #expect(status.isRedirection == (kind == "redirection"))
        #expect(status.isClientError == (kind == "client"))
        #expect(status.isServerError == (kind == "server"))
    }
}
