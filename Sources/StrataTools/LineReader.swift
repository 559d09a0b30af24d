// Line-by-line reading of the text side files of `strata build` / `strata insert` (TSV payload,
// ids, sparse vectors): the file is mapped, lines are split at `\n` (a `\r` before it is dropped),
// and text is decoded as UTF-8 only after it was checked, so that an invalid byte is reported with
// its line and column instead of being replaced by U+FFFD.
//
// A cursor can start at a recorded ``LineReader/Position`` (a line's number and byte offset), so a
// reader of rows k*S..<(k+1)*S does not scan lines 1..k*S again: `strata import` records the
// position of each segment's first line in the one pass that counts the lines.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Strata
import StrataFormat
import StrataIndex

/// The lines of a text file, mapped. Regular files only (`MappedFile` refuses pipes and
/// devices), so a reader can be made twice over the same file: once to validate, once to load.
public struct LineReader {
    private let file: MappedFile
    /// The file's path, for error messages.
    public let path: String

    /// Maps `path`. Throws `.io` when it cannot be opened or is not a regular file.
    public init(path: String) throws(StrataError) {
        file = try MappedFile(path: path)
        self.path = path
    }

    /// A cursor at the first line.
    public func makeCursor() -> Cursor { Cursor(bytes: file.bytes, owner: file, path: path) }

    /// A cursor at `position`, as recorded by ``Cursor/position`` of a cursor over the same file:
    /// it reads the same lines, with the same line numbers, as a cursor that skipped to there.
    /// A position past the end of the file gives a cursor at the end.
    public func makeCursor(at position: Position) -> Cursor {
        var c = makeCursor()
        c.move(to: position)
        return c
    }

    /// Where a cursor stands: the next line starts at byte `offset` and is line `lineNumber + 1`.
    public struct Position: Sendable, Equatable {
        /// Byte offset of the start of the next line.
        public var offset: Int
        /// The number of lines before it (the 1-based number of the line returned last).
        public var lineNumber: Int

        /// The start of a file.
        public static let start = Position(offset: 0, lineNumber: 0)

        /// A position: the next line starts at `offset` and `lineNumber` lines come before it.
        public init(offset: Int, lineNumber: Int) {
            self.offset = offset
            self.lineNumber = lineNumber
        }
    }

    /// Reads lines in order; ``lineNumber`` is the 1-based number of the line returned last.
    public struct Cursor {
        let bytes: UnsafeRawBufferPointer
        let owner: AnyObject
        let path: String
        private var at = 0
        /// The 1-based number of the line returned last (0 before the first).
        public private(set) var lineNumber = 0

        init(bytes: UnsafeRawBufferPointer, owner: AnyObject, path: String) {
            self.bytes = bytes
            self.owner = owner
            self.path = path
        }

        /// Where the cursor stands, for ``LineReader/makeCursor(at:)``.
        public var position: Position { Position(offset: at, lineNumber: lineNumber) }

        mutating func move(to position: Position) {
            at = min(max(0, position.offset), bytes.count)
            lineNumber = max(0, position.lineNumber)
        }

        /// The next line's bytes without `\n` (and a `\r` before it); nil at the end of the file.
        public mutating func nextBytes() -> [UInt8]? {
            guard let r = nextRange() else { return nil }
            return Array(bytes[r])
        }

        /// The next line as text; nil at the end of the file.
        /// - Throws: `.corrupt` naming the line and byte column of the first invalid UTF-8 sequence.
        public mutating func next() throws(StrataError) -> String? {
            guard let r = nextRange() else { return nil }
            let line = UnsafeRawBufferPointer(rebasing: bytes[r])
            if let bad = UTF8Check.firstInvalidOffset(line) {
                throw StrataError(.corrupt, "line \(lineNumber), column \(bad + 1): invalid UTF-8 (\(UTF8Check.describe(line, at: bad)))", path: path)
            }
            return String(decoding: line, as: UTF8.self)
        }

        /// Skips `count` lines; returns how many there were to skip.
        @discardableResult
        public mutating func skip(_ count: Int) -> Int {
            var n = 0
            while n < count, nextRange() != nil { n += 1 }
            return n
        }

        /// Whether any line after the current one holds something other than spaces, tabs and `\r`.
        public func hasMoreContent() -> Bool {
            guard at < bytes.count else { return false }
            return bytes[at...].contains { $0 != 0x0A && $0 != 0x0D && $0 != 0x20 && $0 != 0x09 }
        }

        private mutating func nextRange() -> Range<Int>? {
            guard at < bytes.count else { return nil }
            // memchr: the newline scan is most of the time spent on a large side file.
            let base = bytes.baseAddress!
            let end = memchr(base + at, 0x0A, bytes.count - at).map { base.distance(to: UnsafeRawPointer($0)) } ?? bytes.count
            var lineEnd = end
            if lineEnd > at, bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            defer { at = min(end + 1, bytes.count) }
            lineNumber += 1
            return at..<lineEnd
        }
    }
}

/// UTF-8 validation with the position of the first bad byte (the standard library's decoder, which
/// rejects overlong forms, surrogates and values above U+10FFFF).
enum UTF8Check {
    /// Byte offset of the first invalid sequence in `bytes`, or nil when all of it is valid UTF-8.
    static func firstInvalidOffset<C: Collection<UInt8>>(_ bytes: C) -> Int? {
        // ASCII fast path: most payload text is plain ASCII.
        if bytes.allSatisfy({ $0 < 0x80 }) { return nil }
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    /// `byte 0xFF`: the first byte of the invalid sequence at `offset`, for messages.
    static func describe<C: Collection<UInt8>>(_ bytes: C, at offset: Int) -> String {
        let b = bytes[bytes.index(bytes.startIndex, offsetBy: offset)]
        return "byte 0x" + (b < 0x10 ? "0" : "") + String(b, radix: 16, uppercase: true)
    }
}
