// The write-ahead log of a collection: every insert/upsert batch and every delete is appended here
// and fsynced before it is acknowledged. Records since the last flush are replayed on open.
// Layout (docs/FORMAT.md, "Collections", C.4):
//
//   file header (32 B): magic "STRATWAL", u16 major 1, u16 minor 0, u32 reserved 0,
//                       u64 sequence, u64 XXH3-64 of bytes 0..<24
//   records, back to back from offset 32:
//     0  4  u32 body length L
//     4  1  u8 type: 1 put (insert/upsert rows), 2 delete (ids)
//     5  1  u8 flags: for put, bit 0 = upsert; 0 for delete
//     6  2  reserved, 0
//     8  8  u64 XXH3-64 of record bytes 0..<8 followed by the L body bytes
//     16 L  body
//   put body:    u32 row count, u32 dimension, then per row: u64 id, dimension x f32 (as given),
//                one tagged value per schema column (tag u8: 0 null, 1 int64 (8), 2 float64 (8),
//                3 bool (1), 4 string (u32 length + UTF-8), 5 string list (u32 count, then
//                u32 length + UTF-8 each))
//   delete body: u32 count, count x u64 id
//
// Replay stops at the first record that is short (length runs past the end of the file) or whose
// checksum does not match while it ends exactly at the end of the file: a torn tail from a crash
// mid-append. Records before it are kept; the writer truncates the file there before appending
// again. A record whose checksum does not match but that is followed by more bytes is not a torn
// write (every append is fsynced before the next begins, so only the last record can be torn): it
// is damage, and reading throws `.checksumMismatch` naming the record's offset rather than
// silently dropping the acknowledged records after it.
#if canImport(Glibc)
import Glibc
#endif

/// One decoded WAL record.
enum WALRecord: Equatable {
    /// Rows to insert (`upsert` false) or upsert; values in schema column order.
    case put(rows: [BufferedInput], upsert: Bool)
    /// Ids to delete.
    case delete(ids: [UInt64])
}

/// A row as the caller gave it, after validation: id, vector (not normalised), positional values.
struct BufferedInput: Equatable {
    var id: UInt64
    var vector: [Float]
    var values: [PayloadValue]
}

enum WALFormat {
    static let magic: [UInt8] = Array("STRATWAL".utf8)
    static let headerLength = 32
    static let recordHeaderLength = 16
    static let typePut: UInt8 = 1
    static let typeDelete: UInt8 = 2
    /// Largest record body accepted on replay (1 GiB): a bigger length is treated as corruption.
    static let maximumBodyLength: UInt64 = 1 << 30

    static func header(sequence: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: headerLength)
        w.raw(magic); w.u16(1); w.u16(0); w.u32(0); w.u64(sequence)
        let c = w.bytes.withUnsafeBytes { Checksum.xxh3($0) }
        w.u64(c)
        return w.bytes
    }

    /// The body length `encode` would produce, computed without encoding (O(rows x columns)).
    static func bodyLength(_ record: WALRecord) -> UInt64 {
        switch record {
        case .put(let rows, _):
            var n: UInt64 = 8
            for row in rows {
                n += 8 + 4 * UInt64(row.vector.count)
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
    static func checkSize(_ record: WALRecord, path: String) throws(StrataError) {
        let n = bodyLength(record)
        guard n <= maximumBodyLength else {
            throw StrataError(.invalidArgument, "batch encodes to \(n) bytes, over the \(maximumBodyLength)-byte WAL record limit: split it", path: path)
        }
    }

    static func encode(_ record: WALRecord, schema: SegmentSchema) -> [UInt8] {
        var body = ByteWriter(capacity: 1024)
        let type: UInt8, flags: UInt8
        switch record {
        case .put(let rows, let upsert):
            type = typePut
            flags = upsert ? 1 : 0
            body.u32(UInt32(rows.count)); body.u32(UInt32(schema.dimension))
            for row in rows {
                body.u64(row.id)
                for x in row.vector { body.u32(x.bitPattern) }
                for v in row.values { encodeValue(v, into: &body) }
            }
        case .delete(let ids):
            type = typeDelete
            flags = 0
            body.u32(UInt32(ids.count))
            for id in ids { body.u64(id) }
        }
        var head = ByteWriter(capacity: recordHeaderLength + body.count)
        head.u32(UInt32(body.count)); head.u8(type); head.u8(flags); head.u16(0)
        let checksum = Checksum.Streaming()
        head.bytes.withUnsafeBytes { checksum.update($0) }
        body.bytes.withUnsafeBytes { checksum.update($0) }
        head.u64(checksum.digest)
        head.raw(body.bytes)
        return head.bytes
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

    /// Decodes one record body (its checksum already verified).
    static func decodeBody(type: UInt8, flags: UInt8, body: UnsafeRawBufferPointer, at offset: UInt64,
                           schema: SegmentSchema) throws(StrataError) -> WALRecord {
        var r = ByteReader(body, baseOffset: offset, section: "wal")
        switch type {
        case typePut:
            let count = try r.u32(), dim = try r.u32()
            guard Int(dim) == schema.dimension else { throw r.error("WAL record has dimension \(dim), collection has \(schema.dimension)") }
            guard UInt64(count) * (8 + 4 * UInt64(dim)) <= UInt64(r.remaining) else { throw r.error("row count \(count) exceeds the record") }
            var rows: [BufferedInput] = []
            rows.reserveCapacity(Int(count))
            for _ in 0..<count {
                let id = try r.u64()
                var v = [Float](repeating: 0, count: Int(dim))
                for d in 0..<Int(dim) { v[d] = Float(bitPattern: try r.u32()) }
                var values: [PayloadValue] = []
                for _ in schema.columns { values.append(try decodeValue(&r)) }
                rows.append(BufferedInput(id: id, vector: v, values: values))
            }
            guard r.remaining == 0 else { throw r.error("trailing bytes in WAL record") }
            return .put(rows: rows, upsert: flags & 1 != 0)
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

/// Result of reading a WAL: the good records and where the good prefix ends.
struct WALReadResult {
    var records: [WALRecord]
    /// Byte offset just past the last good record (the file length when nothing was torn).
    var validLength: UInt64
    /// Bytes after `validLength` (a torn or corrupt tail that replay dropped).
    var droppedBytes: UInt64
}

enum WALReader {
    /// Reads `path` from byte `offset` (32 for the whole log). Throws for a missing or bad file
    /// header; a bad record ends the read (see the file comment).
    static func read(path: String, sequence: UInt64, schema: SegmentSchema, from offset: UInt64 = UInt64(WALFormat.headerLength)) throws(StrataError) -> WALReadResult {
        let file = try SystemFile.openForReading(path)
        defer { file.close() }
        let size = try file.size()
        var header = [UInt8](repeating: 0, count: WALFormat.headerLength)
        if size >= UInt64(WALFormat.headerLength) {
            try header.withMutableBytes { (raw) throws(StrataError) in try file.read(into: raw, fromAbsoluteOffset: 0) }
        }
        guard size >= UInt64(WALFormat.headerLength), header[0..<8].elementsEqual(WALFormat.magic) else {
            throw StrataError(.badMagic, "not a Strata WAL (or its header is torn)", path: path, section: "wal", offset: 0)
        }
        try header.withBytes { (raw) throws(StrataError) in
            let c = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
            guard Checksum.xxh3(UnsafeRawBufferPointer(rebasing: raw[0..<24])) == c else {
                throw StrataError(.checksumMismatch, "WAL header checksum mismatch", path: path, section: "wal", offset: 24)
            }
            let major = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
            guard major == 1 else {
                throw StrataError(.unsupportedVersion, "WAL major \(major); this build reads 1: upgrade Strata", path: path, section: "wal", offset: 8)
            }
            let seq = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            guard seq == sequence else {
                throw StrataError(.corrupt, "WAL holds sequence \(seq), manifest expects \(sequence)", path: path, section: "wal", offset: 16)
            }
        }
        // Only the part after `offset` is read: a reader that follows the log reads each record once.
        let start = min(max(offset, UInt64(WALFormat.headerLength)), size)
        guard size - start <= UInt64(Int.max / 2) else { throw StrataError(.corrupt, "WAL too large", path: path, section: "wal") }
        var tail = [UInt8](repeating: 0, count: Int(size - start))
        if !tail.isEmpty {
            try tail.withMutableBytes { (raw) throws(StrataError) in try file.read(into: raw, fromAbsoluteOffset: start) }
        }
        return try tail.withBytes { (raw) throws(StrataError) -> WALReadResult in
            var records: [WALRecord] = []
            var pos = 0
            let count = raw.count
            while count - pos >= WALFormat.recordHeaderLength {
                let length = UInt64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: pos, as: UInt32.self)))
                let type = raw[pos + 4], flags = raw[pos + 5]
                guard length <= WALFormat.maximumBodyLength,
                      length <= UInt64(count - pos - WALFormat.recordHeaderLength) else { break }
                let end = pos + WALFormat.recordHeaderLength + Int(length)
                let stored = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: pos + 8, as: UInt64.self))
                let checksum = Checksum.Streaming()
                checksum.update(UnsafeRawBufferPointer(rebasing: raw[pos..<(pos + 8)]))
                checksum.update(UnsafeRawBufferPointer(rebasing: raw[(pos + 16)..<end]))
                guard checksum.digest == stored else {
                    if end == count { break }  // the last record: torn by a crash mid-append
                    throw StrataError(.checksumMismatch,
                                      "WAL record checksum mismatch with \(count - end) bytes of later records after it (damage, not a torn write)",
                                      path: path, section: "wal", offset: start + UInt64(pos))
                }
                do throws(StrataError) {
                    records.append(try WALFormat.decodeBody(type: type, flags: flags, body: UnsafeRawBufferPointer(rebasing: raw[(pos + 16)..<end]),
                                                            at: start + UInt64(pos + 16), schema: schema))
                } catch {
                    // The checksum matched, so these are the bytes that were written: a real bug or
                    // deliberate damage, not a torn write. Refuse rather than silently drop data.
                    throw error.inFile(path)
                }
                pos = end
            }
            return WALReadResult(records: records, validLength: start + UInt64(pos), droppedBytes: UInt64(count - pos))
        }
    }

    /// Creates `wal-<sequence>.log` with only its header, durably (temp, fsync, rename, fsync dir).
    static func create(directory: String, sequence: UInt64) throws(StrataError) {
        try CollectionFS.writeAtomically(WALFormat.header(sequence: sequence), to: "\(directory)/\(CollectionFiles.walName(sequence))")
    }
}

/// Appends records to one WAL file; every append is fsynced (fdatasync) before it returns.
final class WALWriter {
    let path: String
    let sequence: UInt64
    private var descriptor: Int32
    /// Current end of the log.
    private(set) var length: UInt64

    /// Opens an existing WAL for appending at `validLength`, truncating anything after it (a torn tail).
    init(path: String, sequence: UInt64, validLength: UInt64) throws(StrataError) {
        self.path = path
        self.sequence = sequence
        descriptor = try CollectionFS.openReadWrite(path)
        length = validLength
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw SystemFile.ioError("fstat failed", path: path) }
        if UInt64(info.st_size) != validLength {
            guard ftruncate(descriptor, off_t(validLength)) == 0 else { throw SystemFile.ioError("ftruncate failed", path: path) }
            guard retryOnInterrupt({ fsync(descriptor) }) == 0 else { throw SystemFile.ioError("fsync failed", path: path) }
        }
    }

    deinit { close() }

    func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }

    /// Appends `bytes` and makes them durable. On failure the caller must treat the log as unusable
    /// (a write may have partly reached the disk; replay drops the partial record).
    func append(_ bytes: [UInt8]) throws(StrataError) {
        guard descriptor >= 0 else { throw StrataError(.io, "WAL is closed", path: path) }
        try bytes.withBytes { (raw) throws(StrataError) in
            var done = 0
            while done < raw.count {
                let n = retryOnInterrupt { pwrite(descriptor, raw.baseAddress! + done, raw.count - done, off_t(length) + off_t(done)) }
                guard n > 0 else { throw SystemFile.ioError("WAL write failed", path: path, offset: length + UInt64(done)) }
                done += n
            }
        }
        guard retryOnInterrupt({ fdatasync(descriptor) }) == 0 else { throw SystemFile.ioError("WAL fdatasync failed", path: path) }
        length += UInt64(bytes.count)
    }
}
