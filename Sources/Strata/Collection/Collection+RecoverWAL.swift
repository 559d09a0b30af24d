// `strata recover DIR`: the explicit way out of a damaged WAL (docs/COLLECTION-FORMAT.md C.4, "Recovery").
//
// A damaged WAL record makes every open refuse, so that nothing acknowledged is dropped silently.
// Recovery is the operator's decision: it reports what cutting would drop (records, rows, deleted
// ids, the id range when the records can be decoded), and only with `apply` copies the whole WAL to
// `wal-<seq>.log.damaged-<offset>` (durably) and then truncates the WAL at the damaged record.

import StrataFormat
import StrataIndex

/// What cutting a WAL at a damaged record drops (decoded as far as the bytes allow).
public struct WALLoss: Sendable, Equatable {
    /// Bytes from the damaged record (or the torn tail) to the end of the WAL.
    public var bytes: UInt64 = 0
    /// Whole records in those bytes, the damaged one included.
    public var records = 0
    /// Rows of the put records (inserts and upserts) and ids of the delete records among them.
    public var rows = 0
    /// Ids named by the delete records among them.
    public var deletedIds = 0
    /// False when a record or count could not be read (a damaged header or body), so `records`,
    /// `rows` and `deletedIds` are lower bounds.
    public var countsExact = true
    /// Smallest and largest id in the records that could be decoded.
    public var minId: UInt64? = nil
    /// Largest id in the records that could be decoded.
    public var maxId: UInt64? = nil
    /// False when some ids come from a record whose checksum failed (they may be damaged themselves)
    /// or some records could not be decoded.
    public var idsExact = true
    /// Bytes that could not be parsed as records at all.
    public var unreadableBytes: UInt64 = 0

    mutating func add(ids: [UInt64]) {
        for id in ids {
            minId = Swift.min(minId ?? id, id)
            maxId = Swift.max(maxId ?? id, id)
        }
    }
}

/// What ``StrataCollection/recoverWAL(path:apply:)`` found and did.
public struct WALRecoveryReport: Sendable {
    /// The state of the current WAL.
    public enum State: String, Sendable {
        /// Every record verifies: nothing to do.
        case sound
        /// A record cut short by a crash at the end (never acknowledged): not damage.
        case tornTail = "torn_tail"
        /// A complete record does not verify: every open refuses until it is cut.
        case damaged
    }

    /// The WAL's file name and format.
    public var wal: String
    /// The WAL's format version, `major.minor`.
    public var walFormat: String
    /// Whether the WAL is sound, ends in a torn tail, or holds a damaged record.
    public var state: State
    /// The damage found (file, section "wal", offset of the damaged record), when `state` is `.damaged`.
    public var damage: StrataError?
    /// Good records before the damaged record (or the torn tail), and where they end.
    public var keptRecords: Int
    /// Bytes from the start of the WAL to the end of the last good record.
    public var keptBytes: UInt64
    /// What cutting drops.
    public var lost: WALLoss
    /// Whether the WAL was changed (only with `apply`).
    public var applied: Bool
    /// Damaged, applied: the side file holding the whole WAL as it was before the cut.
    public var copyFile: String?
    /// Torn tail, applied: the side file holding the torn bytes.
    public var tornTailFile: String?
}

extension StrataCollection {
    /// Inspects the current WAL of the collection at `path` and, with `apply`, cuts a damaged record
    /// and everything after it (after copying the whole WAL to `wal-<seq>.log.damaged-<offset>`), or
    /// moves a torn tail to `wal-<seq>.log.torn-<offset>` as a read-write open would. Takes the writer
    /// lock (`.busy` when another process holds it). Throws for a damaged MANIFEST or WAL
    /// file header, which this does not repair.
    public static func recoverWAL(path: String, apply: Bool) throws(StrataError) -> WALRecoveryReport {
        guard FileSystem.isDirectory(path) else { throw StrataError(.io, "not a directory", path: path) }
        // Refuse a directory without a readable manifest before the lock file is created in it.
        _ = try Manifest.read(directory: path)
        guard let lock = try FileLock.acquire(CollectionFiles.writerLock(path), wait: false) else {
            throw StrataError(.busy, "another process has the collection open for writing: stop it first", path: path)
        }
        defer { lock.unlock() }
        let manifest = try Manifest.read(directory: path)
        let walName = CollectionFiles.walName(manifest.walSequence)
        let walPath = "\(path)/\(walName)"
        let bytes = try FileSystem.readAll(walPath)
        let version = try WALReader.parseHeader(Array(bytes.prefix(WALFormat.headerLength)), fileSize: UInt64(bytes.count),
                                                path: walPath, sequence: manifest.walSequence)
        let header = WALFormat.headerLength
        let scan = bytes.withUnsafeBytes { raw in
            WALReader.scanRecords(UnsafeRawBufferPointer(rebasing: raw[header...]), at: UInt64(header), version: version, nextRecord: 1,
                                  schema: manifest.schema, path: walPath)
        }
        var report = WALRecoveryReport(wal: walName, walFormat: version.description, state: .sound, damage: nil,
                                       keptRecords: scan.records.count, keptBytes: scan.validLength, lost: WALLoss(), applied: false,
                                       copyFile: nil, tornTailFile: nil)
        switch scan.end {
        case .clean:
            return report
        case .torn:
            report.state = .tornTail
            report.lost.bytes = scan.droppedBytes
            report.lost.unreadableBytes = scan.droppedBytes
            if apply {
                report.tornTailFile = try WALTornTail.cut(path: walPath, at: scan.validLength)
                report.applied = true
            }
        case .damaged(let error):
            report.state = .damaged
            report.damage = error
            let from = Int(scan.validLength)
            report.lost = bytes.withUnsafeBytes { raw in
                WALLossSurvey.survey(UnsafeRawBufferPointer(rebasing: raw[from...]), version: version, firstNumber: scan.nextRecordNumber,
                                     schema: manifest.schema)
            }
            if apply {
                // The copy first, durably: a crash before the truncation leaves the WAL as it was.
                report.copyFile = try WALSideFile.keep(bytes, wal: walName, kind: "damaged", offset: scan.validLength, directory: path)
                try WALSideFile.truncate(walPath, to: scan.validLength)
                report.applied = true
                let after = try WALReader.scan(path: walPath, sequence: manifest.walSequence, schema: manifest.schema)
                guard after.end == .clean, after.records.count == scan.records.count else {
                    throw StrataError(.io, "the WAL does not read back as cut (\(after.records.count) records, \(after.end))",
                                      path: walPath, section: "wal")
                }
            }
        }
        return report
    }
}

/// Counts what lies in the bytes from a damaged record to the end of a WAL.
enum WALLossSurvey {
    /// `raw` starts at the damaged record, which should carry record number `firstNumber` (2.0).
    static func survey(_ raw: UnsafeRawBufferPointer, version: WALVersion, firstNumber: UInt64, schema: SegmentSchema) -> WALLoss {
        var loss = WALLoss()
        loss.bytes = UInt64(raw.count)
        var pos = 0
        if version.major == 1 {
            while pos < raw.count {
                let left = raw.count - pos
                let length = left >= 16 ? Int(WALReader.u32(raw, pos)) : Int.max
                guard left >= 16, UInt64(length) <= WALFormat.maximumBodyLength, length <= left - 16 else {
                    if pos == 0 { loss.records += 1 }
                    loss.unreadableBytes += UInt64(left)
                    loss.countsExact = false
                    loss.idsExact = false
                    break
                }
                let checksum = Checksum.Streaming()
                checksum.update(UnsafeRawBufferPointer(rebasing: raw[pos..<(pos + 8)]))
                let body = UnsafeRawBufferPointer(rebasing: raw[(pos + 16)..<(pos + 16 + length)])
                checksum.update(body)
                loss.records += 1
                count(body, type: raw[pos + 4], flags: raw[pos + 5], verified: checksum.digest == WALReader.u64(raw, pos + 8),
                      schema: schema, version: version, into: &loss)
                pos += 16 + length
            }
            return loss
        }
        var expected = firstNumber
        while pos < raw.count {
            if let h = plausibleHeader(raw, pos, expected: expected, version: version) {
                if h.number > expected {
                    // Records whose headers could not be read lie in between.
                    loss.records += Int(h.number - expected)
                }
                loss.records += 1
                let body = UnsafeRawBufferPointer(rebasing: raw[(pos + 32)..<(pos + 32 + Int(h.length))])
                count(body, type: h.type, flags: h.flags, verified: Checksum.xxh3(body) == h.bodyChecksum, schema: schema,
                      version: version, into: &loss)
                pos += 32 + Int(h.length)
                expected = h.number + 1
                continue
            }
            // A header that does not verify: skip to the next one that does (by record number, not a
            // length that cannot be trusted); what lies between could not be read.
            var next = pos + 1
            while next < raw.count, plausibleHeader(raw, next, expected: expected, version: version) == nil { next += 1 }
            if next >= raw.count, pos == 0 { loss.records += 1 } // the damaged record, nothing readable after it
            loss.unreadableBytes += UInt64(next - pos)
            loss.countsExact = false
            loss.idsExact = false
            pos = next
        }
        return loss
    }

    /// A 2.0 header at `pos` whose checksum holds, that numbers a record at or after `expected` and
    /// whose body fits in `raw`.
    static func plausibleHeader(_ raw: UnsafeRawBufferPointer, _ pos: Int, expected: UInt64, version: WALVersion) -> WALReader.HeaderV2? {
        guard let h = WALReader.headerV2(raw, pos), h.number >= expected, h.number - expected < 1 << 32,
              WALReader.headerProblem(h, version: version) == nil, h.length <= UInt64(raw.count - pos - 32) else { return nil }
        return h
    }

    /// Adds one record's rows or deleted ids: decoded when possible, else the count field when it is
    /// consistent with the body length.
    static func count(_ body: UnsafeRawBufferPointer, type: UInt8, flags: UInt8, verified: Bool, schema: SegmentSchema,
                      version: WALVersion, into loss: inout WALLoss) {
        if !verified { loss.idsExact = false }
        if let r = try? WALFormat.decodeBody(type: type, flags: flags, body: body, at: 0, schema: schema, version: version) {
            switch r {
            case .put(let rows, _):
                loss.rows += rows.count
                loss.add(ids: rows.map(\.id))
            case .delete(let ids):
                loss.deletedIds += ids.count
                loss.add(ids: ids)
            }
            return
        }
        loss.countsExact = false
        loss.idsExact = false
        guard body.count >= 4 else { return }
        let n = UInt64(WALReader.u32(body, 0))
        if type == WALFormat.typePut, n * (8 + 4 * UInt64(schema.dimension)) <= UInt64(body.count) { loss.rows += Int(n) }
        if type == WALFormat.typeDelete, 4 + 8 * n == UInt64(body.count) { loss.deletedIds += Int(n) }
    }
}
