import Testing
@testable import BaseHTTPServer

@Suite struct HTTPDateTests {
    static let knownDates: [(Int, String)] = [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (1_445_412_480, "Wed, 21 Oct 2015 07:28:00 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
        (1_795_590_225, "Wed, 25 Nov 2026 07:03:45 GMT"),
        (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
        (4_107_542_399, "Sun, 28 Feb 2100 23:59:59 GMT"),
        (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
        (-2_208_988_800, "Mon, 01 Jan 1900 00:00:00 GMT"),
        (-2_203_891_200, "Thu, 01 Mar 1900 00:00:00 GMT"),
    ]

    @Test(arguments: knownDates)
    func formatProducesAnIMFFixdateLikeEmailUtilsFormatdate(t: Int, expected: String) {
        #expect(HTTPDate.format(t) == expected)
    }

    @Test(arguments: knownDates)
    func formatBytesAppendsTheSameASCII(t: Int, expected: String) {
        var buffer: [UInt8] = Array("Date: ".utf8)
        HTTPDate.formatBytes(t, into: &buffer)
        #expect(buffer == Array("Date: \(expected)".utf8))
        #expect(buffer.count - 6 == HTTPDate.fixdateLength)
    }

    @Test(arguments: knownDates)
    func parseReadsBackWhatFormatWrote(t: Int, text: String) {
        #expect(HTTPDate.parse(text) == t)
    }

    @Test func datesAcrossFourCenturiesRoundTrip() {
        // 1900-01-01 to 2300-01-01 covers every leap-year rule; the step walks through every
        // day of the month and every hour.
        var t = -2_208_988_800 + 45_296
        var mismatches: [Int] = []
        while t < 10_413_792_000 {
            if HTTPDate.parse(HTTPDate.format(t)) != t { mismatches.append(t) }
            t += 3 * 86_400 + 3_607
        }
        #expect(mismatches.isEmpty)
    }

    @Test(arguments: [
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 784_111_777),
        ("Sun Nov  6 08:49:37 1994", 784_111_777),
        ("Sun Nov 16 08:49:37 1994", 784_975_777),
        ("  Sun, 06 Nov 1994 08:49:37 GMT\t", 784_111_777),
        ("sun, 06 nov 1994 08:49:37 gmt", 784_111_777),
        ("Sun, 6 Nov 1994 08:49:37 GMT", 784_111_777),
        ("Thursday, 01-Jan-70 00:00:00 GMT", 0),
        ("Sunday, 01-Jan-68 00:00:00 GMT", 3_092_601_600),
        ("Tue, 29 Feb 2000 00:00:00 GMT", 951_782_400),
        // The weekday is not checked against the date, as in Python.
        ("Mon, 06 Nov 1994 08:49:37 GMT", 784_111_777),
    ])
    func parseAcceptsTheThreeHTTPDateForms(text: String, expected: Int) {
        #expect(HTTPDate.parse(text) == expected)
    }

    @Test(arguments: [
        "",
        "garbage",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 1994 08:49:37 GMT extra",
        "Sun, 06 Nov 1994 08:49:37 PST",
        "Sun, 06 Nov 1994 08:49:37 +0100",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 29 Feb 1900 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:60 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 0000 08:49:37 GMT",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 1994 GMT",
        "784111777",
        "Sun, 06 Nov 1994 08:49:37 GMT\r\nX: y",
    ])
    func parseRejectsAnythingElse(text: String) {
        #expect(HTTPDate.parse(text) == nil)
    }

    @Test(arguments: [
        (1_795_590_225, 0, "25/Nov/2026 07:03:45"),
        (1_795_590_225, 3600, "25/Nov/2026 08:03:45"),
        (1_795_590_225, -8 * 3600, "24/Nov/2026 23:03:45"),
        (0, 0, "01/Jan/1970 00:00:00"),
        (951_782_400, 19_800, "29/Feb/2000 05:30:00"),
    ])
    func logFormatMatchesLogDateTimeString(t: Int, offset: Int, expected: String) {
        #expect(HTTPDate.logFormat(t, utcOffset: offset) == expected)
    }

    @Test func logFormatInTheLocalZoneHasTheLogShape() {
        let text = HTTPDate.logFormat(1_795_590_225)
        #expect(text.count == 20)
        #expect(text.contains("/Nov/2026 "))
        #expect(text.hasSuffix(":45"))
    }

    @Test func currentTimeIsAfterThisCodeWasWritten() {
        #expect(HTTPDate.currentTime() > 1_700_000_000)
    }
}
