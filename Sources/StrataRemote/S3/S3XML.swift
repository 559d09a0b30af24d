// A small XML reader for S3's answers (ListObjectsV2, ListMultipartUploads, multipart results and
// error bodies): elements, text, the five named entities and character references. Comments,
// processing instructions, CDATA and a DOCTYPE-free prolog are understood; namespaces are ignored
// (names keep no prefix). Hostile input (bad nesting, unknown entities, too deep, too many
// elements, too large) is refused with `.corrupt`, never a crash.
import StrataFormat

/// One XML element: its local name, its text (the concatenation of its direct text) and children.
struct XMLElement: Sendable, Equatable {
    var name: String
    var text: String = ""
    var children: [XMLElement] = []

    /// The first child called `name`.
    func child(_ name: String) -> XMLElement? { children.first { $0.name == name } }

    /// Every child called `name`.
    func children(_ name: String) -> [XMLElement] { children.filter { $0.name == name } }

    /// The text of the first child called `name`.
    func text(of name: String) -> String? { child(name)?.text }
}

/// Parses a whole XML document into its root element.
enum S3XML {
    /// Largest document read (a 1,000-key listing is a few hundred KiB).
    static let maximumBytes = 16 << 20
    /// Deepest nesting accepted (S3's answers are at most four levels deep).
    static let maximumDepth = 32
    /// Most elements accepted in one document.
    static let maximumElements = 200_000

    /// The root element of `bytes`; `.corrupt` naming `what` (the request's address) when the
    /// bytes are not a well-formed document within the limits.
    static func parse(_ bytes: [UInt8], what: String) throws(StrataError) -> XMLElement {
        var parser = Parser(bytes: bytes, what: what)
        return try parser.document()
    }

    private struct Parser {
        let bytes: [UInt8]
        let what: String
        var i = 0
        var elements = 0

        init(bytes: [UInt8], what: String) {
            self.bytes = bytes
            self.what = what
        }

        func fail(_ why: String) -> StrataError {
            StrataError(.corrupt, "the store's XML answer is malformed: \(why) at byte \(i)", path: what)
        }

        mutating func document() throws(StrataError) -> XMLElement {
            guard bytes.count <= S3XML.maximumBytes else { throw fail("larger than \(S3XML.maximumBytes) bytes") }
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
            try skipMisc()
            guard i < bytes.count, bytes[i] == 0x3C else { throw fail("no root element") }
            let root = try element(depth: 1)
            try skipMisc()
            guard i == bytes.count else { throw fail("text after the root element") }
            return root
        }

        /// Skips whitespace, comments and processing instructions between elements.
        mutating func skipMisc() throws(StrataError) {
            while i < bytes.count {
                if isSpace(bytes[i]) { i += 1 }
                else if starts("<?") { try skip(past: Array("?>".utf8)) }
                else if starts("<!--") { try skip(past: Array("-->".utf8)) }
                else { return }
            }
        }

        func starts(_ text: String) -> Bool {
            let t = Array(text.utf8)
            return bytes.count - i >= t.count && bytes[i..<(i + t.count)].elementsEqual(t)
        }

        mutating func skip(past end: [UInt8]) throws(StrataError) {
            while i + end.count <= bytes.count {
                if bytes[i..<(i + end.count)].elementsEqual(end) { i += end.count; return }
                i += 1
            }
            throw fail("unterminated '\(String(decoding: end, as: UTF8.self))' section")
        }

        /// An element starting at `<`, its content and its end tag.
        mutating func element(depth: Int) throws(StrataError) -> XMLElement {
            guard depth <= S3XML.maximumDepth else { throw fail("nested deeper than \(S3XML.maximumDepth)") }
            elements += 1
            guard elements <= S3XML.maximumElements else { throw fail("more than \(S3XML.maximumElements) elements") }
            i += 1  // "<"
            let qualified = try name()
            var node = XMLElement(name: localName(qualified))
            // Attributes: skipped, but their quoting is checked.
            while true {
                skipSpaces()
                guard i < bytes.count else { throw fail("unterminated start tag") }
                if bytes[i] == 0x2F {  // "/>"
                    guard i + 1 < bytes.count, bytes[i + 1] == 0x3E else { throw fail("bad '/' in a tag") }
                    i += 2
                    return node
                }
                if bytes[i] == 0x3E { i += 1; break }
                _ = try name()
                skipSpaces()
                guard i < bytes.count, bytes[i] == 0x3D else { throw fail("attribute without '='") }
                i += 1
                skipSpaces()
                guard i < bytes.count, bytes[i] == 0x22 || bytes[i] == 0x27 else { throw fail("unquoted attribute") }
                let quote = bytes[i]
                i += 1
                while i < bytes.count, bytes[i] != quote { i += 1 }
                guard i < bytes.count else { throw fail("unterminated attribute") }
                i += 1
            }
            var text = [UInt8]()
            while true {
                guard i < bytes.count else { throw fail("element <\(qualified)> is not closed") }
                if bytes[i] != 0x3C {
                    if bytes[i] == 0x26 { try entity(into: &text) } else { text.append(bytes[i]); i += 1 }
                } else if starts("</") {
                    i += 2
                    let closing = try name()
                    guard closing == qualified else { throw fail("</\(closing)> closes <\(qualified)>") }
                    skipSpaces()
                    guard i < bytes.count, bytes[i] == 0x3E else { throw fail("bad end tag") }
                    i += 1
                    break
                } else if starts("<!--") {
                    try skip(past: Array("-->".utf8))
                } else if starts("<![CDATA[") {
                    i += 9
                    let start = i
                    try skip(past: Array("]]>".utf8))
                    text.append(contentsOf: bytes[start..<(i - 3)])
                } else if starts("<?") {
                    try skip(past: Array("?>".utf8))
                } else if starts("<!") {
                    throw fail("declarations are not accepted")
                } else {
                    node.children.append(try element(depth: depth + 1))
                }
            }
            guard let decoded = String(validating: text, as: UTF8.self) else { throw fail("text is not UTF-8") }
            node.text = decoded
            return node
        }

        /// A name: letters, digits and `_ - . :` (and any non-ASCII byte).
        mutating func name() throws(StrataError) -> String {
            let start = i
            while i < bytes.count {
                let b = bytes[i]
                let ok = (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
                    || b == 0x5F || b == 0x2D || b == 0x2E || b == 0x3A || b >= 0x80
                guard ok else { break }
                i += 1
            }
            guard i > start, i - start <= 256 else { throw fail("bad or missing name") }
            guard let text = String(validating: bytes[start..<i], as: UTF8.self) else { throw fail("name is not UTF-8") }
            return text
        }

        func localName(_ qualified: String) -> String {
            if let colon = qualified.lastIndex(of: ":") { return String(qualified[qualified.index(after: colon)...]) }
            return qualified
        }

        /// `&amp;` and friends, `&#NN;` and `&#xHH;`, appended as UTF-8.
        mutating func entity(into text: inout [UInt8]) throws(StrataError) {
            let start = i + 1
            var end = start
            while end < bytes.count, end - start < 12, bytes[end] != 0x3B { end += 1 }
            guard end < bytes.count, bytes[end] == 0x3B else { throw fail("unterminated entity") }
            let body = String(decoding: bytes[start..<end], as: UTF8.self)
            switch body {
            case "amp": text.append(0x26)
            case "lt": text.append(0x3C)
            case "gt": text.append(0x3E)
            case "quot": text.append(0x22)
            case "apos": text.append(0x27)
            default:
                var value: UInt32?
                if body.hasPrefix("#x") || body.hasPrefix("#X") { value = UInt32(body.dropFirst(2), radix: 16) }
                else if body.hasPrefix("#") { value = UInt32(body.dropFirst(), radix: 10) }
                guard let value, value != 0, let scalar = Unicode.Scalar(value) else { throw fail("unknown entity '&\(body.prefix(12));'") }
                text.append(contentsOf: Array(String(Character(scalar)).utf8))
            }
            i = end + 1
        }

        mutating func skipSpaces() { while i < bytes.count, isSpace(bytes[i]) { i += 1 } }

        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
    }
}
