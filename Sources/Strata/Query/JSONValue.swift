// A small JSON reader for user-supplied documents (filters): one pass over the UTF-8 bytes, linear
// time, a hard nesting limit, and errors that name the byte offset and the JSON path.
//
// Why not JSONDecoder: the filter went through it as an enum of "any JSON value", probing each
// type in turn at every level (each failed probe carrying the coding path), and the cost grew far
// faster than the depth (depth 255 took 1.4 s); Foundation's own depth limit then surfaced as "not
// valid JSON", and its messages ("Expected to decode Dictionary...") say nothing about where.
//
// The grammar is RFC 8259: objects, arrays, strings (escapes \" \\ \/ \b \f \n \r \t \uXXXX, a
// surrogate pair for characters outside the BMP, no raw control characters), numbers, true, false,
// null, whitespace (space, tab, CR, LF) around tokens, nothing after the value, no trailing comma
// (Foundation's reader accepts one). Stricter than the RFC where it leaves a choice: a duplicate
// object key is an error (the meaning would be ambiguous), a lone surrogate escape is an error (it
// is not a character), and a number beyond the range of a 64-bit float (1e400) is an error rather
// than an infinity.

import StrataFormat
import StrataIndex

/// A parsed JSON value. Integers (no fraction, no exponent, within Int64) stay apart from floats.
/// `package` so that the server layer (StrataServer) reads request bodies with the same reader.
package enum JSONValue: Sendable, Equatable {
    case null, bool(Bool), int(Int64), double(Double), string(String), array([JSONValue]), object([String: JSONValue])

    /// "a string", "an object"... for messages.
    package var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Parses `text`, a complete JSON document. O(bytes) time; recursion at most `maximumDepth`
    /// arrays and objects deep. Throws `.invalidArgument` with a message that starts with `what`,
    /// names the byte offset and, inside a container, the path (`filter.must[0].match`).
    /// - Parameters:
    ///   - what: the document's name in messages ("filter"); also the root of the path.
    ///   - maximumDepth: the most arrays and objects that may enclose a value.
    ///   - depthNote: the limit in the caller's terms, for the too-deep message.
    package static func parse(_ text: String, what: String, maximumDepth: Int, depthNote: String = "") throws(StrataError) -> JSONValue {
        var parser = JSONParser(bytes: Array(text.utf8), what: what, maximumDepth: maximumDepth, depthNote: depthNote)
        return try parser.parseDocument()
    }

    /// Parses `bytes` (a request body) as a complete JSON document, like ``parse(_:what:maximumDepth:depthNote:)``.
    /// Bytes that are not valid UTF-8 throw `.invalidArgument` (the string reader relies on valid
    /// UTF-8 and would otherwise repair them silently).
    package static func parse(bytes: [UInt8], what: String, maximumDepth: Int, depthNote: String = "") throws(StrataError) -> JSONValue {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw StrataError(.invalidArgument, "\(what) is not valid JSON: the bytes are not valid UTF-8")
        }
        var parser = JSONParser(bytes: bytes, what: what, maximumDepth: maximumDepth, depthNote: depthNote)
        return try parser.parseDocument()
    }
}

/// The reader behind ``JSONValue/parse(_:what:maximumDepth:depthNote:)``.
struct JSONParser {
    private let bytes: [UInt8]
    private let what: String
    private let maximumDepth: Int
    private let depthNote: String
    private var position = 0
    /// Keys and indices from the root to the value being read; rendered only for a message.
    private var path: [PathComponent] = []

    private enum PathComponent { case key(String), index(Int) }

    init(bytes: [UInt8], what: String, maximumDepth: Int, depthNote: String) {
        self.bytes = bytes
        self.what = what
        self.maximumDepth = maximumDepth
        self.depthNote = depthNote
    }

    mutating func parseDocument() throws(StrataError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        guard position == bytes.count else { throw syntax("unexpected \(describeByte()) after the JSON value") }
        return value
    }

    // MARK: values

    private mutating func parseValue() throws(StrataError) -> JSONValue {
        guard position < bytes.count else { throw syntax("unexpected end of input, expected a value") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw syntax("unexpected \(describeByte()), expected a value")
        }
    }

    private mutating func enter() throws(StrataError) {
        guard path.count < maximumDepth else {
            let limit = "more than \(maximumDepth) nested arrays and objects"
            throw StrataError(.invalidArgument, "\(what) nests too deeply at byte \(position): "
                              + (depthNote.isEmpty ? limit : "\(depthNote) (\(limit) here)"))
        }
    }

    private mutating func parseObject() throws(StrataError) -> JSONValue {
        try enter()
        position += 1                                            // {
        var object: [String: JSONValue] = [:]
        skipWhitespace()
        if peek(UInt8(ascii: "}")) { position += 1; return .object(object) }
        while true {
            skipWhitespace()
            guard peek(UInt8(ascii: "\"")) else { throw syntax("expected a string key or '}', got \(describeByte())") }
            let keyOffset = position
            let key = try parseString()
            skipWhitespace()
            guard peek(UInt8(ascii: ":")) else { throw syntax("expected ':' after the key \"\(key)\", got \(describeByte())") }
            position += 1
            skipWhitespace()
            guard object[key] == nil else { throw located("duplicate key \"\(key)\"", at: keyOffset) }
            path.append(.key(key))
            object[key] = try parseValue()
            path.removeLast()
            skipWhitespace()
            if peek(UInt8(ascii: ",")) {
                position += 1
                skipWhitespace()
                if peek(UInt8(ascii: "}")) { throw syntax("a trailing comma before '}'") }
                continue
            }
            if peek(UInt8(ascii: "}")) { position += 1; return .object(object) }
            throw syntax("expected ',' or '}' in an object, got \(describeByte())")
        }
    }

    private mutating func parseArray() throws(StrataError) -> JSONValue {
        try enter()
        position += 1                                            // [
        var array: [JSONValue] = []
        skipWhitespace()
        if peek(UInt8(ascii: "]")) { position += 1; return .array(array) }
        while true {
            skipWhitespace()
            path.append(.index(array.count))
            array.append(try parseValue())
            path.removeLast()
            skipWhitespace()
            if peek(UInt8(ascii: ",")) {
                position += 1
                skipWhitespace()
                if peek(UInt8(ascii: "]")) { throw syntax("a trailing comma before ']'") }
                continue
            }
            if peek(UInt8(ascii: "]")) { position += 1; return .array(array) }
            throw syntax("expected ',' or ']' in an array, got \(describeByte())")
        }
    }

    private mutating func expectLiteral(_ word: StaticString) throws(StrataError) {
        let n = word.utf8CodeUnitCount
        let ok = position + n <= bytes.count && word.withUTF8Buffer { w in bytes[position..<(position + n)].elementsEqual(w) }
        guard ok else { throw syntax("unexpected \(describeByte()), expected a value") }
        position += n
    }

    // MARK: numbers

    /// RFC 8259 number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    private mutating func parseNumber() throws(StrataError) -> JSONValue {
        let start = position
        var isInteger = true
        if peek(UInt8(ascii: "-")) { position += 1 }
        if peek(UInt8(ascii: "0")) {
            position += 1
        } else {
            guard skipDigits() > 0 else { throw syntax("a number needs a digit after '-'") }
        }
        if peek(UInt8(ascii: ".")) {
            position += 1
            isInteger = false
            guard skipDigits() > 0 else { throw syntax("a number needs a digit after '.'") }
        }
        if peek(UInt8(ascii: "e")) || peek(UInt8(ascii: "E")) {
            position += 1
            isInteger = false
            if peek(UInt8(ascii: "+")) || peek(UInt8(ascii: "-")) { position += 1 }
            guard skipDigits() > 0 else { throw syntax("a number needs a digit in its exponent") }
        }
        if position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
            throw syntax("a number may not have a leading zero")
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if isInteger, let i = Int64(text) { return .int(i) }
        // Integers beyond Int64 become floats, as in most JSON readers; Double(_:) rounds correctly.
        guard let d = Double(text), d.isFinite else {
            throw located("number \(text) is out of the range of a 64-bit float (about ±1.8e308)", at: start)
        }
        return .double(d)
    }

    private mutating func skipDigits() -> Int {
        let start = position
        while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") { position += 1 }
        return position - start
    }

    // MARK: strings

    private mutating func parseString() throws(StrataError) -> String {
        position += 1                                            // "
        var out: [UInt8] = []
        while true {
            guard position < bytes.count else { throw syntax("unterminated string") }
            let b = bytes[position]
            switch b {
            case UInt8(ascii: "\""):
                position += 1
                // The input came from a Swift String, so its bytes are valid UTF-8, and escapes
                // append only valid scalars: decoding repairs nothing.
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try parseEscape(into: &out)
            case 0..<0x20:
                throw syntax("control character U+\(hex4(UInt16(b))) in a string must be escaped")
            default:
                out.append(b)
                position += 1
            }
        }
    }

    private mutating func parseEscape(into out: inout [UInt8]) throws(StrataError) {
        let start = position
        position += 1                                            // backslash
        guard position < bytes.count else { throw syntax("unterminated string") }
        let c = bytes[position]
        position += 1
        switch c {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try hexUnit()
            var scalarValue = UInt32(unit)
            if (0xDC00...0xDFFF).contains(unit) {
                throw located("lone surrogate \\u\(hex4(unit)) in a string (a low surrogate without a high one is not a character)", at: start)
            }
            if (0xD800...0xDBFF).contains(unit) {
                let lowStart = position
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                    throw located("lone surrogate \\u\(hex4(unit)) in a string (a high surrogate must be followed by \\uDC00-\\uDFFF)", at: start)
                }
                position += 2
                let low = try hexUnit()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw located("lone surrogate \\u\(hex4(unit)) in a string (followed by \\u\(hex4(low)), not a low surrogate)", at: lowStart)
                }
                scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
            }
            // Not a surrogate, or a valid pair: always a Unicode scalar.
            out += Array(String(Character(Unicode.Scalar(scalarValue)!)).utf8)
        default:
            position = start
            throw syntax("unknown escape \\\(describeByte(at: start + 1)) in a string")
        }
    }

    /// Four hex digits after `\u`.
    private mutating func hexUnit() throws(StrataError) -> UInt16 {
        guard position + 4 <= bytes.count else { throw syntax("\\u needs four hex digits") }
        var v: UInt16 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw syntax("\\u needs four hex digits, got \(describeByte())")
            }
            v = v << 4 | UInt16(d)
            position += 1
        }
        return v
    }

    // MARK: helpers

    private func peek(_ b: UInt8) -> Bool { position < bytes.count && bytes[position] == b }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private func describeByte(at offset: Int? = nil) -> String {
        let i = offset ?? position
        guard i < bytes.count else { return "end of input" }
        let b = bytes[i]
        if b >= 0x21, b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x\(String(b, radix: 16, uppercase: true))"
    }

    private func hex4(_ v: UInt16) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: 4 - s.count) + s
    }

    /// "filter.must[0].match" for the value being read (just `what` at the top).
    private var pathText: String {
        var text = what
        for c in path {
            switch c {
            case .key(let k): text += "." + k
            case .index(let i): text += "[\(i)]"
            }
        }
        return text
    }

    /// A grammar error: "filter is not valid JSON: expected ... at byte 12 (in filter.must[0])".
    private func syntax(_ message: String) -> StrataError {
        StrataError(.invalidArgument, "\(what) is not valid JSON: \(message) at byte \(position)" + (path.isEmpty ? "" : " (in \(pathText))"))
    }

    /// A well-formed but unusable token: "filter.must[0].match.value: number 1e400 is ... (byte 40)".
    private func located(_ message: String, at offset: Int) -> StrataError {
        StrataError(.invalidArgument, "\(pathText): \(message) (byte \(offset))")
    }
}
