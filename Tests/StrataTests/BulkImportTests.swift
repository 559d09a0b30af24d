// Bulk import (Strata/Collection/Collection+Import.swift, StrataTools/BulkImport.swift): rows read
// from files into sealed segments published in one manifest edit; ids refused when they collide;
// any failure leaves the collection as it was.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class BulkImportTests: StrataTestCase {
    private let schema = SegmentSchema(dimension: 8, metric: .l2,
                                       columns: [ColumnSpec(name: "name", type: .string), ColumnSpec(name: "n", type: .int64, nullable: true)])

    /// An input: vectors, ids (distinct, shuffled, far from 0..<1000) and payload lines.
    private struct Input {
        var vectors: [[Float]]
        var ids: [UInt64]
        var names: [String]
        var numbers: [Int64?]
    }

    private func makeInput(_ count: Int, seed: UInt64) -> Input {
        var rng = SplitMix64(seed: seed)
        var ids = (0..<UInt64(count)).map { 1_000_000 + $0 * 3 }
        for i in stride(from: ids.count - 1, to: 0, by: -1) { ids.swapAt(i, rng.int(i + 1)) }
        let vectors = (0..<count).map { _ in (0..<8).map { _ in rng.unitFloat() * 2 - 1 } }
        return Input(vectors: vectors, ids: ids, names: (0..<count).map { "row-\($0)" },
                     numbers: (0..<count).map { $0 % 5 == 0 ? nil : Int64($0) * 11 })
    }

    /// Writes the input's files; returns (vectors, payload, ids) paths.
    private func writeFiles(_ input: Input, prefix: String = "in") throws -> (String, String, String) {
        let (v, p, i) = (tmpPath("\(prefix).fvecs"), tmpPath("\(prefix).tsv"), tmpPath("\(prefix).ids"))
        try fvecsData(input.vectors).write(to: URL(fileURLWithPath: v))
        let lines = zip(input.names, input.numbers).map { "\($0)\t\($1.map(String.init) ?? "")" }
        try (lines.joined(separator: "\n") + "\n").write(toFile: p, atomically: true, encoding: .utf8)
        try (input.ids.map(String.init).joined(separator: "\n") + "\n").write(toFile: i, atomically: true, encoding: .utf8)
        return (v, p, i)
    }

    /// A collection with 30 sealed rows (ids 0..<30) and, unless `flushed`, 5 buffered (ids 30..<35).
    private func makeCollection(flushed: Bool = false) throws -> StrataCollection {
        var o = CollectionOptions()
        o.index = nil
        let c = try StrataCollection.create(path: tmpPath("coll"), schema: schema, options: o)
        var rng = SplitMix64(seed: 77)
        let row = { (id: UInt64) in SegmentRow(id: id, vector: (0..<8).map { _ in rng.unitFloat() }, payload: ["name": .string("old-\(id)")]) }
        try c.insert((0..<30).map { row($0) })
        try c.flush()
        try c.insert((30..<35).map { row($0) })
        if flushed { try c.flush() }
        return c
    }

    private func plan(_ segmentRows: Int, threads: Int) -> BulkImportPlan {
        BulkImportPlan(rows: 2_500, segmentRows: segmentRows, threads: threads, memoryBudget: nil, cores: 2)
    }

    /// Collection files (no LOCK), for before/after comparisons.
    private func files() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: tmpPath("coll"))) ?? []).filter { $0 != "LOCK" }.sorted()
    }

    private func assertHolds(_ c: StrataCollection, _ input: Input, file: StaticString = #filePath, line: UInt = #line) throws {
        for r in stride(from: 0, to: input.ids.count, by: 7) {
            let got = try XCTUnwrap(try c.get(id: input.ids[r]), "id \(input.ids[r])", file: file, line: line)
            XCTAssertEqual(got.vector, input.vectors[r], file: file, line: line)
            XCTAssertEqual(got.payload, [.string(input.names[r]), input.numbers[r].map { .int64($0) } ?? .null], file: file, line: line)
            let hits = try c.search(query: input.vectors[r], options: SearchOptions(k: 1))
            XCTAssertEqual(hits.first?.id, input.ids[r], file: file, line: line)
            XCTAssertEqual(hits.first?.distance ?? 1, 0, accuracy: 1e-6, file: file, line: line)
        }
    }

    func testImportThenGetAndSearchEqualTheInput() throws {
        let input = makeInput(2_500, seed: 1)
        let (v, p, i) = try writeFiles(input)
        for threads in [1, 2] {
            try? FileManager.default.removeItem(atPath: tmpPath("coll"))
            let c = try makeCollection()
            let before = try c.stats()
            var wo = c.options.segmentWriterOptions
            wo.idSortMemoryBytes = 16 * 300  // the external id sort too
            let summary = try BulkImport.run(into: c, vectors: v, payload: p, ids: i, plan: plan(1_000, threads: threads), writerOptions: wo)
            XCTAssertEqual(summary.rows, 2_500)
            XCTAssertEqual(summary.segments.count, 3)
            let after = try c.stats()
            // The buffer was flushed first (one publish), then ONE publish added the three segments after the others.
            XCTAssertEqual(after.generation, before.generation + 2)
            XCTAssertEqual(after.segments.map(\.name).suffix(3), summary.segments)
            XCTAssertEqual(after.segments.map(\.rows).suffix(3), [1_000, 1_000, 500])
            XCTAssertEqual(after.liveRows, 35 + 2_500)
            XCTAssertEqual(after.walSequence, before.walSequence + 1, "the import itself writes no WAL")
            try assertHolds(c, input)
            XCTAssertEqual(try c.get(id: 31)?.payload.first, .string("old-31"))
            c.close()
            let reopened = try StrataCollection.open(path: tmpPath("coll"))
            XCTAssertEqual(try reopened.count(), 35 + 2_500)
            try assertHolds(reopened, input)
            reopened.close()
        }
    }

    func testEveryRowOfAManySegmentImportGetsItsOwnSideFileLines() throws {
        // 9 segments; each reader starts at the side-file positions recorded by the line count.
        let input = makeInput(2_500, seed: 6)
        let (v, p, i) = try writeFiles(input)
        let c = try makeCollection(flushed: true)
        let summary = try BulkImport.run(into: c, vectors: v, payload: p, ids: i, plan: plan(300, threads: 2), writerOptions: c.options.segmentWriterOptions)
        XCTAssertEqual(summary.segments.count, 9)
        XCTAssertEqual(try c.count(), 35 + 2_500)
        for r in 0..<2_500 {
            let got = try XCTUnwrap(try c.get(id: input.ids[r]), "id \(input.ids[r]) of row \(r)")
            XCTAssertEqual(got.vector, input.vectors[r], "row \(r)")
            XCTAssertEqual(got.payload, [.string(input.names[r]), input.numbers[r].map { .int64($0) } ?? .null], "row \(r)")
        }
        // A bad id in segment 7 is reported with its own line number.
        var lines = input.ids.map(String.init)
        lines[2_101] = "x2101"
        try (lines.joined(separator: "\n") + "\n").write(toFile: tmpPath("bad.ids"), atomically: true, encoding: .utf8)
        let e = try assertUnchanged(c, .corrupt) {
            _ = try BulkImport.run(into: c, vectors: v, payload: p, ids: self.tmpPath("bad.ids"), plan: self.plan(300, threads: 2),
                                   writerOptions: c.options.segmentWriterOptions)
        }
        XCTAssertTrue(e?.message.hasPrefix("line 2102: 'x2101' is not an unsigned 64-bit integer (the id of row 2101 of") ?? false, e?.message ?? "")
        XCTAssertEqual(e?.path, tmpPath("bad.ids"))
    }

    func testImportedSegmentsAreIndexed() throws {
        let input = makeInput(1_200, seed: 2)
        let (v, p, i) = try writeFiles(input)
        let c = try makeCollection(flushed: true)
        var wo = c.options.segmentWriterOptions
        var index = IndexOptions()
        index.minimumRows = 100
        wo.index = index
        let summary = try BulkImport.run(into: c, vectors: v, payload: p, ids: i, plan: plan(600, threads: 2), writerOptions: wo)
        XCTAssertEqual(summary.indexedSegments, 2)
        XCTAssertEqual(try c.stats().segments.suffix(2).map(\.indexed), [true, true])
        for r in stride(from: 0, to: 1_200, by: 97) {
            XCTAssertEqual(try c.search(query: input.vectors[r], options: SearchOptions(k: 1)).first?.id, input.ids[r])
        }
    }

    /// Runs `body` (which must throw `code`) and checks that the collection did not change.
    @discardableResult
    private func assertUnchanged(_ c: StrataCollection, _ code: StrataError.Code, file: StaticString = #filePath, line: UInt = #line,
                                 _ body: () throws -> Void) throws -> StrataError? {
        let (before, listing) = (try c.stats(), files())
        let e = assertStrataError(code, file: file, line: line, body)
        let after = try c.stats()
        XCTAssertEqual(after.generation, before.generation, "nothing published", file: file, line: line)
        XCTAssertEqual(after.segments.map(\.name), before.segments.map(\.name), file: file, line: line)
        XCTAssertEqual(after.liveRows, before.liveRows, file: file, line: line)
        XCTAssertEqual(files(), listing, "no file left behind", file: file, line: line)
        return e
    }

    func testIdOfALiveRowIsRefusedAndNothingIsPublished() throws {
        var input = makeInput(2_500, seed: 3)
        input.ids[1_700] = 12  // live in the collection (sealed)
        let (v, p, i) = try writeFiles(input)
        let c = try makeCollection(flushed: true)
        let e = try assertUnchanged(c, .duplicateId) {
            _ = try BulkImport.run(into: c, vectors: v, payload: p, ids: i, plan: self.plan(1_000, threads: 2), writerOptions: c.options.segmentWriterOptions)
        }
        XCTAssertTrue(e?.message.contains("row 1700 of \(v): id 12 already exists") ?? false, e?.message ?? "")
        XCTAssertEqual(try c.get(id: 12)?.payload.first, .string("old-12"))
    }

    func testRepeatedIdWithinTheImportIsRefused() throws {
        let c = try makeCollection(flushed: true)
        // Across segments (found by the merge of the id indexes) and within one (the segment writer).
        for (a, b) in [(200, 2_300), (1_100, 1_900)] {
            var input = makeInput(2_500, seed: 4)
            input.ids[b] = input.ids[a]
            let (v, p, i) = try writeFiles(input, prefix: "dup\(a)")
            let e = try assertUnchanged(c, .duplicateId) {
                _ = try BulkImport.run(into: c, vectors: v, payload: p, ids: i, plan: self.plan(1_000, threads: 2), writerOptions: c.options.segmentWriterOptions)
            }
            let message = e?.message ?? ""
            XCTAssertTrue(message.contains("row \(a) of \(v)") && message.contains("row \(b) of \(v)"), message)
        }
    }

    func testFailedImportLeavesTheCollectionUnchanged() throws {
        let c = try makeCollection(flushed: true)
        // An injected failure while segment 2 of 3 is filled (after segment 0 was finished).
        for threads in [1, 3] {
            try assertUnchanged(c, .io) {
                _ = try c.importSegments(count: 3, threads: threads, writerOptions: c.options.segmentWriterOptions,
                                         describe: { k, r in "row \(r) of segment \(k)" }) { (k, writer) throws(StrataError) in
                    for r in 0..<50 {
                        var v = [Float](repeating: 0, count: 8)
                        v[0] = Float(r)
                        try v.withUnsafeBufferPointer { (p) throws(StrataError) in
                            try writer.append(id: UInt64(10_000 + k * 100 + r), vector: p, values: [.string("x"), .null])
                        }
                        if k == 1, r == 25 { throw StrataError(.io, "injected failure") }
                    }
                }
            }
        }
        // Bad data in the middle of the input: a NaN in row 1,500 (segment 1).
        var input = makeInput(2_500, seed: 5)
        input.vectors[1_500][3] = .nan
        let (v, p, i) = try writeFiles(input)
        let e = try assertUnchanged(c, .nonFiniteValue) {
            _ = try BulkImport.run(into: c, vectors: v, payload: p, ids: i, plan: self.plan(1_000, threads: 2), writerOptions: c.options.segmentWriterOptions)
        }
        XCTAssertTrue(e?.message.hasPrefix("row 1500 of \(v)") ?? false, e?.message ?? "")
        // A payload file one line short: refused before anything is built.
        try "a\t1\n".write(toFile: tmpPath("short.tsv"), atomically: true, encoding: .utf8)
        try assertUnchanged(c, .corrupt) {
            _ = try BulkImport.run(into: c, vectors: v, payload: tmpPath("short.tsv"), ids: nil, plan: self.plan(1_000, threads: 1),
                                   writerOptions: c.options.segmentWriterOptions)
        }
        // Still writable and consistent afterwards.
        try c.insert([SegmentRow(id: 99_999, vector: [Float](repeating: 0.5, count: 8), payload: ["name": .string("after")])])
        XCTAssertEqual(try c.count(), 36)
    }

    func testKilledImportLeftoversAreRemovedByTheNextOpen() throws {
        let c = try makeCollection(flushed: true)
        let listing = files()
        c.close()
        // What a kill during an import leaves: a finished segment no manifest names, and a
        // segment writer's temporary file.
        let w = try SegmentWriter(path: tmpPath("coll/\(CollectionFiles.newSegmentName(.writer))"), schema: schema)
        try w.append([SegmentRow(id: 5, vector: [Float](repeating: 1, count: 8), payload: ["name": .string("ghost")])])
        try w.finish()
        let temp = FileSystem.temporaryPath(for: tmpPath("coll/\(CollectionFiles.newSegmentName(.writer))"))
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: temp))
        XCTAssertNotEqual(files(), listing)
        let reopened = try StrataCollection.open(path: tmpPath("coll"))
        defer { reopened.close() }
        XCTAssertEqual(files(), listing)
        XCTAssertEqual(try reopened.count(), 35)
        XCTAssertEqual(try reopened.get(id: 5)?.payload.first, .string("old-5"))
    }

    func testWALRecordsNeverReplayOverImportedRows() throws {
        let input = makeInput(1_000, seed: 6)
        let (v, p, i) = try writeFiles(input)
        let c = try makeCollection(flushed: true)
        // The WAL now holds a put and a delete of an id the import brings; the buffer holds no live row.
        let id = input.ids[10]
        try c.insert([SegmentRow(id: id, vector: [Float](repeating: 0.25, count: 8), payload: ["name": .string("gone")])])
        XCTAssertEqual(try c.delete(ids: [id]), 1)
        _ = try BulkImport.run(into: c, vectors: v, payload: p, ids: i, plan: plan(1_000, threads: 1), writerOptions: c.options.segmentWriterOptions)
        XCTAssertEqual(try c.get(id: id)?.payload.first, .string(input.names[10]))
        c.close()
        let reopened = try StrataCollection.open(path: tmpPath("coll"))
        defer { reopened.close() }
        XCTAssertEqual(try reopened.get(id: id)?.payload.first, .string(input.names[10]), "replay must not delete an imported row")
        XCTAssertEqual(try reopened.count(), 35 + 1_000)
    }

    func testImportCommand() throws {
        let input = makeInput(1_500, seed: 8)
        let (v, p, i) = try writeFiles(input)
        let dir = tmpPath("cli")
        XCTAssertEqual(try runStrata(["create", dir, "--dim", "8", "--metric", "l2", "--schema", "name:string,n:int64?"], scratch: tmp).status, 0)
        let r = try runStrata(["import", dir, "--vectors", v, "--payload", p, "--ids", i, "--segment-rows", "600", "--threads", "2", "--json",
                               "--progress", "json"], scratch: tmp)
        XCTAssertEqual(r.status, 0, r.stderr)
        // Progress: one JSON object per stderr line; a note per segment sealed, then "done".
        let events = try r.stderr.split(separator: "\n").map { try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        XCTAssertTrue(events.allSatisfy { $0["command"] as? String == "import" }, r.stderr)
        XCTAssertEqual(events.filter { ($0["detail"] as? String)?.contains("rows read, sealing") ?? false }.count, 3, r.stderr)
        XCTAssertEqual(events.last?["phase"] as? String, "done", r.stderr)
        XCTAssertEqual(events.last?["done"] as? Int, 1_500, r.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        XCTAssertEqual(json["rows"] as? Int, 1_500)
        XCTAssertEqual((json["segments"] as? [String])?.count, 3)
        let c = try StrataCollection.open(path: dir, access: .readOnly)
        try assertHolds(c, input)
        // Again: every id is live now, so all of it is refused (exit 1, naming a row).
        let again = try runStrata(["import", dir, "--vectors", v, "--payload", p, "--ids", i], scratch: tmp)
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("already exists in the collection"), again.stderr)
    }

    func testEmptyImportPublishesNothing() throws {
        let c = try makeCollection(flushed: true)
        let generation = try c.stats().generation
        let summary = try c.importSegments(count: 0, writerOptions: c.options.segmentWriterOptions, describe: { _, _ in "" }) { (_, _) throws(StrataError) in }
        XCTAssertEqual(summary.rows, 0)
        XCTAssertEqual(summary.generation, generation)
        XCTAssertEqual(try c.stats().generation, generation)
    }

    func testPlanSharesTheBudget() {
        let unbounded = BulkImportPlan(rows: 10_000_000, segmentRows: 1_000_000, threads: 4, memoryBudget: nil, cores: 8)
        XCTAssertEqual(unbounded.threads, 4)
        XCTAssertEqual(unbounded.buildThreadsPerSegment, 2)
        XCTAssertNil(unbounded.indexBudgetPerSegment)
        // 512 MiB cannot hold four builds of 1M rows (each: 64 B per row and 32 MiB for the writer, 64 MiB of index).
        let tight = BulkImportPlan(rows: 10_000_000, segmentRows: 1_000_000, threads: 4, memoryBudget: 512 << 20, cores: 8)
        XCTAssertLessThan(tight.threads, 4)
        XCTAssertLessThanOrEqual(tight.threads * (tight.indexBudgetPerSegment! + BulkImportPlan.writerBytes(rows: 1_000_000)), 512 << 20)
        XCTAssertEqual(BulkImportPlan(rows: 10, segmentRows: 1_000, threads: 4, memoryBudget: nil, cores: 8).threads, 1, "one segment, one build")
    }
}
