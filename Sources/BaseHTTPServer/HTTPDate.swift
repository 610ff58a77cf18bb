#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Formats and parses the date forms HTTP and Python's `http.server` use, on whole Unix seconds.
///
/// The calendar arithmetic is done here (proleptic Gregorian, no leap seconds), so formatting
/// and parsing in GMT never depend on the process's time zone. Only `logFormat(_:)` reads the
/// local zone, as Python's `log_date_time_string` does.
enum HTTPDate {
    /// The length of an IMF-fixdate for years 0–9999: `"Sun, 06 Nov 1994 08:49:37 GMT"`.
    static let fixdateLength = 29

    /// The current time in whole seconds since the Unix epoch.
    static func currentTime() -> Int {
        Int(time(nil))
    }

    /// Formats `t` as an IMF-fixdate, like Python's `email.utils.formatdate(t, usegmt=True)`.
    ///
    /// This is the value of the `Date` and `Last-Modified` headers, and what
    /// `BaseHTTPRequestHandler.date_time_string` returns.
    static func format(_ t: Int) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fixdateLength)
        formatBytes(t, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the IMF-fixdate of `t` to `buffer` as ASCII bytes, without building a `String`.
    ///
    /// Meant for the `Date` header the server caches once per second.
    static func formatBytes(_ t: Int, into buffer: inout [UInt8]) {
        let civil = CivilTime(epochSeconds: t)
        buffer.append(contentsOf: shortDayNames[civil.weekday].utf8)
        buffer.append(UInt8(ascii: ","))
        buffer.append(UInt8(ascii: " "))
        appendDigits(civil.day, width: 2, to: &buffer)
        buffer.append(UInt8(ascii: " "))
        buffer.append(contentsOf: monthNames[civil.month - 1].utf8)
        buffer.append(UInt8(ascii: " "))
        appendDigits(civil.year, width: 4, to: &buffer)
        buffer.append(UInt8(ascii: " "))
        appendClock(civil, to: &buffer)
        buffer.append(contentsOf: " GMT".utf8)
    }

    /// Formats `t` in local time as Python's `log_date_time_string`: `"25/Nov/2026 07:03:45"`.
    static func logFormat(_ t: Int) -> String {
        var seconds = time_t(t)
        var parts = tm()
        guard localtime_r(&seconds, &parts) != nil else {
            return logFormat(t, utcOffset: 0)
        }
        return logFormat(t, utcOffset: Int(parts.tm_gmtoff))
    }

    /// Formats `t` shifted by `utcOffset` seconds in the log form; the testable core of `logFormat(_:)`.
    static func logFormat(_ t: Int, utcOffset: Int) -> String {
        let civil = CivilTime(epochSeconds: t + utcOffset)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(20)
        appendDigits(civil.day, width: 2, to: &buffer)
        buffer.append(UInt8(ascii: "/"))
        buffer.append(contentsOf: monthNames[civil.month - 1].utf8)
        buffer.append(UInt8(ascii: "/"))
        appendDigits(civil.year, width: 4, to: &buffer)
        buffer.append(UInt8(ascii: " "))
        appendClock(civil, to: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Parses an HTTP date in any of the three forms RFC 9110 §5.6.7 requires recipients to accept.
    ///
    /// Accepted: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850
    /// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`). Names are
    /// matched without regard to case and surrounding whitespace is ignored, as Python's
    /// `email.utils` does; the weekday is not checked against the date. A two-digit year is read
    /// as Python reads it: 69–99 → 19xx, 00–68 → 20xx.
    /// - Returns: Seconds since the Unix epoch, or `nil` for anything else, including
    ///   impossible dates (`31 Feb`), times past `23:59:59`, or a zone other than `GMT`.
    static func parse(_ s: String) -> Int? {
        var bytes = Array(s.utf8)[...]
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes.removeFirst() }
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes.removeLast() }
        return parseFixdate(bytes) ?? parseRFC850(bytes) ?? parseAsctime(bytes)
    }

    // MARK: - Parsing

    private static func parseFixdate(_ bytes: ArraySlice<UInt8>) -> Int? {
        var cursor = DateCursor(bytes)
        guard cursor.name(in: shortDayNames) != nil, cursor.skip(","), cursor.skip(" "),
              let day = cursor.number(digits: 1...2), cursor.skip(" "),
              let month = cursor.name(in: monthNames), cursor.skip(" "),
              let year = cursor.number(digits: 4...4), cursor.skip(" "),
              let clock = cursor.clock(), cursor.skip(" "),
              cursor.skipWord("GMT"), cursor.atEnd
        else { return nil }
        return epochSeconds(year: year, month: month + 1, day: day, clock: clock)
    }

    private static func parseRFC850(_ bytes: ArraySlice<UInt8>) -> Int? {
        var cursor = DateCursor(bytes)
        guard cursor.name(in: longDayNames) != nil, cursor.skip(","), cursor.skip(" "),
              let day = cursor.number(digits: 2...2), cursor.skip("-"),
              let month = cursor.name(in: monthNames), cursor.skip("-"),
              let twoDigitYear = cursor.number(digits: 2...2), cursor.skip(" "),
              let clock = cursor.clock(), cursor.skip(" "),
              cursor.skipWord("GMT"), cursor.atEnd
        else { return nil }
        let year = twoDigitYear > 68 ? 1900 + twoDigitYear : 2000 + twoDigitYear
        return epochSeconds(year: year, month: month + 1, day: day, clock: clock)
    }

    private static func parseAsctime(_ bytes: ArraySlice<UInt8>) -> Int? {
        var cursor = DateCursor(bytes)
        guard cursor.name(in: shortDayNames) != nil, cursor.skip(" "),
              let month = cursor.name(in: monthNames), cursor.skip(" ")
        else { return nil }
        let day: Int
        if cursor.skip(" ") {
            guard let digit = cursor.number(digits: 1...1) else { return nil }
            day = digit
        } else {
            guard let digits = cursor.number(digits: 2...2) else { return nil }
            day = digits
        }
        guard cursor.skip(" "), let clock = cursor.clock(), cursor.skip(" "),
              let year = cursor.number(digits: 4...4), cursor.atEnd
        else { return nil }
        return epochSeconds(year: year, month: month + 1, day: day, clock: clock)
    }

    /// Validates the fields and converts them to epoch seconds.
    private static func epochSeconds(
        year: Int, month: Int, day: Int, clock: (hour: Int, minute: Int, second: Int)
    ) -> Int? {
        guard year >= 1, day >= 1, day <= daysInMonth(year: year, month: month),
              clock.hour <= 23, clock.minute <= 59, clock.second <= 59
        else { return nil }
        let days = CivilTime.daysSinceEpoch(year: year, month: month, day: day)
        return days * 86_400 + clock.hour * 3600 + clock.minute * 60 + clock.second
    }

    private static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2:
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            return leap ? 29 : 28
        case 4, 6, 9, 11:
            return 30
        default:
            return 31
        }
    }

    // MARK: - Formatting helpers

    /// Weekday abbreviations, Sunday first, as HTTP dates and Python spell them.
    static let shortDayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    /// Full weekday names, Sunday first, for RFC 850 dates.
    static let longDayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    /// Month abbreviations, January first.
    static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    private static func appendClock(_ civil: CivilTime, to buffer: inout [UInt8]) {
        appendDigits(civil.hour, width: 2, to: &buffer)
        buffer.append(UInt8(ascii: ":"))
        appendDigits(civil.minute, width: 2, to: &buffer)
        buffer.append(UInt8(ascii: ":"))
        appendDigits(civil.second, width: 2, to: &buffer)
    }

    /// Appends the decimal digits of a non-negative `value`, zero-padded to at least `width`.
    private static func appendDigits(_ value: Int, width: Int, to buffer: inout [UInt8]) {
        let value = Swift.max(value, 0)
        var count = 1
        var power = 10
        while power <= value {
            count += 1
            power *= 10
        }
        if count < width {
            buffer.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: width - count))
        }
        while count > 0 {
            power /= 10
            buffer.append(UInt8(ascii: "0") + UInt8(value / power % 10))
            count -= 1
        }
    }
}

extension HTTPDate {
    /// A broken-down UTC time computed from epoch seconds with plain integer arithmetic.
    struct CivilTime: Equatable {
        var year: Int
        var month: Int  // 1...12
        var day: Int  // 1...31
        var hour: Int
        var minute: Int
        var second: Int
        var weekday: Int  // 0 = Sunday

        /// Splits `epochSeconds` (which may be negative) into calendar fields.
        init(epochSeconds: Int) {
            let (days, secondOfDay) = Self.floorDivide(epochSeconds, 86_400)
            hour = secondOfDay / 3600
            minute = secondOfDay / 60 % 60
            second = secondOfDay % 60
            weekday = Self.floorDivide(days + 4, 7).remainder  // 1970-01-01 was a Thursday.

            // Count in 400-year cycles of 146_097 days, with years starting on 1 March so the leap
            // day is the last day of the year.
            let (cycle, dayOfCycle) = Self.floorDivide(days + 719_468, 146_097)
            let yearOfCycle = (dayOfCycle - dayOfCycle / 1460 + dayOfCycle / 36_524 - dayOfCycle / 146_096) / 365
            let dayOfYear = dayOfCycle - (365 * yearOfCycle + yearOfCycle / 4 - yearOfCycle / 100)
            let marchMonth = (5 * dayOfYear + 2) / 153  // 0 = March
            day = dayOfYear - (153 * marchMonth + 2) / 5 + 1
            month = marchMonth < 10 ? marchMonth + 3 : marchMonth - 9
            year = cycle * 400 + yearOfCycle + (month <= 2 ? 1 : 0)
        }

        /// The number of days from 1970-01-01 to the given date (negative before it).
        static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
            let marchYear = month <= 2 ? year - 1 : year
            let (cycle, yearOfCycle) = floorDivide(marchYear, 400)
            let marchMonth = (month + 9) % 12
            let dayOfYear = (153 * marchMonth + 2) / 5 + day - 1
            let dayOfCycle = yearOfCycle * 365 + yearOfCycle / 4 - yearOfCycle / 100 + dayOfYear
            return cycle * 146_097 + dayOfCycle - 719_468
        }

        /// Division rounding toward negative infinity, with a non-negative remainder.
        private static func floorDivide(_ a: Int, _ b: Int) -> (quotient: Int, remainder: Int) {
            let (q, r) = a.quotientAndRemainder(dividingBy: b)
            return r < 0 ? (q - 1, r + b) : (q, r)
        }
    }
}

/// A forward-only reader over the bytes of a date string.
private struct DateCursor {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
    }

    var atEnd: Bool { bytes.isEmpty }

    /// Consumes `character` if it comes next.
    mutating func skip(_ character: Unicode.Scalar) -> Bool {
        guard bytes.first == UInt8(ascii: character) else { return false }
        bytes.removeFirst()
        return true
    }

    /// Consumes a run of ASCII letters equal to `word` ignoring case.
    mutating func skipWord(_ word: String) -> Bool {
        name(in: [word]) != nil
    }

    /// Consumes a run of ASCII letters and returns its index in `names`, ignoring case.
    mutating func name(in names: [String]) -> Int? {
        let letters = bytes.prefix { ($0 | 0x20) >= UInt8(ascii: "a") && ($0 | 0x20) <= UInt8(ascii: "z") }
        guard let index = names.firstIndex(where: { name in
            name.utf8.count == letters.count
                && zip(name.utf8, letters).allSatisfy { $0 | 0x20 == $1 | 0x20 }
        }) else { return nil }
        bytes.removeFirst(letters.count)
        return index
    }

    /// Consumes a run of ASCII digits whose length is in `digits`.
    mutating func number(digits: ClosedRange<Int>) -> Int? {
        let run = bytes.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard digits.contains(run.count) else { return nil }
        bytes.removeFirst(run.count)
        return run.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    /// Consumes `HH:MM:SS` (two digits each; ranges are checked by the caller).
    mutating func clock() -> (hour: Int, minute: Int, second: Int)? {
        guard let hour = number(digits: 2...2), skip(":"),
              let minute = number(digits: 2...2), skip(":"),
              let second = number(digits: 2...2)
        else { return nil }
        return (hour, minute, second)
    }
}
