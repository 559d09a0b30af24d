// Reading a WAL (docs/COLLECTION-FORMAT.md C.4, "Replay"): the file header, then records from an offset until
// the end, a torn tail or damage.
//
// Only the last record of a WAL can be torn: every append is fdatasynced before the next begins, and
// a crash (or, for a reader, an append in progress) leaves a prefix of that one record. So a torn
// tail is bytes that are a proper prefix of a record: fewer than a record header, or a 2.0 header
// whose own checksum holds and whose body runs past the end of the file. Everything else that does
// not verify is damage to a complete record, wherever it is: a 2.0 header whose checksum fails while
// a whole header is present, a wrong record number, or a body whose checksum fails while all of its
// bytes are there. Damage is never dropped silently: reading throws, and `strata recover` cuts it
// (Collection+RecoverWAL.swift) after keeping a copy.
//
// Format 1.0 records have one checksum over header and body, so a damaged length cannot always be
// told from a torn one: 1.0 files are read with the old rules (a last record with a bad checksum is
// torn, an earlier one is damage), plus one check the old reader lacked: a length that runs past the
// end is torn only when no complete record starts after it (a torn tail is a prefix of one record).

import StrataFormat
import StrataIndex

/// How a scan of a WAL's records ended.
enum WALEnd: Equatable {
    /// At the end of the file, after a whole record.
    case clean
    /// The bytes from `validLength` to the end are a record cut short (the reason says how): a crash
    /// in the middle of an append, or, for a reader, an append in progress.
    case torn(String)
    /// The record at `validLength` is complete but does not verify (or, in a 1.0 file, has records
    /// after it). The error names file, section "wal" and the record's offset.
    case damaged(StrataError)
}

/// What a scan of a WAL found from its start offset on.
struct WALScan {
    /// The file's format.
    var version: WALVersion
    /// The good records, in order.
    var records: [WALRecord]
    /// Offset just past the last good record: the end of the file when `end` is `.clean`, else
    /// where the torn tail or the damaged record begins.
    var validLength: UInt64
    /// Number the next record after the good ones carries (2.0; counted the same way for 1.0).
    var nextRecordNumber: UInt64
    /// Size of the file when it was read.
    var fileLength: UInt64
    var end: WALEnd

    /// Bytes after `validLength`: a torn tail, or the damaged record and what follows it.
    var droppedBytes: UInt64 { fileLength - validLength }

    /// Whether the scan ended in a torn tail.
    var isTorn: Bool { if case .torn = end { return true }; return false }

    /// The damage found, if any.
    var damage: StrataError? { if case .damaged(let e) = end { return e }; return nil }
}

enum WALReader {
    /// Reads `path` from byte `offset` (32 for the whole log), where the record numbered
    /// `nextRecord` must begin. Throws for a missing or bad file header and for a damaged record;
    /// stops quietly at a torn tail (see the file comment).
    static func read(path: String, sequence: UInt64, schema: SegmentSchema, from offset: UInt64 = UInt64(WALFormat.headerLength),
                     nextRecord: UInt64 = 1) throws(StrataError) -> WALScan {
        let scan = try self.scan(path: path, sequence: sequence, schema: schema, from: offset, nextRecord: nextRecord)
        if let damage = scan.damage { throw damage }
        return scan
    }

    /// Like ``read(path:sequence:schema:from:nextRecord:)``, but returns damage in `end` instead of
    /// throwing it (for verify and recover).
    static func scan(path: String, sequence: UInt64, schema: SegmentSchema, from offset: UInt64 = UInt64(WALFormat.headerLength),
                     nextRecord: UInt64 = 1) throws(StrataError) -> WALScan {
        // The writer's open may cut a torn tail between this reader's fstat and its read: the read
        // then comes up short. That is the file changing under us, not damage: read it again.
        var attempt = 0
        while true {
            do {
                return try scanOnce(path: path, sequence: sequence, schema: schema, from: offset, nextRecord: nextRecord)
            } catch {
                attempt += 1
                guard error.code == .truncated, error.section == nil, attempt < 3 else { throw error }
            }
        }
    }

    private static func scanOnce(path: String, sequence: UInt64, schema: SegmentSchema, from offset: UInt64,
                                 nextRecord: UInt64) throws(StrataError) -> WALScan {
        let file = try SystemFile.openForReading(path)
        defer { file.close() }
        let size = try file.size()
        var header = [UInt8](repeating: 0, count: WALFormat.headerLength)
        if size >= UInt64(WALFormat.headerLength) {
            try header.withMutableBytes { (raw) throws(StrataError) in try file.read(into: raw, fromAbsoluteOffset: 0) }
        }
        let version = try parseHeader(header, fileSize: size, path: path, sequence: sequence)
        // Only the part after `offset` is read: a reader that follows the log reads each record once.
        let start = min(max(offset, UInt64(WALFormat.headerLength)), size)
        guard size - start <= UInt64(Int.max / 2) else { throw StrataError(.corrupt, "WAL too large", path: path, section: "wal") }
        var tail = [UInt8](repeating: 0, count: Int(size - start))
        if !tail.isEmpty {
            try tail.withMutableBytes { (raw) throws(StrataError) in try file.read(into: raw, fromAbsoluteOffset: start) }
        }
        return tail.withUnsafeBytes { raw in
            scanRecords(raw, at: start, version: version, nextRecord: nextRecord, schema: schema, path: path)
        }
    }

    /// Checks the 32-byte file header (`bytes` holds at least its first 32 bytes when the file is that
    /// long) and returns the format. `badMagic`, `checksumMismatch`, `unsupportedVersion`, `corrupt`.
    static func parseHeader(_ bytes: [UInt8], fileSize: UInt64, path: String, sequence: UInt64) throws(StrataError) -> WALVersion {
        guard fileSize >= UInt64(WALFormat.headerLength), bytes.count >= WALFormat.headerLength,
              bytes[0..<8].elementsEqual(WALFormat.magic) else {
            throw StrataError(.badMagic, "not a Strata WAL (or its header is torn)", path: path, section: "wal", offset: 0)
        }
        return try bytes.withBytes { (raw) throws(StrataError) -> WALVersion in
            guard Checksum.trailerMatches(raw, at: 24) else {
                throw StrataError(.checksumMismatch, "WAL header checksum mismatch", path: path, section: "wal", offset: 24)
            }
            let major = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
            let minor = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 10, as: UInt16.self))
            guard major >= 1 && major <= WALVersion.current.major else {
                throw StrataError(.unsupportedVersion, "WAL format \(major).\(minor); this build reads 1.x, 2.x and 3.x: upgrade Strata",
                                  path: path, section: "wal", offset: 8)
            }
            guard raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self) == 0 else {
                throw StrataError(.corrupt, "WAL header reserved bytes are not zero", path: path, section: "wal", offset: 12)
            }
            let seq = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            guard seq == sequence else {
                throw StrataError(.corrupt, "WAL holds sequence \(seq), manifest expects \(sequence)", path: path, section: "wal", offset: 16)
            }
            return WALVersion(major: major, minor: minor)
        }
    }

    /// Scans the records in `raw`, which holds the file from offset `base` to its end.
    static func scanRecords(_ raw: UnsafeRawBufferPointer, at base: UInt64, version: WALVersion, nextRecord: UInt64,
                            schema: SegmentSchema, path: String) -> WALScan {
        var records: [WALRecord] = []
        var pos = 0
        var number = nextRecord
        let end: WALEnd
        while true {
            let step = version.major == 1
                ? recordV1(raw, pos, base: base, schema: schema, path: path)
                : recordV2(raw, pos, base: base, number: number, version: version, schema: schema, path: path)
            switch step {
            case .record(let r, let length):
                records.append(r)
                pos += length
                number += 1
                continue
            case .stop(let e):
                end = e
            }
            break
        }
        return WALScan(version: version, records: records, validLength: base + UInt64(pos), nextRecordNumber: number,
                       fileLength: base + UInt64(raw.count), end: end)
    }

    /// One step of a scan: a good record and its length in bytes, or the end.
    enum Step {
        case record(WALRecord, Int)
        case stop(WALEnd)
    }

    static func u32(_ raw: UnsafeRawBufferPointer, _ at: Int) -> UInt32 { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    static func u64(_ raw: UnsafeRawBufferPointer, _ at: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }

    /// The fields of a 2.0 record header at `pos` whose header checksum holds (nil when fewer than
    /// 32 bytes are left or the checksum fails).
    struct HeaderV2 {
        var length: UInt64, type: UInt8, flags: UInt8, reserved: UInt16, number: UInt64, bodyChecksum: UInt64
    }

    static func headerV2(_ raw: UnsafeRawBufferPointer, _ pos: Int) -> HeaderV2? {
        guard raw.count - pos >= 32,
              Checksum.trailerMatches(UnsafeRawBufferPointer(rebasing: raw[pos...]), at: 24) else { return nil }
        return HeaderV2(length: UInt64(u32(raw, pos)), type: raw[pos + 4], flags: raw[pos + 5],
                        reserved: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: pos + 6, as: UInt16.self)),
                        number: u64(raw, pos + 8), bodyChecksum: u64(raw, pos + 16))
    }

    /// Why a 2.0/3.0 header that passed its checksum cannot be a record a writer of `version` wrote
    /// (nil when fine). The sparse flag is unknown in 2.0.
    static func headerProblem(_ h: HeaderV2, version: WALVersion) -> String? {
        if h.type != WALFormat.typePut && h.type != WALFormat.typeDelete { return "unknown record type \(h.type)" }
        if h.reserved != 0 { return "reserved bytes are not zero" }
        if h.flags & ~(h.type == WALFormat.typePut ? WALFormat.putFlags(version) : 0) != 0 {
            return "unknown flags 0x\(String(h.flags, radix: 16)) for WAL \(version)"
        }
        if h.length > WALFormat.maximumBodyLength { return "body length \(h.length) is over the 1 GiB limit" }
        return nil
    }

    static func recordV2(_ raw: UnsafeRawBufferPointer, _ pos: Int, base: UInt64, number: UInt64, version: WALVersion,
                         schema: SegmentSchema, path: String) -> Step {
        let left = raw.count - pos
        let at = base + UInt64(pos)
        func damage(_ code: StrataError.Code, _ message: String) -> Step {
            .stop(.damaged(StrataError(code, "WAL record \(number) at offset \(at): \(message); the record is complete, so this is damage, "
                                       + "not a torn write (`strata recover` drops it and every later record, after keeping a copy)",
                                       path: path, section: "wal", offset: at)))
        }
        if left == 0 { return .stop(.clean) }
        if left < 32 { return .stop(.torn("\(left) bytes of a record header (32 needed)")) }
        guard let h = headerV2(raw, pos) else { return damage(.checksumMismatch, "record header checksum mismatch with a whole header present") }
        guard h.number == number else { return damage(.corrupt, "record number \(h.number), expected \(number)") }
        if let problem = headerProblem(h, version: version) { return damage(.corrupt, problem) }
        guard h.length <= UInt64(left - 32) else {
            return .stop(.torn("record \(number) has \(left - 32) of its \(h.length) body bytes"))
        }
        let end = pos + 32 + Int(h.length)
        let body = UnsafeRawBufferPointer(rebasing: raw[(pos + 32)..<end])
        guard Checksum.xxh3(body) == h.bodyChecksum else {
            return damage(.checksumMismatch, "\(WALFormat.typeName(h.type)) body checksum mismatch (\(h.length) body bytes, all present)")
        }
        do throws(StrataError) {
            let r = try WALFormat.decodeBody(type: h.type, flags: h.flags, body: body, at: at + 32, schema: schema, version: version)
            return .record(r, end - pos)
        } catch {
            // The checksums matched, so these are the bytes that were written: a bug or deliberate
            // damage, not a torn write. Refuse rather than silently drop data.
            var e = error.inFile(path)
            e.message = "WAL record \(number) at offset \(at): \(e.message)"
            return .stop(.damaged(e))
        }
    }

    static func recordV1(_ raw: UnsafeRawBufferPointer, _ pos: Int, base: UInt64, schema: SegmentSchema, path: String) -> Step {
        let left = raw.count - pos
        let at = base + UInt64(pos)
        if left == 0 { return .stop(.clean) }
        if left < 16 { return .stop(.torn("\(left) bytes of a record header (16 needed)")) }
        let length = UInt64(u32(raw, pos))
        let type = raw[pos + 4], flags = raw[pos + 5]
        guard length <= WALFormat.maximumBodyLength, length <= UInt64(left - 16) else {
            if let later = laterCompleteRecordV1(raw, after: pos) {
                return .stop(.damaged(StrataError(.corrupt,
                                                  "WAL record at offset \(at) has a length of \(length), past the end of the file, but a complete "
                                                  + "record follows at offset \(base + UInt64(later)) (damage, not a torn write; `strata recover` "
                                                  + "drops it and every later record, after keeping a copy)",
                                                  path: path, section: "wal", offset: at)))
            }
            return .stop(.torn("a record length of \(length) runs past the end of the file (format 1.0)"))
        }
        let end = pos + 16 + Int(length)
        let checksum = Checksum.Streaming()
        checksum.update(UnsafeRawBufferPointer(rebasing: raw[pos..<(pos + 8)]))
        checksum.update(UnsafeRawBufferPointer(rebasing: raw[(pos + 16)..<end]))
        guard checksum.digest == u64(raw, pos + 8) else {
            // Format 1.0 cannot tell a damaged last record from a torn one (one checksum covers the length).
            if end == raw.count { return .stop(.torn("the last record's checksum does not match (format 1.0 cannot tell this from damage)")) }
            return .stop(.damaged(StrataError(.checksumMismatch,
                                              "WAL record checksum mismatch at offset \(at) with \(raw.count - end) bytes of later records after it "
                                              + "(damage, not a torn write; `strata recover` drops it and every later record, after keeping a copy)",
                                              path: path, section: "wal", offset: at)))
        }
        do throws(StrataError) {
            let r = try WALFormat.decodeBody(type: type, flags: flags, body: UnsafeRawBufferPointer(rebasing: raw[(pos + 16)..<end]),
                                             at: at + 16, schema: schema, version: .v1)
            return .record(r, end - pos)
        } catch {
            var e = error.inFile(path)
            e.message = "WAL record at offset \(at): \(e.message)"
            return .stop(.damaged(e))
        }
    }

    /// Format 1.0: the offset of the first complete record that starts after `pos` (a plausible
    /// header: known type and flags, reserved bytes zero, a length within the bytes; then a matching
    /// checksum), or nil. The plausibility checks come first, so the scan stays close to linear.
    static func laterCompleteRecordV1(_ raw: UnsafeRawBufferPointer, after pos: Int) -> Int? {
        var p = pos + 1
        while raw.count - p >= 16 {
            defer { p += 1 }
            let type = raw[p + 4], flags = raw[p + 5]
            guard (type == WALFormat.typePut && flags <= 1) || (type == WALFormat.typeDelete && flags == 0),
                  raw[p + 6] == 0, raw[p + 7] == 0 else { continue }
            let length = UInt64(u32(raw, p))
            guard length <= WALFormat.maximumBodyLength, length <= UInt64(raw.count - p - 16) else { continue }
            let end = p + 16 + Int(length)
            let checksum = Checksum.Streaming()
            checksum.update(UnsafeRawBufferPointer(rebasing: raw[p..<(p + 8)]))
            checksum.update(UnsafeRawBufferPointer(rebasing: raw[(p + 16)..<end]))
            if checksum.digest == u64(raw, p + 8) { return p }
        }
        return nil
    }

    /// Creates `wal-<sequence>.log` in format `version` with only its header, durably (temp,
    /// fsync, rename, fsync dir).
    static func create(directory: String, sequence: UInt64, version: WALVersion) throws(StrataError) {
        try publishAtomically(WALFormat.header(sequence: sequence, version: version), to: "\(directory)/\(CollectionFiles.walName(sequence))")
    }
}
