// Sparse vectors in a local collection: rows with and without one, searched in the buffer, after a
// flush, after a reopen (WAL 3.0 replay), after compaction, with deletes, overwrites (an upsert
// without a sparse vector drops the old one) and filters, always equal to a brute force over the
// live rows (ties by id). Bad sparse input is a typed error that logs nothing. The WAL format
// moves to 3.0 only once a sparse vector is written; compaction carries sparse vectors and refuses
// a damaged sparse_index.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex

final class CollectionSparseTests: CollectionTestCase {
    /// Every query of the test against the reference, for several k, with and without a filter.
    func assertAllQueries(_ search: (SparseVector, Int, Filter?) throws -> [CollectionHit], _ model: SparseModel, _ stage: String,
                          file: StaticString = #filePath, line: UInt = #line) throws {
        let filter = Filter(must: [.match(key: "ver", value: .int(1))])
        for n in UInt64(0)..<24 {
            let q = Self.sparseQuery(n)
            for k in [1, 7, 40, 10_000] {
                assertSparseMatches(try search(q, k, nil), sparseReference(model, query: q, k: k), "\(stage): query \(n), k \(k)",
                                    file: file, line: line)
            }
            assertSparseMatches(try search(q, 10, filter), sparseReference(model, query: q, k: 10) { $1 == 1 },
                                "\(stage): query \(n), filtered", file: file, line: line)
        }
    }

    func walMajor(_ dir: String) throws -> Int {
        let manifest = try Manifest.read(directory: dir)
        let b = try readBytes("\(dir)/\(CollectionFiles.walName(manifest.walSequence))")
        return Int(b[8]) | Int(b[9]) << 8
    }

    func testSparseSearchEqualsBruteForceThroughBufferFlushReopenAndCompaction() throws {
        let dir = tmpPath("sparse.coll")
        var model: SparseModel = [:]
        var c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        XCTAssertEqual(try walMajor(dir), 2, "a new collection starts a 2.0 WAL")
        // Rows without sparse vectors first: the WAL stays 2.0.
        try c.insert(sparseRows(0..<20, withSparse: false))
        for id in UInt64(0)..<20 { model[id] = (0, false) }
        XCTAssertEqual(try walMajor(dir), 2)
        XCTAssertEqual(try c.sparseSearch(query: Self.sparseQuery(0), k: 5), [])
        // The first sparse vector flushes into a 3.0 WAL, then is logged there.
        try c.insert(sparseRows(20..<200))
        for id in UInt64(20)..<200 { model[id] = (0, true) }
        XCTAssertEqual(try walMajor(dir), 3)
        XCTAssertEqual(try c.stats().walFormat, "3.0")
        try assertAllQueries({ try c.sparseSearch(query: $0, k: $1, filter: $2) }, model, "buffer")

        // Overwrites: version 1 with sparse vectors (some rows gain one), version 1 without (they lose theirs); deletes.
        try c.upsert(sparseRows(Array(0..<10) + Array(20..<40), version: 1))
        for id in Array(UInt64(0)..<10) + Array(20..<40) { model[id] = (1, true) }
        try c.upsert(sparseRows(40..<50, version: 1, withSparse: false))
        for id in UInt64(40)..<50 { model[id] = (1, false) }
        XCTAssertEqual(try c.delete(ids: Array(50..<60)), 10)
        for id in UInt64(50)..<60 { model[id] = nil }
        try assertAllQueries({ try c.sparseSearch(query: $0, k: $1, filter: $2) }, model, "buffer, overwritten")

        XCTAssertNotNil(try c.flush())
        XCTAssertEqual(try walMajor(dir), 3, "a flush after a 3.0 WAL starts a 3.0 WAL")
        try assertAllQueries({ try c.sparseSearch(query: $0, k: $1, filter: $2) }, model, "one segment")

        // Writes over the segment, in the buffer: overwrites of sealed rows, deletes, new rows.
        try c.upsert(sparseRows(100..<130, version: 1))
        for id in UInt64(100)..<130 { model[id] = (1, true) }
        try c.upsert(sparseRows(130..<140, version: 2, withSparse: false))
        for id in UInt64(130)..<140 { model[id] = (2, false) }
        try c.delete(ids: Array(140..<150))
        for id in UInt64(140)..<150 { model[id] = nil }
        try c.insert(sparseRows(200..<260))
        for id in UInt64(200)..<260 { model[id] = (0, true) }
        try assertAllQueries({ try c.sparseSearch(query: $0, k: $1, filter: $2) }, model, "segment + buffer")
        let reader = try StrataCollection.open(path: dir, access: .readOnly)
        try assertAllQueries({ try reader.sparseSearch(query: $0, k: $1, filter: $2) }, model, "read-only handle")

        // Reopen: the 3.0 WAL replays the buffer's sparse vectors.
        c.close()
        c = try StrataCollection.open(path: dir, options: options())
        XCTAssertEqual(c.recovery.walFormat, "3.0")
        try assertAllQueries({ try c.sparseSearch(query: $0, k: $1, filter: $2) }, model, "reopened")
        XCTAssertNotNil(try c.flush())
        try c.upsert(sparseRows(0..<5, version: 2))
        for id in UInt64(0)..<5 { model[id] = (2, true) }
        XCTAssertNotNil(try c.flush())
        try c.delete(ids: [60, 61, 62])
        for id: UInt64 in [60, 61, 62] { model[id] = nil }
        XCTAssertNotNil(try c.flush())
        XCTAssertEqual(try Manifest.read(directory: dir).segments.count, 4, "the forced flush, two flushes of rows, one of deletes only")
        try assertAllQueries({ try c.sparseSearch(query: $0, k: $1, filter: $2) }, model, "four segments with bitmaps")

        // Compaction merges the three segments: the sparse vectors of live rows survive, the others do not.
        var policy = CompactionPolicy()
        policy.index = nil
        policy.mergeFactor = 2
        policy.tierBaseRows = 1_000_000
        policy.graceSeconds = 0
        let result = try Compactor(path: dir, policy: policy).run()
        XCTAssertEqual(result.done.count, 1)
        let manifest = try Manifest.read(directory: dir)
        XCTAssertEqual(manifest.segments.count, 1)
        XCTAssertEqual(manifest.segments[0].rowCount, UInt64(model.count))
        try c.refresh()
        try assertAllQueries({ try c.sparseSearch(query: $0, k: $1, filter: $2) }, model, "compacted")
        // The output segment alone: its sparse_index holds exactly the live rows' vectors.
        let output = try Segment.open(path: "\(dir)/\(manifest.segments[0].name)")
        for n in UInt64(0)..<8 where n % 5 != 4 {
            let q = Self.sparseQuery(n)
            let hits = try output.sparseSearch(query: q, k: 10_000)
            XCTAssertEqual(Set(hits.map(\.id)), Set(sparseReference(model, query: q, k: 10_000).map(\.id)), "output segment, query \(n)")
        }
        XCTAssertTrue(try StrataCollection.verify(path: dir).isSound)
        XCTAssertEqual(try StrataCollection.scrub(path: dir).problems.count, 0)
        c.close()
    }

    func testBadSparseInputIsATypedErrorAndNothingIsLogged() throws {
        let dir = tmpPath("bad.coll")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        defer { c.close() }
        try c.insert(sparseRows(0..<4))
        let walPath = "\(dir)/\(CollectionFiles.walName(try Manifest.read(directory: dir).walSequence))"
        let before = try readBytes(walPath)
        func row(_ s: SparseVector) -> [SegmentRow] {
            var r = rows([100])
            r[0].sparse = s
            return rows([101]) + r
        }
        let cases: [(StrataError.Code, SparseVector)] = [
            (.nonFiniteValue, SparseVector(indices: [1, 2], values: [1, .nan])),
            (.nonFiniteValue, SparseVector(indices: [1], values: [.infinity])),
            (.invalidArgument, SparseVector(indices: [1, 2], values: [1])),
            (.invalidArgument, SparseVector(indices: (0..<65_537).map { UInt32($0) }, values: [Float](repeating: 1, count: 65_537))),
            (.invalidArgument, SparseVector(indices: [UInt32.max], values: [1])),
            (.invalidValue, SparseVector(indices: [1], values: [1e30])),
            (.invalidValue, SparseVector(indices: [3, 3, 3], values: [3e38, 3e38, -3e38])),
        ]
        for (code, s) in cases {
            let e = assertStrataError(code, "\(code)") { try c.upsert(row(s)) }
            XCTAssertTrue(e?.message.contains("id 100") ?? false, "\(String(describing: e))")
            assertStrataError(code) { try c.insert(row(s)) }
        }
        XCTAssertEqual(try readBytes(walPath), before, "a rejected batch logs nothing")
        XCTAssertEqual(try c.count(), 4)
        XCTAssertNil(try c.get(id: 101))
        // The limits themselves are accepted; an empty vector (or one whose weights cancel) is none.
        var edge = rows([200, 201, 202])
        edge[0].sparse = SparseVector(indices: [SparseVector.maximumIndex, 0], values: [0.5, 0.25])
        edge[1].sparse = SparseVector(indices: [], values: [])
        edge[2].sparse = SparseVector(indices: [7, 7], values: [0.5, -0.5])
        try c.insert(edge)
        let hits = try c.sparseSearch(query: SparseVector(indices: [SparseVector.maximumIndex, 7], values: [2, 1]), k: 10)
        XCTAssertEqual(hits, [CollectionHit(id: 200, distance: -1)])
        // A bad query is refused too.
        assertStrataError(.nonFiniteValue) { try c.sparseSearch(query: SparseVector(indices: [1], values: [.nan]), k: 3) }
        assertStrataError(.invalidArgument) { try c.sparseSearch(query: SparseVector(indices: [1], values: [1]), k: 0) }
        assertStrataError(.unknownColumn) {
            try c.sparseSearch(query: SparseVector(indices: [1], values: [1]), k: 3, filter: Filter(must: [.match(key: "nope", value: .int(1))]))
        }
    }

    /// Duplicate indices in a row are summed once, when logged; the WAL record holds the canonical
    /// vector (ascending, no zero), which is what replay, flush and compaction see.
    func testTheWALLogsTheCanonicalSparseVector() throws {
        let dir = tmpPath("canonical.coll")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        var r = rows([1])
        r[0].sparse = SparseVector(indices: [9, 2, 9, 4], values: [0.5, 1, 0.25, 0])
        try c.insert(r)
        c.close()
        let manifest = try Manifest.read(directory: dir)
        let scan = try WALReader.read(path: "\(dir)/\(CollectionFiles.walName(manifest.walSequence))", sequence: manifest.walSequence,
                                      schema: Self.schema)
        XCTAssertEqual(scan.version, .v3)
        guard case .put(let logged, _)? = scan.records.last else { return XCTFail("no put record") }
        XCTAssertEqual(logged[0].sparse, SparseVector(indices: [2, 9], values: [1, 0.75]))
    }

    /// A sparse_index damaged in an input segment stops the compaction with `.checksumMismatch`
    /// naming the file and section: nothing is published, the input stays live.
    func testCompactionRefusesADamagedSparseIndex() throws {
        let dir = tmpPath("damaged.coll")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        try c.insert(sparseRows(0..<50))
        try c.flush()
        try c.insert(sparseRows(50..<100))
        try c.flush()
        c.close()
        let before = try Manifest.read(directory: dir)
        let victim = "\(dir)/\(before.segments[0].name)"
        let section = try XCTUnwrap(try Segment.open(path: victim).sections.first { $0.kind == .sparseIndex })
        var bytes = try readBytes(victim)
        bytes[Int(section.offset) + 64] ^= 0x01     // the first term
        try writeBytes(bytes, victim)
        var policy = CompactionPolicy()
        policy.index = nil
        policy.mergeFactor = 2
        policy.tierBaseRows = 1_000_000
        let e = assertStrataError(.checksumMismatch) { try Compactor(path: dir, policy: policy).run() }
        XCTAssertEqual(e?.section, "sparse_index")
        XCTAssertEqual(e?.path, victim)
        XCTAssertEqual(try Manifest.read(directory: dir).segments.map(\.name), before.segments.map(\.name))
    }

    /// A collection whose WAL is 2.0 (the golden fixture) takes a sparse upsert: a flush first
    /// seals its buffer and starts a 3.0 WAL; every row stays.
    func testA2WALCollectionMovesTo3OnItsFirstSparseVector() throws {
        let dir = tmpPath("from2.coll")
        try FileManager.default.copyItem(atPath: GoldenWAL.v2URL.path, toPath: dir)
        XCTAssertEqual(try walMajor(dir), 2)
        let c = try StrataCollection.open(path: dir, options: GoldenWAL.options())
        defer { c.close() }
        let countBefore = try c.count()
        var row = GoldenWAL.row(0, 5)
        row.sparse = SparseVector(indices: [3], values: [2])
        try c.upsert([row])
        XCTAssertEqual(try walMajor(dir), 3)
        XCTAssertEqual(try Manifest.read(directory: dir).segments.count, 1, "the buffer was sealed by the flush")
        XCTAssertEqual(try c.count(), countBefore)
        XCTAssertEqual(try c.sparseSearch(query: SparseVector(indices: [3], values: [1]), k: 5).map(\.id), [GoldenV1.id(0)])
    }
}
