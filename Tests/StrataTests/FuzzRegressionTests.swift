// Replays the fuzz regression corpus (Fixtures/fuzz-regressions/<target>/) through the harnesses of
// the libFuzzer targets in tools/fuzz, so that every crasher ever found stays fixed in the normal
// suite. `FuzzHarness` mirrors tools/fuzz/Sources/FuzzSegment/FuzzSegment.swift and
// tools/fuzz/Sources/FuzzCollection/FuzzCollection.swift: keep the two in sync (the fuzz package is
// separate so the main build never compiles sanitizer flags, hence the copy). A regression passes
// when the harness returns: a thrown StrataError is a fine outcome, a trap kills the test process.
import Foundation
import XCTest
@testable import Strata

#if canImport(Glibc)
import Glibc
#endif

/// Re-sealing of mutated inputs (mirror of tools/fuzz/Sources/FuzzSupport/Reseal.swift).
enum Reseal {
    static func xxh3(_ b: [UInt8], _ range: Range<Int>) -> UInt64 { b[range].withUnsafeBytes { Checksum.xxh3($0) } }
    static func load64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) } }
    static func load32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) } }
    static func store64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) { for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }

    static func segment(_ b: inout [UInt8]) {
        guard b.count >= 4160 else { return }
        store64(&b, 56, xxh3(b, 0..<56))
        let footer = b.count - 64
        let dirOffset = load64(b, footer), dirLength = load64(b, footer + 8)
        if dirOffset <= UInt64(footer), dirLength <= UInt64(footer) - dirOffset {
            store64(&b, footer + 24, xxh3(b, Int(dirOffset)..<Int(dirOffset + dirLength)))
        }
        store64(&b, footer + 48, xxh3(b, footer..<(footer + 48)))
    }

    static func trailer(_ b: inout [UInt8]) {
        guard b.count >= 16 else { return }
        store64(&b, b.count - 16, xxh3(b, 0..<(b.count - 16)))
    }

    static func wal(_ b: inout [UInt8]) {
        guard b.count >= 32 else { return }
        store64(&b, 24, xxh3(b, 0..<24))
        var at = 32
        while b.count - at >= 16 {
            let length = Int(load32(b, at))
            guard length <= b.count - at - 16 else { break }
            store64(&b, at + 8, xxh3(Array(b[at..<(at + 8)]) + b[(at + 16)..<(at + 16 + length)], 0..<(8 + length)))
            at += 16 + length
        }
    }
}

/// The fuzz harness bodies, run on one input each.
enum FuzzHarness {
    /// Segment target: the input as given and, if re-sealing changes it, re-sealed.
    static func segment(_ data: Data, scratch: String) {
        segmentOnce(data, scratch: scratch)
        guard data.count >= 4160 else { return }
        var sealed = [UInt8](data)
        Reseal.segment(&sealed)
        if !sealed.elementsEqual(data) { segmentOnce(Data(sealed), scratch: scratch) }
    }

    /// Bytes -> file -> open, verify, read rows/payload/columns, exact and index search.
    static func segmentOnce(_ data: Data, scratch: String) {
        let path = scratch + "/input.seg"
        unlink(path)
        _ = FileManager.default.createFile(atPath: path, contents: data)
        guard let seg = try? Segment.open(path: path) else { return }
        defer { seg.close() }
        _ = seg.verify()
        let n = seg.rowCount
        let rows = Set([0, 1, n / 2, n - 1].filter { $0 >= 0 && $0 < n })
        for r in rows {
            if let id = try? seg.id(ofRow: r) { _ = try? seg.row(forId: id) }
            _ = try? seg.vector(row: r)
            _ = try? seg.payload(row: r)
            for c in seg.schema.columns.prefix(4) { _ = try? seg.value(row: r, column: c.name) }
        }
        _ = try? seg.row(forId: 0x5EED)
        for c in seg.schema.columns.prefix(4) {
            _ = try? seg.blocks(ofColumn: c.name)
            var seen = 0
            try? seg.scan(column: c.name) { _, _ in seen += 1 }
        }
        _ = seg.columnStatistics
        let d = seg.schema.dimension
        guard d > 0, d <= 1 << 16 else { return }
        let query = (0..<d).map { Float(($0 % 7) - 3) * 0.25 }
        _ = try? seg.exactSearch(query: query, k: 5)
        _ = try? seg.exactSearch(queries: [query, query.map { -$0 }], k: 3)
        _ = try? seg.search(query: query, options: SearchOptions(k: 5, listSize: 16))
        _ = try? seg.search(query: query, options: SearchOptions(k: 3, listSize: 8, beamWidth: 2, exact: false, readAhead: true))
    }

    static let collectionSchema = SegmentSchema(dimension: 4, elementType: .float32, metric: .l2,
                                                columns: [ColumnSpec(name: "ver", type: .int64), ColumnSpec(name: "tag", type: .string, nullable: true)])

    static func collectionRows(_ ids: some Sequence<UInt64>) -> [SegmentRow] {
        ids.map { id in
            SegmentRow(id: id, vector: (0..<4).map { Float((Int(id) * 7 + $0 * 3) % 11) - 5 },
                       payload: ["ver": .int64(Int64(id)), "tag": id % 3 == 0 ? .null : .string("t\(id)")])
        }
    }

    /// The template collection (same steps as the fuzz target): its files and the three fuzzed names.
    static func collectionTemplate(in scratch: String) throws -> (files: [String: Data], targets: [String]) {
        let dir = scratch + "/template"
        var o = CollectionOptions()
        o.flushThresholdRows = 1_000_000
        o.index = nil
        o.obsoleteFileGraceSeconds = 3600
        o.rowsPerBlock = 4
        let c = try StrataCollection.create(path: dir, schema: collectionSchema, options: o)
        try c.insert(collectionRows(1...12))
        _ = try c.flush()
        _ = try c.delete(ids: [2, 5, 9])
        _ = try c.flush()
        try c.insert(collectionRows(20...24))
        try c.upsert(collectionRows([3]))
        _ = try c.delete(ids: [4, 21])
        c.close()
        var files: [String: Data] = [:]
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        for n in names where !n.hasSuffix("lock") && n != "LOCK" {
            files[n] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + n))
        }
        let wal = try XCTUnwrap(names.filter { $0.hasPrefix("wal-") }.sorted().last)
        let bitmap = try XCTUnwrap(names.first { $0.hasSuffix(".del") })
        return (files, ["MANIFEST", wal, bitmap])
    }

    static func exercise(_ c: StrataCollection) {
        _ = try? c.count()
        for id in [1, 2, 3, 4, 12, 20, 21, 999] as [UInt64] { _ = try? c.get(id: id) }
        _ = try? c.search(query: [0, 1, -1, 2], options: SearchOptions(k: 5))
        _ = try? c.search(query: [0, 1, -1, 2], options: SearchOptions(k: 50, exact: true))
        _ = try? c.stats()
    }

    /// Collection target: byte 0 picks MANIFEST / WAL / bitmap (% 3) and re-sealing ((/ 3) % 2), the
    /// rest replaces that file in a fresh copy of the template; verify, open read-only, open read-write.
    static func collection(_ data: Data, template: (files: [String: Data], targets: [String]), scratch: String) {
        guard let selector = data.first else { return }
        let which = Int(selector) % 3
        let target = template.targets[which]
        var content = [UInt8](data.dropFirst())
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
        if let c = try? StrataCollection.open(path: dir, access: .readOnly, options: o) {
            exercise(c)
            c.close()
        }
        if let c = try? StrataCollection.open(path: dir, access: .readWrite, options: o) {
            exercise(c)
            c.close()
        }
    }
}

final class FuzzRegressionTests: StrataTestCase {
    /// Every regular file under Fixtures/fuzz-regressions/<target>/, sorted.
    func regressionInputs(_ target: String) throws -> [URL] {
        let dir = repoRoot.appendingPathComponent("Fixtures/fuzz-regressions/\(target)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { dir.appendingPathComponent($0) }
    }

    func testSegmentRegressionInputs() throws {
        // The seeds first (the harness must accept sound files too), then every crasher.
        var inputs = [repoRoot.appendingPathComponent("Fixtures/v1/small.seg")]
        let v12 = repoRoot.appendingPathComponent("Fixtures/v1.2/search.seg")
        if FileManager.default.fileExists(atPath: v12.path) { inputs.append(v12) }
        inputs += try regressionInputs("segment")
        for url in inputs {
            let data = try Data(contentsOf: url)
            FuzzHarness.segment(data, scratch: tmp.path)
        }
        // Re-sealing an intact segment leaves it unchanged.
        var fixture = [UInt8](try Data(contentsOf: inputs[0]))
        let original = fixture
        Reseal.segment(&fixture)
        XCTAssertEqual(fixture, original)
        let seg = try Segment.open(path: repoRoot.appendingPathComponent("Fixtures/v1/small.seg").path)
        defer { seg.close() }
        XCTAssertTrue(seg.verify().isSound)
    }

    func testCollectionRegressionInputs() throws {
        let template = try FuzzHarness.collectionTemplate(in: tmp.path)
        var inputs: [Data] = template.targets.enumerated().map { i, name in Data([UInt8(i)]) + template.files[name]! }
        // Re-sealing an intact file must leave it unchanged (the mirror computes the same checksums).
        for (i, name) in template.targets.enumerated() {
            var b = [UInt8](template.files[name]!)
            if i == 1 { Reseal.wal(&b) } else { Reseal.trailer(&b) }
            XCTAssertEqual(b, [UInt8](template.files[name]!), "re-sealing \(name)")
            inputs.append(Data([UInt8(i + 3)]) + template.files[name]!)
        }
        inputs += try regressionInputs("collection").map { try Data(contentsOf: $0) }
        for data in inputs { FuzzHarness.collection(data, template: template, scratch: tmp.path) }
        // The unmodified template still opens with its 12 - 3 + 5 - 2 = 12 live rows.
        let dir = tmp.path + "/check"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        for (name, bytes) in template.files { _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: bytes) }
        let c = try StrataCollection.open(path: dir, access: .readOnly)
        defer { c.close() }
        XCTAssertEqual(try c.count(), 12)
    }
}
