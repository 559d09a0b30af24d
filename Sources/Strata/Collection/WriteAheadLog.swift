// The write-ahead log of a collection: every insert/upsert batch and every delete is appended here
// and fsynced before it is acknowledged. Records since the last flush are replayed on open.
// Layout (docs/COLLECTION-FORMAT.md C.4):
//
//   file header (32 B): magic "STRATWAL", u16 major, u16 minor 0, u32 reserved 0,
//                       u64 sequence, u64 XXH3-64 of bytes 0..<24
//   format 2.0 and 3.0 records, back to back from offset 32 (`WALFormat.encode`):
//     0  4  u32 body length L
//     4  1  u8 type: 1 put (insert/upsert rows), 2 delete (ids)
//     5  1  u8 flags: for put, bit 0 = upsert, bit 1 = rows carry sparse vectors (3.0 only); 0 for delete
//     6  2  reserved, 0
//     8  8  u64 record number: 1 for the file's first record, +1 for each next one
//     16 8  u64 XXH3-64 of the L body bytes
//     24 8  u64 XXH3-64 of record bytes 0..<24 (so length, type and number are trustworthy)
//     32 L  body
//   format 1.0 records (read, and appended to a 1.0 file until the next flush starts a 2.0 one):
//     0 u32 L, 4 u8 type, 5 u8 flags, 6 u16 0, 8 u64 XXH3-64 of bytes 0..<8 followed by the body, 16 body
//   put body:    u32 row count, u32 dimension, then per row: u64 id, dimension x f32 (as given),
//                one tagged value per schema column (tag u8: 0 null, 1 int64 (8), 2 float64 (8),
//                3 bool (1), 4 string (u32 length + UTF-8), 5 string list (u32 count, then
//                u32 length + UTF-8 each)); with flag bit 1, then u32 entry count n (0: no sparse
//                vector), n x u32 indices (strictly ascending), n x f32 weights (finite, non-zero)
//   delete body: u32 count, count x u64 id
//
// Which format a new WAL gets: 3.0 only when it may hold a sparse vector (WALVersion.forNewLog), so
// that a collection that never stores one stays readable by a Strata that predates 3.0.
//
// How a read tells a torn tail from damage is in WriteAheadLog+Reader.swift.
import StrataFormat
import StrataIndex
#if canImport(Glibc)
import Glibc
#endif

/// One decoded WAL record.
package enum WALRecord: Equatable {
    /// Rows to insert (`upsert` false) or upsert; values in schema column order.
    case put(rows: [BufferedInput], upsert: Bool)
    /// Ids to delete.
    case delete(ids: [UInt64])
}

/// A row as the caller gave it, after validation: id, vector (not normalised), positional values,
/// and the sparse vector in canonical form (nil: none).
package struct BufferedInput: Equatable {
    package var id: UInt64
    package var vector: [Float]
    package var values: [PayloadValue]
    package var sparse: SparseVector? = nil
}

extension WALRecord {
    /// Whether the record is a put with a row that carries a sparse vector (it needs WAL 3.0).
    var hasSparse: Bool {
        if case .put(let rows, _) = self { return rows.contains { $0.sparse != nil } }
        return false
    }
}

/// A WAL file's format version, from its header.
struct WALVersion: Equatable, CustomStringConvertible {
    var major: UInt16
    var minor: UInt16

    /// Records with a length, a checksum over header and body, no number (C.4, "Format 1.0").
    static let v1 = WALVersion(major: 1, minor: 0)
    /// Records with a number, a header checksum and a body checksum (C.4, "Format 2.0").
    static let v2 = WALVersion(major: 2, minor: 0)
    /// 2.0 records whose put bodies may carry sparse vectors (put flag bit 1): the newest this build
    /// writes, and only where needed (``forNewLog(after:sparse:)``).
    static let v3 = WALVersion(major: 3, minor: 0)
    static let current = v3

    /// Whether records of this format can carry sparse vectors.
    var holdsSparse: Bool { major >= 3 }

    /// The format of a new WAL: 3.0 when `sparse` (it is to hold a sparse vector) or when the WAL
    /// it follows (`previous`) was 3.0 (a collection that stores sparse vectors keeps doing so), else
    /// 2.0, which a Strata older than 3.0 still reads.
    static func forNewLog(after previous: WALVersion?, sparse: Bool = false) -> WALVersion {
        sparse || (previous?.holdsSparse ?? false) ? v3 : v2
    }

    /// Bytes of a record header in this format.
    var recordHeaderLength: Int { major == 1 ? 16 : 32 }

    var description: String { "\(major).\(minor)" }
}

package enum WALFormat {
    static let magic: [UInt8] = Array("STRATWAL".utf8)
    static let headerLength = 32
    static let typePut: UInt8 = 1
    static let typeDelete: UInt8 = 2
    /// Put flag bit 0: an upsert (informational: replay applies every put as an upsert).
    static let flagUpsert: UInt8 = 1
    /// Put flag bit 1 (3.0 only): every row ends with its sparse vector.
    static let flagSparse: UInt8 = 2

    /// The put flags `version` allows.
    static func putFlags(_ version: WALVersion) -> UInt8 { version.holdsSparse ? flagUpsert | flagSparse : flagUpsert }
    /// Largest record body accepted on replay (1 GiB): a bigger length is treated as corruption.
    package static let maximumBodyLength: UInt64 = 1 << 30

    static func header(sequence: UInt64, version: WALVersion = .current) -> [UInt8] {
        var w = ByteWriter(capacity: headerLength)
        w.raw(magic); w.u16(version.major); w.u16(version.minor); w.u32(0); w.u64(sequence)
        w.checksumTrailer()
        return w.bytes
    }

    /// The body length `encode` would produce, computed without encoding (O(rows x columns)).
    package static func bodyLength(_ record: WALRecord) -> UInt64 {
        switch record {
        case .put(let rows, _):
            var n: UInt64 = 8
            let sparse = record.hasSparse
            for row in rows {
                n += 8 + 4 * UInt64(row.vector.count)
                if sparse { n += 4 + 8 * UInt64(row.sparse?.indices.count ?? 0) }
                for v in row.values {
                    switch v {
                    case .null: n += 1
                    case .int64, .float64: n += 9
                    case .bool: n += 2
                    case .string(let s): n += 5 + UInt64(s.utf8.count)
                    case .stringList(let l): n += 5 + l.reduce(UInt64(0)) { $0 + 4 + UInt64($1.utf8.count) }
                    }
                }
            }
            return n
        case .delete(let ids):
            return 4 + 8 * UInt64(ids.count)
        }
    }

    /// Throws `.invalidArgument` when `record` would be over ``maximumBodyLength``: replay treats
    /// such a length as a torn tail, so writing it would lose it (and every later record) on reopen.
    package static func checkSize(_ record: WALRecord, path: String) throws(StrataError) {
        let n = bodyLength(record)
        guard n <= maximumBodyLength else {
            throw StrataError(.invalidArgument, "batch encodes to \(n) bytes, over the \(maximumBodyLength)-byte WAL record limit: split it", path: path)
        }
    }

    /// The bytes of `record` in `version`'s record format; `number` is its record number (2.0 and
    /// 3.0). A put with sparse vectors needs 3.0 (the caller checks ``WALVersion/holdsSparse``).
    static func encode(_ record: WALRecord, schema: SegmentSchema, version: WALVersion = .current, number: UInt64) -> [UInt8] {
        var body = ByteWriter(capacity: 1024)
        let type: UInt8, flags: UInt8
        switch record {
        case .put(let rows, let upsert):
            let sparse = record.hasSparse
            precondition(!sparse || version.holdsSparse, "a put with sparse vectors in a WAL \(version) record")
            type = typePut
            flags = (upsert ? 1 : 0) | (sparse ? flagSparse : 0)
            body.u32(UInt32(rows.count)); body.u32(UInt32(schema.dimension))
            for row in rows {
                body.u64(row.id)
                for x in row.vector { body.u32(x.bitPattern) }
                for v in row.values { encodeValue(v, into: &body) }
                if sparse {
                    let s = row.sparse ?? SparseVector(indices: [], values: [])
                    body.u32(UInt32(s.indices.count))
                    for i in s.indices { body.u32(i) }
                    for v in s.values { body.u32(v.bitPattern) }
                }
            }
        case .delete(let ids):
            type = typeDelete
            flags = 0
            body.u32(UInt32(ids.count))
            for id in ids { body.u64(id) }
        }
        var head = ByteWriter(capacity: version.recordHeaderLength + body.count)
        head.u32(UInt32(body.count)); head.u8(type); head.u8(flags); head.u16(0)
        if version.major == 1 {
            let checksum = Checksum.Streaming()
            head.bytes.withUnsafeBytes { checksum.update($0) }
            body.bytes.withUnsafeBytes { checksum.update($0) }
            head.u64(checksum.digest)
        } else {
            head.u64(number)
            head.u64(body.bytes.withUnsafeBytes { Checksum.xxh3($0) })
            head.checksumTrailer()
        }
        head.raw(body.bytes)
        return head.bytes
    }

    /// "put" / "delete" / "type N", for messages.
    static func typeName(_ type: UInt8) -> String {
        type == typePut ? "put" : type == typeDelete ? "delete" : "type \(type)"
    }

    static func encodeValue(_ v: PayloadValue, into w: inout ByteWriter) {
        switch v {
        case .null: w.u8(0)
        case .int64(let x): w.u8(1); w.i64(x)
        case .float64(let x): w.u8(2); w.f64(x)
        case .bool(let x): w.u8(3); w.u8(x ? 1 : 0)
        case .string(let s):
            w.u8(4)
            let b = Array(s.utf8)
            w.u32(UInt32(b.count)); w.raw(b)
        case .stringList(let l):
            w.u8(5); w.u32(UInt32(l.count))
            for s in l {
                let b = Array(s.utf8)
                w.u32(UInt32(b.count)); w.raw(b)
            }
        }
    }

    /// One row's sparse vector (3.0): u32 n, n indices, n weights; nil for n = 0. Anything but the
    /// canonical form the writer logs (within the entry limit) is damage.
    static func decodeSparse(_ r: inout ByteReader) throws(StrataError) -> SparseVector? {
        let n = try r.u32()
        guard n > 0 else { return nil }
        guard Int(n) <= SparseVector.maximumNonZeros, UInt64(n) * 8 <= UInt64(r.remaining) else {
            throw r.error("sparse vector of \(n) entries exceeds the record or the limit of \(SparseVector.maximumNonZeros)")
        }
        let at = r.absoluteOffset
        var indices = [UInt32](repeating: 0, count: Int(n)), values = [Float](repeating: 0, count: Int(n))
        for i in 0..<Int(n) { indices[i] = try r.u32() }
        for i in 0..<Int(n) { values[i] = Float(bitPattern: try r.u32()) }
        let s = SparseVector(indices: indices, values: values)
        guard s.isCanonical, indices[Int(n) - 1] <= SparseVector.maximumIndex else {
            throw StrataError(.corrupt, "sparse vector in WAL record is not canonical (indices strictly ascending, weights finite and non-zero)",
                              section: "wal", offset: at)
        }
        return s
    }

    static func decodeValue(_ r: inout ByteReader) throws(StrataError) -> PayloadValue {
        let at = r.absoluteOffset
        switch try r.u8() {
        case 0: return .null
        case 1: return .int64(try r.i64())
        case 2: return .float64(try r.f64())
        case 3: return .bool(try r.u8() != 0)
        case 4:
            let n = try r.u32()
            guard let s = String(validating: try r.slice(Int(n)), as: UTF8.self) else { throw r.error("bad UTF-8 in WAL string") }
            return .string(s)
        case 5:
            let count = try r.u32()
            guard UInt64(count) * 4 <= UInt64(r.remaining) else { throw r.error("string list count \(count) exceeds the record") }
            var l: [String] = []
            for _ in 0..<count {
                let n = try r.u32()
                guard let s = String(validating: try r.slice(Int(n)), as: UTF8.self) else { throw r.error("bad UTF-8 in WAL string") }
                l.append(s)
            }
            return .stringList(l)
        case let tag:
            throw StrataError(.corrupt, "unknown WAL value tag \(tag)", section: "wal", offset: at)
        }
    }

    /// Decodes one record body (its checksum already verified) of a WAL in `version`.
    static func decodeBody(type: UInt8, flags: UInt8, body: UnsafeRawBufferPointer, at offset: UInt64,
                           schema: SegmentSchema, version: WALVersion) throws(StrataError) -> WALRecord {
        var r = ByteReader(body, baseOffset: offset, section: "wal")
        switch type {
        case typePut:
            let sparse = flags & flagSparse != 0
            guard !sparse || version.holdsSparse else { throw r.error("a put with sparse vectors in a WAL \(version) record") }
            let count = try r.u32(), dim = try r.u32()
            guard Int(dim) == schema.dimension else { throw r.error("WAL record has dimension \(dim), collection has \(schema.dimension)") }
            let perRow = 8 + 4 * UInt64(dim) + (sparse ? 4 : 0)
            guard UInt64(count) * perRow <= UInt64(r.remaining) else { throw r.error("row count \(count) exceeds the record") }
            var rows: [BufferedInput] = []
            rows.reserveCapacity(Int(count))
            for _ in 0..<count {
                let id = try r.u64()
                var v = [Float](repeating: 0, count: Int(dim))
                for d in 0..<Int(dim) { v[d] = Float(bitPattern: try r.u32()) }
                var values: [PayloadValue] = []
                for _ in schema.columns { values.append(try decodeValue(&r)) }
                rows.append(BufferedInput(id: id, vector: v, values: values, sparse: sparse ? try decodeSparse(&r) : nil))
            }
            guard r.remaining == 0 else { throw r.error("trailing bytes in WAL record") }
            return .put(rows: rows, upsert: flags & flagUpsert != 0)
        case typeDelete:
            let count = try r.u32()
            guard UInt64(count) * 8 == UInt64(r.remaining) else { throw r.error("delete count \(count) does not match the record") }
            var ids: [UInt64] = []
            for _ in 0..<count { ids.append(try r.u64()) }
            return .delete(ids: ids)
        default:
            throw StrataError(.corrupt, "unknown WAL record type \(type)", section: "wal", offset: offset)
        }
    }
}

