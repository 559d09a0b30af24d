// Replays the fuzz regression corpus (Fixtures/fuzz-regressions/<target>/) through the harnesses the
// libFuzzer targets in tools/fuzz run (`SegmentHarness`, `CollectionHarness` in StrataTestSupport),
// so that every crasher ever found stays fixed in the normal suite. A regression passes when the
// harness returns: a thrown StrataError is a fine outcome, a trap kills the test process.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools
@testable import StrataTestSupport

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
        // The seed the fuzz target writes itself (ANN index plus every search section).
        let seed = tmpPath("seed-indexed-search.seg")
        try SegmentHarness.writeIndexedSearchSeed(to: seed)
        let indexed = try Segment.open(path: seed)
        XCTAssertTrue(indexed.verify().isSound)
        XCTAssertTrue(indexed.hasSparseIndex)
        XCTAssertEqual(indexed.bm25Columns.sorted(), ["tags", "title"])
        XCTAssertEqual(indexed.payloadIndexSizes.count, 5)
        XCTAssertEqual(try indexed.planFilter(Filter.only(.isNull(key: "tags")), options: FilteredSearchOptions(plan: .graph)).kind, .graph)
        indexed.close()
        inputs.append(URL(fileURLWithPath: seed))
        inputs += try regressionInputs("segment")
        for url in inputs {
            let data = try Data(contentsOf: url)
            SegmentHarness.run([UInt8](data), scratch: tmp.path)
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

    /// The deep re-seal leaves intact segments unchanged, and after a payload block byte changes it
    /// restores the block and section checksums, so the damage reaches the decoders (no
    /// checksumMismatch left), which the fuzzer relies on.
    func testDeepResealReachesBlockDecoders() throws {
        for name in ["Fixtures/v1/small.seg", "Fixtures/v1.2/search.seg"] {
            var b = [UInt8](try Data(contentsOf: repoRoot.appendingPathComponent(name)))
            let original = b
            Reseal.segmentDeep(&b)
            XCTAssertEqual(b, original, name)
        }
        let url = repoRoot.appendingPathComponent("Fixtures/v1.2/search.seg")
        let intact = try Segment.open(path: url.path)
        let section = try XCTUnwrap(intact.sections.first { $0.kind == .column && $0.ordinal == 0 })
        let block = try XCTUnwrap(try intact.blocks(ofColumn: intact.schema.columns[0].name).first)
        intact.close()
        var b = [UInt8](try Data(contentsOf: url))
        b[Int(section.offset + block.offset) + Int(block.storedLength) / 2] ^= 0x55
        func checksumProblems(_ bytes: [UInt8]) throws -> Int {
            let p = tmpPath("deep.seg")
            try Data(bytes).write(to: URL(fileURLWithPath: p))
            let seg = try Segment.open(path: p)
            defer { seg.close() }
            return seg.verify().problems.filter { $0.code == .checksumMismatch }.count
        }
        XCTAssertGreaterThan(try checksumProblems(b), 0)
        Reseal.segmentDeep(&b)
        XCTAssertEqual(try checksumProblems(b), 0)
        SegmentHarness.run(b, scratch: tmp.path)
    }

    func testCollectionRegressionInputs() throws {
        let template = try CollectionHarness.makeTemplate(in: tmp.path)
        var inputs: [Data] = template.targets.enumerated().map { i, name in Data([UInt8(i)]) + template.files[name]! }
        // Re-sealing an intact file must leave it unchanged (Reseal computes the checksums the readers check).
        for (i, name) in template.targets.enumerated() {
            var b = [UInt8](template.files[name]!)
            if i == 1 { Reseal.wal(&b) } else { Reseal.trailer(&b) }
            XCTAssertEqual(b, [UInt8](template.files[name]!), "re-sealing \(name)")
            inputs.append(Data([UInt8(i + 3)]) + template.files[name]!)
        }
        // The WAL rules' paths: a flipped byte in every record (damage, then recover), the same
        // re-sealed (checksums pass, the decoder refuses), and cuts inside every record (torn tails).
        let wal = [UInt8](template.files[template.targets[1]]!)
        var at = 32
        while wal.count - at >= 32 {
            let end = at + 32 + (0..<4).reduce(0) { $0 | Int(wal[at + $1]) << (8 * $1) }
            var flipped = wal
            flipped[(at + end) / 2] ^= 0x40
            inputs += [Data([1] + flipped), Data([4] + flipped), Data([1] + wal[0..<(at + 7)]), Data([1] + wal[0..<(end - 1)])]
            at = end
        }
        XCTAssertEqual(at, wal.count)
        // The 1.0 seed: the same records in format 1.0 open with the same content.
        let wal1 = Reseal.walAsFormat1(wal)
        var resealed = wal1
        Reseal.wal(&resealed)
        XCTAssertEqual(resealed, wal1)
        inputs += [Data([1] + wal1), Data([1] + wal1.dropLast(3))]
        inputs += try regressionInputs("collection").map { try Data(contentsOf: $0) }
        for data in inputs { XCTAssertNil(CollectionHarness.run([UInt8](data), template: template, scratch: tmp.path)) }
        // The unmodified template still opens with its 12 - 3 + 5 - 2 = 12 live rows.
        let dir = tmp.path + "/check"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        for (name, bytes) in template.files { _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: bytes) }
        let c = try StrataCollection.open(path: dir, access: .readOnly)
        XCTAssertEqual(try c.count(), 12)
        XCTAssertEqual(c.recovery.walFormat, "2.0")
        c.close()
        // And the 1.0 seed holds the same records.
        _ = FileManager.default.createFile(atPath: dir + "/" + template.targets[1], contents: Data(wal1))
        let c1 = try StrataCollection.open(path: dir, access: .readOnly)
        defer { c1.close() }
        XCTAssertEqual(try c1.count(), 12)
        XCTAssertEqual(c1.recovery.walFormat, "1.0")
        XCTAssertEqual(c1.recovery.records, 3)
    }
}
