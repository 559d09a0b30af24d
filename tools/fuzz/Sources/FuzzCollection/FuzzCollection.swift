// libFuzzer target: collection files from arbitrary bytes (issue 6).
//
// A template collection is made once through the API: two flushes (so a segment and a delete bitmap
// exist), then buffered inserts and deletes left in the WAL. An input's first byte picks the file it
// replaces (0 MANIFEST, 1 the current WAL, 2 the delete bitmap; modulo 3), whether its checksums are
// re-sealed first ((byte / 3) % 2 == 1, so that mutations reach the decoders), and the rest is that
// file's new content. Each input gets a fresh copy of the template; it is opened read-only (count, get,
// search, verify) and then read-write (WAL replay and tail cut, cleanup), and searched again. A thrown
// StrataError is fine; a trap or an AddressSanitizer report is a bug. For a replaced WAL the harness
// also checks the WAL rules (`walRuleViolation`: torn tails kept byte for byte in a side file, refused
// opens change nothing, damage recovered by `recoverWAL`) and traps on a violation.
// Mirrored by `FuzzHarness.collection` in Tests/StrataTests/FuzzRegressionTests.swift.
//
// `STRATA_FUZZ_WRITE_SEEDS=DIR` writes the three template files as seeds into DIR, plus the WAL
// rewritten in format 1.0, and exits.
import Foundation
import FuzzSupport
import Strata

let fuzzSchema = SegmentSchema(dimension: 4, elementType: .float32, metric: .l2,
                               columns: [ColumnSpec(name: "ver", type: .int64), ColumnSpec(name: "tag", type: .string, nullable: true)])

func fuzzRows(_ ids: some Sequence<UInt64>) -> [SegmentRow] {
    ids.map { id in
        SegmentRow(id: id, vector: (0..<4).map { Float((Int(id) * 7 + $0 * 3) % 11) - 5 },
                   payload: ["ver": .int64(Int64(id)), "tag": id % 3 == 0 ? .null : .string("t\(id)")])
    }
}

/// The template: directory plus the names of the three fuzzed files.
struct Template {
    var directory: String
    var files: [String: Data]
    var targets: [String]  // [MANIFEST, wal, bitmap]
}

private let template: Template = {
    let root = NSTemporaryDirectory() + "strata-fuzz-collection-\(getpid())"
    try? FileManager.default.removeItem(atPath: root)
    try! FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "strata-fuzz-collection-\(getpid())") }
    let dir = root + "/template"
    var o = CollectionOptions()
    o.flushThresholdRows = 1_000_000
    o.index = nil
    o.obsoleteFileGraceSeconds = 3600
    o.rowsPerBlock = 4
    do {
        let c = try StrataCollection.create(path: dir, schema: fuzzSchema, options: o)
        try c.insert(fuzzRows(1...12))
        _ = try c.flush()
        _ = try c.delete(ids: [2, 5, 9])
        _ = try c.flush()
        try c.insert(fuzzRows(20...24))
        try c.upsert(fuzzRows([3]))
        _ = try c.delete(ids: [4, 21])
        c.close()
    } catch {
        fatalError("cannot build the template collection: \(error)")
    }
    var files: [String: Data] = [:]
    let names = try! FileManager.default.contentsOfDirectory(atPath: dir)
    for n in names where !n.hasSuffix("lock") && n != "LOCK" {
        files[n] = try! Data(contentsOf: URL(fileURLWithPath: dir + "/" + n))
    }
    // The current WAL is the one with the highest sequence; the bitmap is the only .del file.
    let wal = names.filter { $0.hasPrefix("wal-") }.sorted().last!
    let bitmap = names.first { $0.hasSuffix(".del") }!
    return Template(directory: root, files: files, targets: ["MANIFEST", wal, bitmap])
}()

func exerciseCollection(_ c: StrataCollection) {
    _ = try? c.count()
    for id in [1, 2, 3, 4, 12, 20, 21, 999] as [UInt64] { _ = try? c.get(id: id) }
    _ = try? c.search(query: [0, 1, -1, 2], options: SearchOptions(k: 5))
    _ = try? c.search(query: [0, 1, -1, 2], options: SearchOptions(k: 50, exact: true))
    _ = try? c.stats()
}

/// The harness body: bytes in, no trap out.
func fuzzCollection(_ data: Data) {
    guard let selector = data.first else { return }
    let which = Int(selector) % 3
    let target = template.targets[which]
    var content = [UInt8](data.dropFirst())
    if (Int(selector) / 3) % 2 == 1 {
        switch which {
        case 1: Reseal.wal(&content)
        default: Reseal.trailer(&content)
        }
    }
    let dir = template.directory + "/input"
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
        exerciseCollection(c)
        c.close()
    } catch {
        roError = error
    }
    if which == 1 {
        if let violation = walRuleViolation(dir: dir, wal: target, roError: roError, options: o) { fatalError("WAL rule violated: \(violation)") }
    } else if let c = try? StrataCollection.open(path: dir, access: .readWrite, options: o) {
        exerciseCollection(c)
        c.close()
    }
}

/// The WAL rules (docs/COLLECTION-FORMAT.md C.4) as properties of an input that replaced the current WAL
/// (`roError`: what the read-only open threw). The read-write open must agree with the read-only one;
/// when it throws, the WAL is unchanged; when it drops a torn tail, the side file it names holds those
/// bytes exactly and the WAL is cut there; when it drops nothing, the WAL is unchanged. A damaged
/// record (section "wal", past the file header) is cut by `recoverWAL(apply: true)`, which keeps the
/// whole WAL in its copy, after which the collection opens with the records kept. Returns the first
/// violation, or nil.
func walRuleViolation(dir: String, wal: String, roError: StrataError?, options o: CollectionOptions) -> String? {
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
    exerciseCollection(rw)
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

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let bytes, count > 0 else { return 0 }
    fuzzCollection(Data(bytes: bytes, count: count))
    return 0
}

// SwiftPM links an executable target with `--defsym main=FuzzCollection_main` and, under
// -parse-as-library, no such entry point is generated; so define it and hand over to libFuzzer's
// driver (the archive's own `main` is then never pulled in).
@_silgen_name("LLVMFuzzerRunDriver")
func llvmFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("FuzzCollection_main")
public func fuzzCollectionMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    // Seed mode: write the template files and stop (outside libFuzzer, which calls exit() a crash).
    if let seedDir = ProcessInfo.processInfo.environment["STRATA_FUZZ_WRITE_SEEDS"] {
        try? FileManager.default.createDirectory(atPath: seedDir, withIntermediateDirectories: true)
        for (i, name) in template.targets.enumerated() {
            var seed = Data([UInt8(i)])
            seed.append(template.files[name]!)
            _ = FileManager.default.createFile(atPath: seedDir + "/seed-\(i)-\(name == "MANIFEST" ? "manifest" : i == 1 ? "wal" : "bitmap")", contents: seed)
        }
        // The same WAL in format 1.0, so that mutations reach the 1.0 reader too.
        let wal1 = Reseal.walAsFormat1([UInt8](template.files[template.targets[1]]!))
        _ = FileManager.default.createFile(atPath: seedDir + "/seed-1-wal-format1", contents: Data([1] + wal1))
        return 0
    }
    var argc = argc
    var argv = argv
    return llvmFuzzerRunDriver(&argc, &argv) { fuzzTestOneInput($0, $1) }
}
