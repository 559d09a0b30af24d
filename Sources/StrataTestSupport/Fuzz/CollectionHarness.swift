// The `collection` fuzz harness (tools/fuzz FuzzCollection, replayed by FuzzRegressionTests):
// collection files from arbitrary bytes. A template collection is made once through the API: two
// flushes (so a segment and a delete bitmap exist), then buffered inserts and deletes left in the
// WAL. An input's first byte picks the file it replaces (0 MANIFEST, 1 the current WAL, 2 the delete
// bitmap; modulo 3), whether its checksums are re-sealed first ((byte / 3) % 2 == 1, so that
// mutations reach the decoders), and the rest is that file's new content. Each input gets a fresh
// copy of the template; it is verified, opened read-only (count, get, search, stats) and then
// read-write (WAL replay and tail cut, cleanup). A thrown StrataError is fine; a trap or an
// AddressSanitizer report is a bug. For a replaced WAL the harness also checks the WAL rules
// (``CollectionHarness/walRuleViolation(dir:wal:roError:options:)``).
import Foundation
import Strata

/// The collection fuzz harness.
public enum CollectionHarness {
    /// The template collection's files and the names of the three fuzzed ones.
    public struct Template: Sendable {
        /// Every file of the template (name -> bytes), lock files left out.
        public var files: [String: Data]
        /// The fuzzed files: MANIFEST, the current WAL, the delete bitmap.
        public var targets: [String]
    }

    static let schema = SegmentSchema(dimension: 4, elementType: .float32, metric: .l2,
                                      columns: [ColumnSpec(name: "ver", type: .int64), ColumnSpec(name: "tag", type: .string, nullable: true)])

    static func rows(_ ids: some Sequence<UInt64>) -> [SegmentRow] {
        ids.map { id in
            SegmentRow(id: id, vector: (0..<4).map { Float((Int(id) * 7 + $0 * 3) % 11) - 5 },
                       payload: ["ver": .int64(Int64(id)), "tag": id % 3 == 0 ? .null : .string("t\(id)")])
        }
    }

    /// Makes the template collection in `scratch/template` and reads its files.
    public static func makeTemplate(in scratch: String) throws(StrataError) -> Template {
        let dir = scratch + "/template"
        var o = CollectionOptions()
        o.flushThresholdRows = 1_000_000
        o.index = nil
        o.obsoleteFileGraceSeconds = 3600
        o.rowsPerBlock = 4
        let c = try StrataCollection.create(path: dir, schema: schema, options: o)
        try c.insert(rows(1...12))
        _ = try c.flush()
        _ = try c.delete(ids: [2, 5, 9])
        _ = try c.flush()
        try c.insert(rows(20...24))
        try c.upsert(rows([3]))
        _ = try c.delete(ids: [4, 21])
        c.close()
        var files: [String: Data] = [:]
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        for n in names where !n.hasSuffix("lock") && n != "LOCK" {
            guard let bytes = FileManager.default.contents(atPath: dir + "/" + n) else {
                throw StrataError(.io, "cannot read the template file", path: dir + "/" + n)
            }
            files[n] = bytes
        }
        // The current WAL is the one with the highest sequence; the bitmap is the only .del file.
        guard let wal = names.filter({ $0.hasPrefix("wal-") }).sorted().last, let bitmap = names.first(where: { $0.hasSuffix(".del") }) else {
            throw StrataError(.notFound, "the template collection has no WAL or no delete bitmap", path: dir)
        }
        return Template(files: files, targets: ["MANIFEST", wal, bitmap])
    }

    /// The seeds: each fuzzed file of the template behind its selector byte, plus the WAL rewritten
    /// in format 1.0 (so that mutations reach the 1.0 reader too). Name -> input bytes.
    public static func seeds(_ template: Template) -> [(name: String, bytes: [UInt8])] {
        var seeds: [(name: String, bytes: [UInt8])] = []
        for (i, name) in template.targets.enumerated() {
            let kind = name == "MANIFEST" ? "manifest" : i == 1 ? "wal" : "bitmap"
            seeds.append(("seed-\(i)-\(kind)", [UInt8(i)] + [UInt8](template.files[name] ?? Data())))
        }
        seeds.append(("seed-1-wal-format1", [1] + Reseal.walAsFormat1([UInt8](template.files[template.targets[1]] ?? Data()))))
        return seeds
    }

    static func exercise(_ c: StrataCollection) {
        _ = try? c.count()
        for id in [1, 2, 3, 4, 12, 20, 21, 999] as [UInt64] { _ = try? c.get(id: id) }
        _ = try? c.search(query: [0, 1, -1, 2], options: SearchOptions(k: 5))
        _ = try? c.search(query: [0, 1, -1, 2], options: SearchOptions(k: 50, exact: true))
        _ = try? c.stats()
    }

    /// The harness body: byte 0 picks MANIFEST / WAL / bitmap (% 3) and re-sealing ((/ 3) % 2), the
    /// rest replaces that file in a fresh copy of the template in `scratch/input`; verify, open
    /// read-only, open read-write. Returns a violation of the WAL rules (the fuzz target traps on
    /// it), or nil.
    public static func run(_ data: [UInt8], template: Template, scratch: String) -> String? {
        guard let selector = data.first else { return nil }
        let which = Int(selector) % 3
        let target = template.targets[which]
        var content = Array(data.dropFirst())
        if (Int(selector) / 3) % 2 == 1 {
            if which == 1 { Reseal.wal(&content) } else { Reseal.trailer(&content) }
        }
        let dir = scratch + "/input"
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, bytes) in template.files {
            _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: name == target ? Data(content) : bytes)
        }
        var o = CollectionOptions()
        o.index = nil
        o.obsoleteFileGraceSeconds = 3600
        _ = try? StrataCollection.verify(path: dir)
        var roError: StrataError? = nil
        do {
            let c = try StrataCollection.open(path: dir, access: .readOnly, options: o)
            exercise(c)
            c.close()
        } catch {
            roError = error
        }
        if which == 1 { return walRuleViolation(dir: dir, wal: target, roError: roError, options: o) }
        if let c = try? StrataCollection.open(path: dir, access: .readWrite, options: o) {
            exercise(c)
            c.close()
        }
        return nil
    }

    /// The WAL rules (docs/COLLECTION-FORMAT.md C.4) as properties of an input that replaced the
    /// current WAL (`roError`: what the read-only open threw). The read-write open must agree with
    /// the read-only one; when it throws, the WAL is unchanged; when it drops a torn tail, the side
    /// file it names holds those bytes exactly and the WAL is cut there; when it drops nothing, the
    /// WAL is unchanged. A damaged record (section "wal", past the file header) is cut by
    /// `recoverWAL(apply: true)`, which keeps the whole WAL in its copy, after which the collection
    /// opens with the records kept. Returns the first violation, or nil.
    static func walRuleViolation(dir: String, wal: String, roError: StrataError?, options o: CollectionOptions) -> String? {
        let path = dir + "/" + wal
        guard let before = FileManager.default.contents(atPath: path) else { return nil }
        let rw: StrataCollection
        do {
            rw = try StrataCollection.open(path: dir, access: .readWrite, options: o)
        } catch {
            if FileManager.default.contents(atPath: path) != before { return "a refused read-write open changed the WAL (\(error))" }
            if roError == nil { return "read-write open threw \(error) where read-only opened" }
            guard error.section == "wal", error.code == .checksumMismatch || error.code == .corrupt, (error.offset ?? 0) >= 32,
                  let report = try? StrataCollection.recoverWAL(path: dir, apply: true) else { return nil }
            guard report.state == .damaged, report.applied, let copy = report.copyFile else { return "recover did not cut the damage: \(report.state)" }
            if FileManager.default.contents(atPath: dir + "/" + copy) != before { return "the recovery copy is not the whole WAL" }
            if FileManager.default.contents(atPath: path) != before.prefix(Int(report.keptBytes)) { return "recover did not cut at \(report.keptBytes)" }
            guard let c = try? StrataCollection.open(path: dir, access: .readWrite, options: o) else { return "the collection does not open after recover" }
            defer { c.close() }
            return c.recovery.records == report.keptRecords ? nil : "\(c.recovery.records) records replayed after recover, \(report.keptRecords) kept"
        }
        defer { rw.close() }
        exercise(rw)
        if let roError { return "read-only open threw \(roError) where read-write opened" }
        let after = FileManager.default.contents(atPath: path) ?? Data()
        let dropped = Int(rw.recovery.droppedBytes)
        if dropped == 0 { return after == before ? nil : "the WAL changed with nothing dropped" }
        guard let side = rw.recovery.tornTailFile, let kept = FileManager.default.contents(atPath: dir + "/" + side) else {
            return "\(dropped) torn bytes dropped without a side file"
        }
        if kept != before.suffix(dropped) { return "the side file \(side) does not hold the torn bytes" }
        return after == before.prefix(before.count - dropped) ? nil : "the WAL is not cut at the torn tail"
    }
}
