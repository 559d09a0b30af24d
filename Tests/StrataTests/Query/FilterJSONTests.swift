// The filter JSON reader (Sources/Strata/Query/JSONValue.swift) and the filter nesting limit:
// linear time, a documented depth limit with a message that names it, located messages for numbers
// beyond float64 and lone surrogates, a round-trip property over random documents, and a mutation
// campaign over filter texts (every input gives a filter or a typed error, never a trap, in
// bounded time).
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class FilterJSONTests: StrataTestCase {
    /// A filter nested `levels` deep: level 1 is the outermost filter, the innermost one holds
    /// `inner` (a condition). `single` uses Qdrant's one-condition form (`"must": {...}`), which
    /// needs one JSON container per level instead of two.
    static func nested(levels: Int, inner: String = #"{"key":"rank","match":{"any":[1,2]}}"#, single: Bool = false) -> String {
        String(repeating: single ? #"{"must":"# : #"{"must":["#, count: levels) + inner + String(repeating: single ? "}" : "]}", count: levels)
    }

    /// Levels of nested filters in `f` (1 for a flat filter).
    static func depth(_ f: Filter) -> Int {
        var deepest = 0
        for case .filter(let g) in f.must + f.should + f.mustNot { deepest = max(deepest, depth(g)) }
        return 1 + deepest
    }

    func message(_ json: String) -> String {
        do { _ = try Filter(json: json); return "parsed" } catch { return error.message }
    }

    // MARK: nesting

    func testNestingUpToTheLimitParsesAndBeyondIsRejectedNamingTheLimit() throws {
        XCTAssertEqual(Filter.maximumNesting, 64)
        for single in [false, true] {
            let f = try Filter(json: Self.nested(levels: 64, single: single))
            XCTAssertEqual(Self.depth(f), 64, "single \(single)")
            // 65 levels: refused by the JSON reader (depth) or by the filter parser, naming 64.
            for inner in [#"{"key":"rank","match":{"any":[1,2]}}"#, #"{"must":[]}"#] {
                let m = message(Self.nested(levels: 65, inner: inner, single: single))
                XCTAssertTrue(m.contains("64") && m.contains("nest"), "65 levels (single \(single), inner \(inner)): \(m)")
                XCTAssertFalse(m.contains("not valid JSON"), m)
            }
        }
        // The JSON reader's own limit is exactly what 64 levels can need, so every valid filter of
        // 64 levels is read, whatever its innermost condition.
        XCTAssertEqual(Filter.maximumJSONDepth, 131)
        var depth = 0, deepest = 0
        for b in Self.nested(levels: 64).utf8 {
            if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") { depth += 1; deepest = max(deepest, depth) }
            if b == UInt8(ascii: "}") || b == UInt8(ascii: "]") { depth -= 1 }
        }
        XCTAssertEqual(deepest, Filter.maximumJSONDepth, "64 levels ending in match.any use every container the reader allows")
    }

    func testDeepNestingIsRejectedQuickly() throws {
        // Depth 255 took 1.4 s (cubic) and depth 256 and more read as "not valid JSON".
        for levels in [255, 256, 10_000, 100_000] {
            for single in [false, true] {
                let text = Self.nested(levels: levels, single: single)
                let start = Date()
                let m = message(text)
                let seconds = Date().timeIntervalSince(start)
                XCTAssertTrue(m.contains("at most 64 levels") || m.contains("more than 64 levels"), "\(levels) levels: \(m.prefix(300))")
                XCTAssertLessThan(seconds, 2, "\(levels) levels took \(seconds) s")
            }
        }
        // Unbalanced openers alone.
        XCTAssertTrue(message(String(repeating: "[", count: 1_000_000)).contains("nests too deeply"))
    }

    func testWideFiltersParseInLinearTime() throws {
        // 40,000 conditions (about 1.5 MB) in one list, and 64 levels with 500 siblings each.
        let condition = #"{"key":"rank","range":{"gte":1,"lt":2.5}}"#
        let wide = #"{"should":["# + Array(repeating: condition, count: 40_000).joined(separator: ",") + "]}"
        var start = Date()
        let f = try Filter(json: wide)
        XCTAssertEqual(f.should.count, 40_000)
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        let siblings = Array(repeating: condition, count: 500).joined(separator: ",")
        var s = condition
        for _ in 0..<64 { s = #"{"must":["# + siblings + "," + s + "]}" }
        start = Date()
        XCTAssertEqual(Self.depth(try Filter(json: s)), 64)
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }

    // MARK: tokens

    func testNumbersBeyondFloat64AndLoneSurrogatesHaveClearMessages() {
        for number in ["1e400", "-1e400", "1E+999", "123456789e301"] {
            let m = message(#"{"must":[{"key":"rank","match":{"value":"# + number + "}}]}")
            XCTAssertTrue(m.contains("filter.must[0].match.value") && m.contains(number) && m.contains("64-bit float"), m)
            XCTAssertFalse(m.contains("Dictionary"), m)
        }
        let range = message(#"{"must":[{"key":"rank","range":{"gte":0,"lt":1e400}}]}"#)
        XCTAssertTrue(range.contains("filter.must[0].range.lt"), range)
        for (text, unit) in [(#"\ud800"#, "D800"), (#"\uDBFF"#, "DBFF"), (#"\udc00"#, "DC00"), (#"\ud800x"#, "D800"),
                             (#"\ud800\u0041"#, "D800"), (#"\ud800\ud800"#, "D800"), (#"a\uDFFF"#, "DFFF")] {
            let m = message(#"{"must":[{"key":"name","match":{"value":""# + text + #""}}]}"#)
            XCTAssertTrue(m.contains("lone surrogate") && m.contains(unit) && m.contains("filter.must[0].match.value"), "\(text): \(m)")
            XCTAssertFalse(m.contains("Dictionary"), m)
        }
        // A lone surrogate in a key is located at the object holding it.
        XCTAssertTrue(message(#"{"must":[{"\ud800":1}]}"#).contains("filter.must[0]"))
    }

    func testTokensThatAreValid() throws {
        let f = try Filter(json: #" { "must" : [ {"key":"n\u0061me" , "match": {"value": "\ud83d\ude80 \"q\" \\ \/ \b\f\n\r\t\u00e4"}},"#
                                 + #"{"key":"a","match":{"any":[-0, 0.5, -1.5e-3, 1E2, 9223372036854775807, -9223372036854775808, 9223372036854775808, 1e-400]}} ] } "#)
        XCTAssertEqual(f.must[0], .match(key: "name", value: .string("🚀 \"q\" \\ / \u{8}\u{c}\n\r\tä")))
        XCTAssertEqual(f.must[1], .matchAny(key: "a", values: [.int(0), .float(0.5), .float(-1.5e-3), .float(100), .int(.max), .int(.min),
                                                               .float(9223372036854775808), .float(0)]))
    }

    func testMalformedJSONIsLocated() {
        let cases: [(String, String)] = [
            (#"{"must": 3"#, "end of input"),
            (#"{"must":[]} x"#, "after the JSON value"),
            (#"{"must":[01]}"#, "leading zero"),
            (#"{"must":[1.]}"#, "digit after '.'"),
            (#"{"must":[-]}"#, "digit after '-'"),
            (#"{"must":[1e]}"#, "exponent"),
            (#"{"must":[tru]}"#, "expected a value"),
            (#"{"must":["a\qb"]}"#, "unknown escape"),
            (#"{"must":["\u12G4"]}"#, "four hex digits"),
            ("{\"must\":[\"a\u{01}b\"]}", "control character U+0001"),
            (#"{"must":[],"must":[]}"#, "duplicate key \"must\""),
            (#"{"must" []}"#, "expected ':'"),
            (#"{must:[]}"#, "string key"),
            (#"{"must":[1 2]}"#, "expected ',' or ']'"),
            (#"{"must":[1,]}"#, "trailing comma before ']'"),
            (#"{"must":[], }"#, "trailing comma before '}'"),
            (#"{"must":["abc"#, "unterminated string"),
            ("", "end of input"),
        ]
        for (text, expected) in cases {
            let m = message(text)
            XCTAssertTrue(m.contains(expected), "\(text): \(m)")
            XCTAssertTrue(m.contains("byte"), "\(text): the message names the byte offset: \(m)")
        }
        XCTAssertTrue(message(#"{"must":[{"key":"a","match":{"value":1}}, x]}"#).contains("(in filter.must[1])"))
    }

    // MARK: property: random documents round-trip

    /// Random JSON values (depth-bounded), with random strings over every kind of scalar.
    struct Generator {
        var rng: SplitMix64

        mutating func scalarString(maxLength: Int = 8) -> String {
            let pool: [UInt32] = [0x22, 0x5C, 0x2F, 0x08, 0x0C, 0x0A, 0x0D, 0x09, 0x00, 0x01, 0x1F, 0x20, 0x41, 0x7A, 0x7F,
                                  0xE4, 0x3A9, 0x4E2D, 0xFFFD, 0xFEFF, 0x1F680, 0x10FFFF, 0x2028]
            return String(String.UnicodeScalarView((0..<rng.int(maxLength + 1)).map { _ in Unicode.Scalar(pool[rng.int(pool.count)])! }))
        }

        mutating func value(depth: Int) -> JSONValue {
            switch rng.int(depth > 0 ? 8 : 6) {
            case 0: return .null
            case 1: return .bool(rng.int(2) == 0)
            case 2: return .int(Int64(bitPattern: rng.next()) >> Int64(rng.int(64)))
            case 3:
                var d = Double(bitPattern: rng.next())
                while !d.isFinite { d = Double(bitPattern: rng.next()) }
                return .double(rng.int(2) == 0 ? d : Double(rng.int(2000)) / 8 - 125)
            case 4, 5: return .string(scalarString())
            case 6: return .array((0..<rng.int(4)).map { _ in value(depth: depth - 1) })
            default:
                var o: [String: JSONValue] = [:]
                for _ in 0..<rng.int(4) { o[scalarString(maxLength: 3)] = value(depth: depth - 1) }
                return .object(o)
            }
        }

        mutating func space() -> String { ["", " ", "\n", "\t ", "\r\n  "][rng.int(5)] }

        /// JSON text of `s`, escaping what must be escaped and some of the rest at random.
        mutating func text(of s: String) -> String {
            var out = "\""
            for u in s.unicodeScalars {
                let mustEscape = u.value < 0x20 || u == "\"" || u == "\\"
                if !mustEscape, rng.int(4) != 0 { out.unicodeScalars.append(u); continue }
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n" where rng.int(2) == 0: out += "\\n"
                case "/" where rng.int(2) == 0: out += "\\/"
                default:
                    for unit in String(u).utf16 {
                        let h = String(unit, radix: 16, uppercase: rng.int(2) == 0)
                        out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                    }
                }
            }
            return out + "\""
        }

        mutating func text(of v: JSONValue) -> String {
            switch v {
            case .null: return "null"
            case .bool(let b): return b ? "true" : "false"
            case .int(let i): return String(i)
            case .double(let d):
                // Swift's shortest round-trip form ("1e-05", "5e+20", "0.5") is valid JSON; make
                // sure an integral value still reads as a float.
                let t = "\(d)"
                return t.contains(".") || t.contains("e") ? t : t + ".0"
            case .string(let s): return text(of: s)
            case .array(let a): return "[" + space() + a.map { text(of: $0) + space() }.joined(separator: "," + space()) + "]"
            case .object(let o):
                return "{" + space() + o.map { text(of: $0.key) + space() + ":" + space() + text(of: $0.value) }.joined(separator: "," + space()) + space() + "}"
            }
        }
    }

    func testRandomDocumentsRoundTrip() throws {
        var g = Generator(rng: SplitMix64(seed: 2024))
        for n in 0..<3000 {
            let v = g.value(depth: 5)
            let text = g.space() + g.text(of: v) + g.space()
            let parsed = try JSONValue.parse(text, what: "doc", maximumDepth: 16)
            XCTAssertEqual(parsed, v, "case \(n): \(text)")
            if parsed != v { break }
        }
    }

    // MARK: campaign: mutated filters never trap, always a filter or a typed error, quickly

    func testMutatedFilterTextsGiveAFilterOrATypedError() {
        var rng = SplitMix64(seed: 77)
        let seeds = FilterTests.filters + [
            Self.nested(levels: 64), Self.nested(levels: 63, single: true),
            #"{"must":[{"key":"name","prefix":{"value":"py","case_insensitive":true}},{"key":"rank","is_null":false}]}"#,
            #"{"should":{"key":"score","range":{"gt":-1.5e300,"lte":1e-300}},"must_not":[{"is_null":{"key":"x"}}]}"#,
        ]
        let fragments = [#"\ud800"#, #"\udc00"#, #"\ud83d\ude80"#, "1e400", "-1e400", "1e-400", "9223372036854775808", "-0", "0.0e0",
                         "[", "]", "{", "}", ",", ":", "\"", "\\", "null", "true", "{\"must\":[", "]}", "\u{0}", "\u{1}", "é", "🚀",
                         String(repeating: "[", count: 200), String(repeating: "{\"must\":", count: 100), "\"key\"", "\"must\""]
        var outcomes = [String: Int]()
        var slowest = 0.0
        let cases = 20_000
        let start = Date()
        for _ in 0..<cases {
            var bytes = Array(seeds[rng.int(seeds.count)].utf8)
            for _ in 0..<(1 + rng.int(4)) {
                let at = bytes.isEmpty ? 0 : rng.int(bytes.count + 1)
                switch rng.int(5) {
                case 0: if at < bytes.count { bytes.remove(at: at) }
                case 1: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                case 2: if at < bytes.count { bytes[at] = UInt8(truncatingIfNeeded: rng.next()) }
                case 3: bytes.insert(contentsOf: Array(fragments[rng.int(fragments.count)].utf8), at: at)
                default:
                    let end = min(bytes.count, at + rng.int(40))
                    if at < end { bytes.insert(contentsOf: bytes[at..<end], at: rng.int(bytes.count + 1)) }
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            // Differential: what this reader accepts, Foundation's reader accepts too, and what it
            // refuses that Foundation accepts is one of its documented strictnesses.
            let foundation = (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed)) != nil
            do {
                _ = try JSONValue.parse(text, what: "doc", maximumDepth: Filter.maximumJSONDepth)
                XCTAssertTrue(foundation, "Foundation refuses: \(text)")
                outcomes["json", default: 0] += 1
            } catch where foundation {
                let stricter = ["duplicate key", "lone surrogate", "64-bit float", "nests too deeply", "trailing comma"]
                XCTAssertTrue(stricter.contains { error.message.contains($0) }, "Foundation accepts, this reader refuses: \(text): \(error.message)")
            } catch {}
            let t0 = Date()
            do {
                let f = try Filter(json: text)
                XCTAssertLessThanOrEqual(Self.depth(f), Filter.maximumNesting + 1, text)   // is_null false adds one
                outcomes["filter", default: 0] += 1
            } catch {
                XCTAssertEqual(error.code, .invalidArgument, text)
                XCTAssertFalse(error.message.contains("Expected to decode"), error.message)
                outcomes[error.message.contains("not valid JSON") ? "syntax" : "other error", default: 0] += 1
            }
            slowest = max(slowest, Date().timeIntervalSince(t0))
        }
        let seconds = Date().timeIntervalSince(start)
        print("filter JSON campaign: \(cases) mutated filters in \(String(format: "%.2f", seconds)) s, slowest \(String(format: "%.4f", slowest)) s: \(outcomes.sorted { $0.key < $1.key })")
        XCTAssertLessThan(slowest, 1, "one small input took \(slowest) s")
        XCTAssertGreaterThan(outcomes["filter", default: 0], 100, "the campaign must also reach valid filters")
        XCTAssertGreaterThan(outcomes["other error", default: 0], 100, "the campaign must also reach the filter checks")
    }
}
