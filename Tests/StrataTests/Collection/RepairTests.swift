// Repair of derived data: a byte flipped in each derived section kind of an indexed collection
// segment (pq_codebook, pq_codes, payload_index, text_index) is repaired by rebuilding the
// segment from its primary sections, with the options it was built with; a byte flipped in each
// primary section kind (schema, ids, id_index, each payload column, sparse_index, the delete
// bitmap, and the graph, whose records are the only copy of the vectors in a format 2.0 indexed
// segment) is named (file, section, offset) and nothing on disk changes.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
import StrataTestSupport

final class RepairTests: CollectionTestCase {
    struct Fixture {
        var files: [String: Data]
        var segment: String
        var bitmap: String
        var content: [UInt64: String]
    }

    static var indexOptions: IndexOptions {
        var ix = IndexOptions()
        ix.minimumRows = 100
        ix.graph.maxDegree = 8
        ix.graph.buildListSize = 16
        ix.pqSubspaces = 4
        ix.pqTrainingSample = 300
        ix.pqIterations = 2
        return ix
    }

    /// One indexed segment of 300 rows (PQ with 4 sub-spaces, graph R 8) with a payload index on
    /// `ver`, BM25 on `tag` and sparse vectors: every section kind a collection writes; 3 rows
    /// deleted through a bitmap.
    func makeFixture(_ dir: String) throws -> Fixture {
        var o = options(index: Self.indexOptions, grace: 3600)
        o.search = SearchSectionOptions(indexedColumns: ["ver"], bm25Columns: ["tag"])
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: o)
        try c.insert(sparseRows(0..<300))
        try c.flush()
        _ = try c.delete(ids: [5, 6, 7])
        try c.flush()
        let content = try Self.content(c)
        c.close()
        let m = try Manifest.read(directory: dir)
        XCTAssertEqual(m.segments.count, 1)
        let segment = m.segments[0].name, bitmap = try XCTUnwrap(m.segments[0].deleteFile)
        let kinds = Set(try Segment.open(path: "\(dir)/\(segment)").sections.compactMap(\.kind))
        XCTAssertEqual(kinds, Set(SectionKind.allCases).subtracting([.vectors]), "the fixture lacks a section kind (2.0: no vectors section)")
        return Fixture(files: try snapshot(dir), segment: segment, bitmap: bitmap, content: content)
    }

    /// id -> payload and vector bits of every live row (sparse vectors are compared through sparse search).
    static func content(_ c: StrataCollection) throws -> [UInt64: String] {
        var out: [UInt64: String] = [:]
        try c.snapshot().forEachRow { r in out[r.id] = "\(r.payload) \(r.vector.map(\.bitPattern))" }
        return out
    }

    /// Every file of `dir` but lock files, with its bytes.
    func snapshot(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where !name.hasSuffix(".lock") && name != "LOCK" {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name)"))
        }
        return out
    }

    func restore(_ dir: String, _ files: [String: Data]) throws {
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        for (name, data) in files { try data.write(to: URL(fileURLWithPath: "\(dir)/\(name)")) }
    }

    func flip(_ path: String, at offset: Int) throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[offset] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
    }

    func label(_ s: SectionInfo) -> String {
        s.kind == .column ? "column '\(Self.schema.columns[Int(s.ordinal)].name)'" : s.kind!.description
    }

    /// What a search of every kind returns over the collection at `dir` and its one segment.
    func answers(_ dir: String) throws -> [String] {
        let c = try StrataCollection.open(path: dir, access: .readOnly)
        defer { c.close() }
        let snap = try c.snapshot()
        var out: [String] = []
        for q in 0..<5 {
            let query = vector(UInt64(1_000 + q), 0)
            out.append("exact \(try snap.search(query: query, options: SearchOptions(k: 10, exact: true)))")
            out.append("filtered \(try snap.search(query: query, filter: .only(.match(key: "ver", value: .int(0))), options: SearchOptions(k: 10, exact: true)))")
            out.append("sparse \(try snap.sparseSearch(query: Self.sparseQuery(UInt64(q)), k: 10))")
        }
        let seg = try XCTUnwrap(snap.version.segments.first?.segment)
        for t in ["t12", "t40 t41", "t299"] {
            out.append("bm25 \(t) \(try seg.bm25Search(column: "tag", text: t, k: 5).map { "\($0.id):\($0.score)" })")
        }
        out.append("payload index \(seg.payloadIndexSizes.keys.sorted()), bm25 \(seg.bm25Columns), index \(seg.indexSummary.map { "M \($0.pqSubspaces) R \($0.maxDegree)" } ?? "none")")
        return out
    }

    /// The answers of the sound fixture after a one-input compaction with the fixture's options:
    /// what a repair must give (deleted rows are dropped, so BM25 statistics change).
    func referenceAnswers(_ fixture: Fixture) throws -> [String] {
        let dir = tmpPath("reference.coll")
        try restore(dir, fixture.files)
        var p = CompactionPolicy()
        p.deletedFractionThreshold = 0.001
        p.index = Self.indexOptions
        p.index?.minimumRows = 1
        p.graceSeconds = 3600
        let r = try Compactor(path: dir, policy: p).run()
        XCTAssertEqual(r.done.count, 1)
        return try answers(dir)
    }

    func testEachDerivedSectionKindIsRebuiltFromThePrimarySections() throws {
        let dir = tmpPath("repair.coll")
        let fixture = try makeFixture(dir)
        let want = try referenceAnswers(fixture)
        XCTAssertTrue(want.last!.contains("M 4 R 8"), want.last!)
        XCTAssertTrue(want.last!.contains("payload index [\"ver\"], bm25 [\"tag\"]"), want.last!)
        let segment = try Segment.open(path: "\(dir)/\(fixture.segment)")
        XCTAssertEqual(segment.derivedSectionKinds, [.pqCodebook, .pqCodes, .payloadIndex, .textIndex])
        var cases = 0
        for s in segment.sections where s.kind.map(segment.derivedSectionKinds.contains) ?? false {
            // The start (a header: the section no longer parses), the middle, the end.
            for at in Set([0, Int(s.length) / 2, Int(s.length) - 1]).sorted() {
                let what = "\(label(s)) +\(at)"
                try restore(dir, fixture.files)
                try flip("\(dir)/\(fixture.segment)", at: Int(s.offset) + at)
                XCTAssertFalse(try StrataCollection.verify(path: dir).isSound, "\(what): the damage is not seen")
                let r = try Compactor(path: dir).repair()
                XCTAssertFalse(r.lockBusy)
                XCTAssertEqual(r.unrepaired.map(\.description), [], what)
                XCTAssertEqual(r.repaired.map(\.segment), [fixture.segment], what)
                XCTAssertTrue(r.repaired.first?.damage.contains { $0.section == label(s) || ($0.section == "pq codebook" && s.kind == .pqCodebook) } ?? false,
                              "\(what): \(r.repaired.first?.damage ?? [])")
                let report = try StrataCollection.verify(path: dir)
                XCTAssertTrue(report.isSound, "\(what): \(report.problems)")
                let after = try StrataCollection.open(path: dir, access: .readOnly)
                XCTAssertEqual(try Self.content(after), fixture.content, what)
                after.close()
                XCTAssertEqual(try answers(dir), want, what)
                // The damaged segment is obsolete, no longer live; a second repair finds nothing.
                let m = try Manifest.read(directory: dir)
                XCTAssertFalse(m.segments.contains { $0.name == fixture.segment }, what)
                XCTAssertTrue(m.obsolete.contains { $0.name == fixture.segment }, what)
                let again = try Compactor(path: dir).repair()
                XCTAssertTrue(again.repaired.isEmpty && again.unrepaired.isEmpty, what)
                cases += 1
            }
        }
        XCTAssertGreaterThanOrEqual(cases, 12)
    }

    func testEachPrimarySectionKindIsNamedAndLeftUnchanged() throws {
        let dir = tmpPath("repair-primary.coll")
        let fixture = try makeFixture(dir)
        let segPath = "\(dir)/\(fixture.segment)"
        let segment = try Segment.open(path: segPath)
        var cases: [(what: String, file: String, offset: Int, section: String, range: Range<UInt64>?)] = []
        for s in segment.sections where !(s.kind.map(segment.derivedSectionKinds.contains) ?? true) {
            let at = Int(s.length) / 2
            cases.append(("\(label(s)) +\(at)", fixture.segment, Int(s.offset) + at, label(s), s.offset..<(s.offset + s.length)))
        }
        let bitmapSize = fixture.files[fixture.bitmap]!.count
        cases.append(("bitmap", fixture.bitmap, 40, "delete_bitmap", nil))
        XCTAssertEqual(Set(cases.map(\.section)), ["schema", "ids", "id_index", "graph", "column 'ver'", "column 'tag'", "sparse_index", "delete_bitmap"])
        for c in cases {
            try restore(dir, fixture.files)
            try flip("\(dir)/\(c.file)", at: c.offset)
            let before = try snapshot(dir)
            let r = try Compactor(path: dir).repair()
            XCTAssertEqual(r.repaired.map(\.segment), [], c.what)
            let named = r.unrepaired.first { $0.path == "\(dir)/\(c.file)" && $0.section == c.section }
            XCTAssertNotNil(named, "\(c.what): \(r.unrepaired)")
            if let range = c.range {
                XCTAssertTrue(range.contains(named?.offset ?? 0), "\(c.what): offset \(String(describing: named?.offset))")
            } else {
                XCTAssertEqual(named?.offset, UInt64(bitmapSize - 16), c.what)
            }
            XCTAssertEqual(try snapshot(dir), before, "\(c.what): repair changed the collection")
        }
    }

    /// Damage in a derived and a primary section of the same segment: the segment is not rebuilt.
    func testASegmentWithPrimaryDamageIsNotRebuiltForItsDerivedDamage() throws {
        let dir = tmpPath("repair-both.coll")
        let fixture = try makeFixture(dir)
        let seg = try Segment.open(path: "\(dir)/\(fixture.segment)")
        let codes = try XCTUnwrap(seg.sections.first { $0.kind == .pqCodes })
        let graph = try XCTUnwrap(seg.sections.first { $0.kind == .graph })
        try flip("\(dir)/\(fixture.segment)", at: Int(codes.offset) + 100)
        try flip("\(dir)/\(fixture.segment)", at: Int(graph.offset) + 4096 + 4)   // a vector in the first record
        let before = try snapshot(dir)
        let r = try Compactor(path: dir).repair()
        XCTAssertEqual(r.repaired.count, 0)
        XCTAssertTrue(r.unrepaired.contains { $0.section == "graph" && $0.offset == graph.offset }, "\(r.unrepaired)")
        XCTAssertEqual(try snapshot(dir), before)
    }

    /// Another compaction holds COMPACT.lock: repair returns at once and changes nothing.
    func testRepairDoesNotRunBesideACompaction() throws {
        let dir = tmpPath("repair-busy.coll")
        let fixture = try makeFixture(dir)
        let seg = try Segment.open(path: "\(dir)/\(fixture.segment)")
        let codes = try XCTUnwrap(seg.sections.first { $0.kind == .pqCodes })
        try flip("\(dir)/\(fixture.segment)", at: Int(codes.offset) + 100)
        let before = try snapshot(dir)
        let lock = try XCTUnwrap(try FileLock.acquire(CollectionFiles.compactLock(dir), wait: false))
        let r = try Compactor(path: dir).repair()
        lock.unlock()
        XCTAssertTrue(r.lockBusy)
        XCTAssertEqual(r.repaired.count, 0)
        XCTAssertEqual(try snapshot(dir), before)
        XCTAssertEqual(try Compactor(path: dir).repair().repaired.count, 1)
    }

    // MARK: - CLI

    func testVerifyRepairCLI() throws {
        let dir = tmpPath("repair-cli.coll")
        let fixture = try makeFixture(dir)
        let seg = try Segment.open(path: "\(dir)/\(fixture.segment)")
        // A sound collection: nothing to repair, exit 0.
        var r = try runStrata(["verify", "--repair", dir], scratch: tmp)
        XCTAssertEqual(r.status, 0, r.stdoutText + r.stderr)
        XCTAssertTrue(r.stdoutText.contains("OK"), r.stdoutText)
        // A primary section (the graph records hold the only copy of the vectors): exit 1, the
        // file, section and offset named, nothing changed.
        let graph = try XCTUnwrap(seg.sections.first { $0.kind == .graph })
        try flip("\(dir)/\(fixture.segment)", at: Int(graph.offset) + 4096 + 4)
        var before = try snapshot(dir)
        r = try runStrata(["verify", "--repair", dir], scratch: tmp)
        XCTAssertEqual(r.status, 1, r.stdoutText + r.stderr)
        XCTAssertTrue(r.stdoutText.contains("NOT REPAIRED"), r.stdoutText)
        XCTAssertTrue(r.stdoutText.contains("file \(dir)/\(fixture.segment), section graph, offset \(graph.offset)"), r.stdoutText)
        XCTAssertEqual(try snapshot(dir), before)
        // A derived section: exit 0, the section named, verify clean afterwards.
        try restore(dir, fixture.files)
        let textIndex = try XCTUnwrap(seg.sections.first { $0.kind == .textIndex })
        try flip("\(dir)/\(fixture.segment)", at: Int(textIndex.offset) + 200)
        before = try snapshot(dir)
        XCTAssertEqual(try runStrata(["verify", dir], scratch: tmp).status, 1, "verify without --repair changed")
        XCTAssertEqual(try snapshot(dir), before, "verify without --repair changed the collection")
        r = try runStrata(["verify", "--repair", "--json", dir], scratch: tmp)
        XCTAssertEqual(r.status, 0, r.stdoutText + r.stderr)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [String: Any])
        XCTAssertEqual(doc["ok"] as? Bool, true)
        let repaired = try XCTUnwrap((doc["repair"] as? [String: Any])?["repaired"] as? [[String: Any]])
        XCTAssertEqual(repaired.first?["segment"] as? String, fixture.segment)
        XCTAssertEqual(repaired.first?["sections"] as? [String], ["text_index"])
        XCTAssertEqual(try runStrata(["verify", dir], scratch: tmp).status, 0)
        // Usage: a segment file, an s3 address.
        XCTAssertEqual(try runStrata(["verify", "--repair", "\(dir)/\(fixture.segment)"], scratch: tmp).status, 2)
    }
}

extension RepairTests {
    /// A compaction that meets a segment whose PQ codebook no longer parses (which stops every
    /// open) rebuilds it first instead of failing every run.
    func testCompactionRebuildsASegmentWhoseDerivedSectionDoesNotParse() throws {
        let dir = tmpPath("repair-compact.coll")
        let fixture = try makeFixture(dir)
        let seg = try Segment.open(path: "\(dir)/\(fixture.segment)")
        let codebook = try XCTUnwrap(seg.sections.first { $0.kind == .pqCodebook })
        try flip("\(dir)/\(fixture.segment)", at: Int(codebook.offset))     // the codebook magic
        XCTAssertThrowsError(try StrataCollection.open(path: dir, access: .readOnly))
        let r = try Compactor(path: dir).run()
        XCTAssertEqual(r.done.first?.task.inputs, [fixture.segment])
        XCTAssertTrue(r.done.first?.task.reason.hasPrefix("repair") ?? false, "\(r.done.map(\.task))")
        XCTAssertTrue(try StrataCollection.verify(path: dir).isSound)
        let after = try StrataCollection.open(path: dir, access: .readOnly)
        XCTAssertEqual(try Self.content(after), fixture.content)
        after.close()
    }

    /// Primary damage that stops an open is not rebuilt by compaction: the run throws it. In a 2.0
    /// indexed segment that includes a graph that does not parse (the vectors cannot be placed).
    func testCompactionStillRefusesPrimaryDamage() throws {
        for (kind, at) in [(SectionKind.schema, 4), (.graph, 0)] {
            let dir = tmpPath("repair-compact-primary-\(kind).coll")
            let fixture = try makeFixture(dir)
            let seg = try Segment.open(path: "\(dir)/\(fixture.segment)")
            let section = try XCTUnwrap(seg.sections.first { $0.kind == kind })
            try flip("\(dir)/\(fixture.segment)", at: Int(section.offset) + at)
            let before = try snapshot(dir)
            XCTAssertThrowsError(try Compactor(path: dir).run(), "\(kind)") { e in
                XCTAssertEqual((e as? StrataError)?.section, kind.description)
            }
            XCTAssertEqual(try snapshot(dir), before, "\(kind)")
            let r = try Compactor(path: dir).repair()
            XCTAssertEqual(r.repaired.count, 0, "\(kind)")
            XCTAssertTrue(r.unrepaired.contains { $0.section == kind.description }, "\(kind): \(r.unrepaired)")
        }
    }
}
