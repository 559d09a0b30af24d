// libFuzzer target: collection files from arbitrary bytes (issue 6).
//
// A template collection is made once through the API: two flushes (so a segment and a delete bitmap
// exist), then buffered inserts and deletes left in the WAL. An input's first byte picks the file it
// replaces (0 MANIFEST, 1 the current WAL, 2 the delete bitmap; modulo 3), whether its checksums are
// re-sealed first ((byte / 3) % 2 == 1, so that mutations reach the decoders), and the rest is that
// file's new content. Each input gets a fresh copy of the template; it is opened read-only (count, get,
// search, verify) and then read-write (WAL replay and tail cut, cleanup), and searched again. A thrown
// StrataError is fine; a trap or an AddressSanitizer report is a bug.
// Mirrored by `FuzzHarness.collection` in Tests/StrataTests/FuzzRegressionTests.swift.
//
// `STRATA_FUZZ_WRITE_SEEDS=DIR` writes the three template files as seeds into DIR and exits.
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
    if let c = try? StrataCollection.open(path: dir, access: .readOnly, options: o) {
        exerciseCollection(c)
        c.close()
    }
    if let c = try? StrataCollection.open(path: dir, access: .readWrite, options: o) {
        exerciseCollection(c)
        c.close()
    }
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
        return 0
    }
    var argc = argc
    var argv = argv
    return llvmFuzzerRunDriver(&argc, &argv) { fuzzTestOneInput($0, $1) }
}
