// Search trusts section bytes by design (open reads no bulk data). The ways out: `strata scrub`
// checks a live collection in the background, and `SegmentOpenOptions.verify` / `search --verify`
// checks the sections a query reads before it answers.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class ScrubAndVerifiedReadTests: CollectionTestCase {
    func flip(_ path: String, at offset: Int) throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[offset] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
    }

    /// Two sealed segments (one with a bitmap) and a WAL with records.
    func makeCollection(_ dir: String) throws -> StrataCollection {
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options(grace: 3600))
        try c.insert(rows(0..<200))
        try c.flush()
        try c.insert(rows(200..<400))
        _ = try c.delete(ids: [3, 4])
        try c.flush()
        try c.insert(rows(400..<410))
        return c
    }

    func testScrubPassesASoundCollectionAndFindsAFlippedByte() throws {
        let dir = tmpPath("s.coll")
        let c = try makeCollection(dir)
        defer { c.close() }
        var r = try runStrata(["scrub", dir, "--json"], scratch: tmp)
        XCTAssertEqual(r.status, 0, r.stderr)
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        XCTAssertEqual(json["ok"] as? Bool, true)
        XCTAssertEqual(json["segments_checked"] as? Int, 2)
        XCTAssertEqual(json["bitmaps_checked"] as? Int, 1)
        XCTAssertEqual(json["wal_checked"] as? Bool, true)
        XCTAssertEqual(json["generation"] as? Int, Int(try c.snapshot().generation))

        // One byte in the second segment's ids (the writer still has the collection open: scrub
        // needs no lock).
        let name = try c.snapshot().manifest.segments[1].name
        let seg = try Segment.open(path: "\(dir)/\(name)")
        let ids = seg.sections.first { $0.kind == .ids }!
        try flip("\(dir)/\(name)", at: Int(ids.offset) + 13)
        r = try runStrata(["scrub", dir, "--json"], scratch: tmp)
        XCTAssertEqual(r.status, 1, r.stderr)
        json = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        XCTAssertEqual(json["ok"] as? Bool, false)
        let problems = try XCTUnwrap(json["problems"] as? [[String: Any]])
        let mismatch = try XCTUnwrap(problems.first { $0["code"] as? String == "checksumMismatch" }, "\(problems)")
        XCTAssertEqual(mismatch["file"] as? String, "\(dir)/\(name)")
        XCTAssertEqual(mismatch["section"] as? String, "ids")
        XCTAssertEqual((mismatch["offset"] as? NSNumber)?.uint64Value, ids.offset)
        // Plain text names it too.
        r = try runStrata(["scrub", dir], scratch: tmp)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stdoutText.contains("section ids") && r.stdoutText.contains(name), r.stdoutText)
    }

    func testScrubFindsADamagedBitmapAndRefusesBadUsage() throws {
        let dir = tmpPath("b.coll")
        let c = try makeCollection(dir)
        let bitmap = try XCTUnwrap(try c.snapshot().manifest.segments[0].deleteFile)
        c.close()
        try flip("\(dir)/\(bitmap)", at: 36)
        let report = try StrataCollection.scrub(path: dir)
        XCTAssertEqual(report.problems.map(\.code), [.checksumMismatch])
        XCTAssertEqual(report.problems.first?.section, "delete_bitmap")
        XCTAssertEqual(report.problems.first?.path, "\(dir)/\(bitmap)")
        XCTAssertEqual(try runStrata(["scrub", dir], scratch: tmp).status, 1)
        XCTAssertEqual(try runStrata(["scrub", dir, "--rate", "-1"], scratch: tmp).status, 2)
        let tiny = try runStrata(["scrub", dir, "--rate", "1e-30"], scratch: tmp)
        XCTAssertFalse(tiny.crashed, tiny.stderr)
        XCTAssertEqual(tiny.status, 2, "a rate that would sleep for ages is a usage error: \(tiny.stderr)")
        XCTAssertEqual(try runStrata(["scrub", tmpPath("missing")], scratch: tmp).status, 2)
    }

    /// --rate bounds the read rate: about 0.5 MB at 1 MB/s takes at least 0.3 s.
    func testScrubRateLimit() throws {
        let dir = tmpPath("r.coll")
        let c = try StrataCollection.create(path: dir, schema: SegmentSchema(dimension: 64), options: options())
        try c.insert((0..<2000).map { SegmentRow(id: UInt64($0), vector: (0..<64).map { Float(($0 * 7 + 1) % 13) }) })
        try c.flush()
        c.close()
        let start = Date()
        let report = try StrataCollection.scrub(path: dir, bytesPerSecond: 1e6)
        let seconds = Date().timeIntervalSince(start)
        XCTAssertTrue(report.isSound, "\(report.problems)")
        XCTAssertGreaterThan(report.bytesChecked, 500_000)
        XCTAssertGreaterThan(seconds, Double(report.bytesChecked) / 1e6 * 0.6, "\(report.bytesChecked) bytes in \(seconds) s")
    }

    /// A flipped vectors byte: plain search answers from the damaged bytes (by design), a segment
    /// opened with verify throws `.checksumMismatch` naming the section for every kind of query
    /// that reads it, and reads of other sections still work.
    func testSegmentOpenVerifyChecksTheSectionsAQueryTouches() throws {
        let path = tmpPath("v.seg")
        let schema = SegmentSchema(dimension: 8, metric: .l2, columns: [ColumnSpec(name: "n", type: .int64)])
        let w = try SegmentWriter(path: path, schema: schema)
        var input: [SegmentRow] = []
        for r in 0..<100 {
            let v: [Float] = (0..<8).map { d in Float((r * 31 + d * 7) % 17) }
            input.append(SegmentRow(id: UInt64(r), vector: v, payload: ["n": .int64(Int64(r))]))
        }
        try w.append(input)
        try w.finish()
        let vectors = try Segment.open(path: path).sections.first { $0.kind == .vectors }!
        try flip(path, at: Int(vectors.offset) + 40)
        let q: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]

        let trusting = try Segment.open(path: path)
        XCTAssertEqual(try trusting.exactSearch(query: q, k: 3).count, 3)

        let checked = try Segment.open(path: path, options: SegmentOpenOptions(verify: true))
        for (what, query) in [("exact", { _ = try checked.exactSearch(query: q, k: 3) }),
                              ("batch", { _ = try checked.exactSearch(queries: [q, q], k: 3) }),
                              ("search", { _ = try checked.search(query: q) }),
                              ("filtered", { _ = try checked.search(query: q, filter: Filter.only(.range(key: "n", FilterRange(gt: .int(5))))) }),
                              ("vector", { _ = try checked.vector(row: 1) })] as [(String, () throws -> Void)] {
            let e = assertStrataError(.checksumMismatch, what) { try query() }
            XCTAssertEqual(e?.section, "vectors", what)
            XCTAssertEqual(e?.offset, vectors.offset, what)
            XCTAssertEqual(e?.path, path, what)
        }
        XCTAssertEqual(try checked.payload(row: 3).first, .int64(3))
        XCTAssertEqual(try checked.row(forId: 42), 42)
    }

    /// `strata search --verify`, on a segment file and on a collection: exit 1 naming the section,
    /// where search without it answers (exit 0); a sound collection searches the same with it.
    func testSearchVerifyFlag() throws {
        let dir = tmpPath("q.coll")
        let c = try makeCollection(dir)
        c.close()
        let queries = tmpPath("q.fvecs")
        try fvecsData([vector(1, 0), vector(2, 0)]).write(to: URL(fileURLWithPath: queries))
        let sound = try runStrata(["search", dir, "--query", queries, "--exact", "--json"], scratch: tmp)
        let soundVerified = try runStrata(["search", dir, "--query", queries, "--exact", "--json", "--verify"], scratch: tmp)
        XCTAssertEqual(sound.status, 0, sound.stderr)
        XCTAssertEqual(soundVerified.status, 0, soundVerified.stderr)
        func hits(_ r: CLIResult) -> [String] {
            let results = (try? JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])?["results"] as? [[String: Any]] ?? []
            return results.flatMap { ($0["hits"] as? [[String: Any]] ?? []).map { "\($0["id"] ?? "-")@\($0["distance"] ?? "-")" } }
        }
        XCTAssertEqual(hits(sound).count, 20)
        XCTAssertEqual(hits(sound), hits(soundVerified))

        let name = try StrataCollection.open(path: dir, access: .readOnly).snapshot().manifest.segments[0].name
        let vectors = try Segment.open(path: "\(dir)/\(name)").sections.first { $0.kind == .vectors }!
        try flip("\(dir)/\(name)", at: Int(vectors.offset) + 100)
        for target in [dir, "\(dir)/\(name)"] {
            XCTAssertEqual(try runStrata(["search", target, "--query", queries], scratch: tmp).status, 0, target)
            let r = try runStrata(["search", target, "--query", queries, "--verify"], scratch: tmp)
            XCTAssertEqual(r.status, 1, "\(target): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("checksumMismatch") && r.stderr.contains("section vectors") && r.stderr.contains(name), r.stderr)
        }
    }
}
