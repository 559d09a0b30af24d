// Per-segment delete bitmap: which rows of one immutable segment are deleted. The file is itself
// immutable: more deletes write a new bitmap file (copy plus the new bits) and a new manifest points
// at it; the old file becomes obsolete. Layout (docs/COLLECTION-FORMAT.md C.5):
//
//   0   8  magic "STRATDEL"
//   8   2  u16 major (1)        10  2  u16 minor (0)        12  4  reserved, 0
//   16  8  u64 row count of the segment
//   24  8  u64 deleted count (= popcount of the words)
//   32  8W u64 words, W = ceil(rows / 64); bit (r % 64) of word (r / 64) set = row r deleted;
//          bits at rows >= row count are 0
//   end-16 8  u64 XXH3-64 of every byte before it
//   end-8  8  magic "STRATDND"

import StrataFormat
import StrataIndex

/// An immutable set of deleted rows of one segment.
package struct DeleteBitmap: Sendable, Equatable {
    /// Rows in the segment.
    public let rowCount: Int
    /// Rows marked deleted.
    public private(set) var deletedCount: Int
    private var words: [UInt64]

    static let magic: [UInt8] = Array("STRATDEL".utf8)
    static let footerMagic: [UInt8] = Array("STRATDND".utf8)
    static let major: UInt16 = 1
    static let minor: UInt16 = 0
    static let headerLength = 32
    static let footerLength = 16

    /// An empty bitmap for a segment of `rowCount` rows.
    public init(rowCount: Int) {
        self.rowCount = rowCount
        deletedCount = 0
        words = [UInt64](repeating: 0, count: (rowCount + 63) / 64)
    }

    /// Whether `row` is deleted (false for rows out of range).
    @inline(__always)
    public func contains(_ row: Int) -> Bool {
        guard row >= 0, row < rowCount else { return false }
        return words[row >> 6] & (1 << UInt64(row & 63)) != 0
    }

    /// Marks `row` deleted; returns whether it was live.
    @discardableResult
    public mutating func insert(_ row: Int) -> Bool {
        precondition(row >= 0 && row < rowCount, "row out of range")
        let bit: UInt64 = 1 << UInt64(row & 63)
        if words[row >> 6] & bit != 0 { return false }
        words[row >> 6] |= bit
        deletedCount += 1
        return true
    }

    /// The deleted rows, ascending.
    public var rows: [Int] {
        var out: [Int] = []
        out.reserveCapacity(deletedCount)
        for (w, word) in words.enumerated() where word != 0 {
            var x = word
            while x != 0 {
                out.append(w * 64 + x.trailingZeroBitCount)
                x &= x - 1
            }
        }
        return out
    }

    /// The file bytes.
    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.headerLength + words.count * 8 + Self.footerLength)
        w.raw(Self.magic); w.u16(Self.major); w.u16(Self.minor); w.u32(0)
        w.u64(UInt64(rowCount)); w.u64(UInt64(deletedCount))
        for x in words { w.u64(x) }
        w.checksumTrailer()
        w.raw(Self.footerMagic)
        return w.bytes
    }

    /// Decodes and validates a bitmap file.
    static func decode(_ bytes: UnsafeRawBufferPointer, path: String? = nil) throws(StrataError) -> DeleteBitmap {
        func fail(_ code: StrataError.Code, _ message: String, _ offset: Int) -> StrataError {
            StrataError(code, message, path: path, section: "delete_bitmap", offset: UInt64(offset))
        }
        guard bytes.count >= 8, bytes[0..<8].elementsEqual(magic) else { throw fail(.badMagic, "not a Strata delete bitmap", 0) }
        guard bytes.count >= headerLength + footerLength else { throw fail(.truncated, "delete bitmap is \(bytes.count) bytes", bytes.count) }
        let footerAt = bytes.count - footerLength
        guard bytes[(footerAt + 8)...].elementsEqual(footerMagic) else { throw fail(.truncated, "delete bitmap footer magic missing", footerAt + 8) }
        guard Checksum.trailerMatches(bytes, at: footerAt) else {
            throw fail(.checksumMismatch, "delete bitmap checksum mismatch", footerAt)
        }
        var r = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[0..<footerAt]), baseOffset: 0, section: "delete_bitmap")
        do throws(StrataError) {
            try r.skip(8)
            let major = try r.u16()
            _ = try r.u16()
            guard major == Self.major else { throw fail(.unsupportedVersion, "delete bitmap major \(major); this build reads 1: upgrade Strata", 8) }
            try r.reservedZeros(4)
            let rows = try r.u64(), deleted = try r.u64()
            guard rows <= UInt64(Int.max / 2), (rows + 63) / 64 * 8 == UInt64(r.remaining) else {
                throw fail(.corrupt, "bitmap length does not match \(rows) rows", 16)
            }
            var bitmap = DeleteBitmap(rowCount: Int(rows))
            var count = 0
            for i in 0..<bitmap.words.count {
                let x = try r.u64()
                bitmap.words[i] = x
                count += x.nonzeroBitCount
            }
            if rows % 64 != 0, let last = bitmap.words.last, last >> (rows % 64) != 0 {
                throw fail(.corrupt, "bits set past the last row", footerAt - 8)
            }
            guard UInt64(count) == deleted else { throw fail(.corrupt, "deleted count \(deleted) but \(count) bits set", 24) }
            bitmap.deletedCount = count
            return bitmap
        } catch {
            var e = error
            if e.path == nil { e.path = path }
            throw e
        }
    }

    /// Reads a bitmap file.
    package static func read(path: String) throws(StrataError) -> DeleteBitmap {
        let bytes = try FileSystem.readAll(path)
        return try bytes.withBytes { (raw) throws(StrataError) in try decode(raw, path: path) }
    }

    /// Writes the bitmap to `path` atomically (temp, fsync, rename, fsync directory).
    package func write(to path: String) throws(StrataError) {
        try publishAtomically(encoded(), to: path)
    }
}
