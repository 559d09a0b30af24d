// The two timestamp forms S3 sends: ISO 8601 in XML listings ("2009-10-12T17:50:30.000Z") and the
// HTTP date of the Last-Modified header ("Wed, 12 Oct 2009 17:50:30 GMT"). Both parsed by hand into
// milliseconds since 1970 (UTC); anything else gives nil.
import Foundation

enum S3Time {
    /// `YYYY-MM-DDTHH:MM:SS[.fff]Z` (or with a `+00:00` offset).
    static func parseISO8601(_ text: String) -> UInt64? {
        let b = Array(text.utf8)
        guard b.count >= 20, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54 || b[10] == 0x74, b[13] == 0x3A, b[16] == 0x3A else { return nil }
        guard let year = number(b, 0, 4), let month = number(b, 5, 2), let day = number(b, 8, 2),
              let hour = number(b, 11, 2), let minute = number(b, 14, 2), let second = number(b, 17, 2) else { return nil }
        var i = 19
        var millis = 0
        if i < b.count, b[i] == 0x2E {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                if digits < 3 { millis = millis * 10 + Int(b[i] - 0x30) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            while digits < 3 { millis *= 10; digits += 1 }
        }
        let zone = String(decoding: b[i...], as: UTF8.self)
        guard zone == "Z" || zone == "z" || zone == "+00:00" else { return nil }
        return epochMilliseconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second, millis: millis)
    }

    /// `Wdy, DD Mon YYYY HH:MM:SS GMT` (RFC 7231's IMF-fixdate).
    static func parseHTTPDate(_ text: String) -> UInt64? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let year = Int(parts[3]) else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let month = months.firstIndex(of: String(parts[2])) else { return nil }
        let clock = parts[4].split(separator: ":")
        guard clock.count == 3, let h = Int(clock[0]), let m = Int(clock[1]), let s = Int(clock[2]) else { return nil }
        return epochMilliseconds(year: year, month: month + 1, day: day, hour: h, minute: m, second: s, millis: 0)
    }

    private static func number(_ b: [UInt8], _ at: Int, _ count: Int) -> Int? {
        var v = 0
        for k in at..<(at + count) {
            guard b[k] >= 0x30, b[k] <= 0x39 else { return nil }
            v = v * 10 + Int(b[k] - 0x30)
        }
        return v
    }

    private static func epochMilliseconds(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, millis: Int) -> UInt64? {
        guard (1970...9999).contains(year), (1...12).contains(month), (1...31).contains(day),
              (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second) else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        guard seconds >= 0 else { return nil }
        return UInt64(seconds) * 1000 + UInt64(millis)
    }
}
