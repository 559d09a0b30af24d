// The background index builder: flushes write unindexed segments and return, the builder swaps in
// indexed copies; searches stay exact-correct during and after; deletes, upserts and a compaction
// racing a build keep the newest state; close mid-build and reopen; back-pressure; a damaged
// unindexed segment is refused; cosine vectors are normalised once.
import Foundation
import Synchronization
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex

final class BackgroundIndexTests: CollectionTestCase {
    /// A small, fast index for segments of at least 100 rows.
    var smallIndex: IndexOptions {
        var ix = IndexOptions()
        ix.minimumRows = 100
        ix.graph.maxDegree = 8
        ix.graph.buildListSize = 16
        ix.pqTrainingSample = 100
        ix.pqIterations = 2
        return ix
    }

    func backgroundOptions(flushRows: Int = 300, maxUnindexedRows: Int = 1_000_000) -> CollectionOptions {
        var o = options(flushRows: flushRows, index: smallIndex, backgroundIndex: true)
        o.maxUnindexedRows = maxUnindexedRows
        return o
    }

    /// Polls `condition` (up to 60 s; the builder runs on its own thread).
    func eventually(_ what: String, _ condition: () throws -> Bool, file: StaticString = #filePath, line: UInt = #line) rethrows {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if try condition() { return }
            usleep(5_000)
        }
        XCTFail("timed out waiting for: \(what)", file: file, line: line)
    }

    func segments(_ c: StrataCollection) throws -> [ManifestSegment] { try c.snapshot().manifest.segments }

    /// Exact search over the snapshot (unindexed, indexed segments and buffer) equals brute force.
    func assertExactSearch(_ c: StrataCollection, _ model: Model, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<3 {
            let q = (0..<Self.dim).map { _ in rng.gaussianish() }
            assertMatchesReference(try c.search(query: q, options: SearchOptions(k: 10, exact: true)), model, query: q, k: 10, file: file, line: line)
        }
    }

    func testFlushWritesUnindexedSegmentThenBuilderSwapsInIndexedCopy() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: backgroundOptions())
        defer { c.close() }
        c.indexer!.hooks.withLock { $0.paused = true }
        try c.insert(rows(0..<300))
        let flushed = try segments(c)
        XCTAssertEqual(flushed.map(\.indexed), [false], "the flush leaves indexing to the builder")
        XCTAssertEqual(c.backgroundIndexStats?.queued, [flushed[0].name])
        XCTAssertEqual(c.backgroundIndexStats?.backlogRows, 300)
        c.indexer!.hooks.withLock { $0.paused = false }
        XCTAssertTrue(c.waitForBackgroundIndex(timeoutSeconds: 60))
        let built = try segments(c)
        XCTAssertEqual(built.map(\.indexed), [true])
        XCTAssertNotEqual(built[0].name, flushed[0].name)
        XCTAssertEqual(built[0].rowCount, 300)
        XCTAssertEqual(c.backgroundIndexStats?.built, 1)
        try assertContent(c, Dictionary(uniqueKeysWithValues: (0..<300).map { (UInt64($0), Int64(0)) }))
        // The old file is obsolete, not gone while the manifest still names it that way.
        XCTAssertTrue(try Manifest.read(directory: dir).obsolete.contains { $0.name == flushed[0].name })
        XCTAssertTrue(try StrataCollection.verify(path: dir).isSound)
    }

    func testIngestWithBuilderSearchesMatchReferenceDuringAndAfter() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: backgroundOptions())
        defer { c.close() }
        var model: Model = [:]
        for b in 0..<15 {
            let ids = UInt64(b * 100)..<UInt64(b * 100 + 100)
            try c.insert(rows(ids))
            for id in ids { model[id] = 0 }
            if b % 3 == 2 {
                try c.delete(ids: [UInt64(b * 100 - 150)])
                model[UInt64(b * 100 - 150)] = nil
                try c.upsert(rows([UInt64(b * 100 - 120)], version: 1))
                model[UInt64(b * 100 - 120)] = 1
            }
            try assertExactSearch(c, model, seed: UInt64(b))
        }
        XCTAssertTrue(c.waitForBackgroundIndex(timeoutSeconds: 60))
        try c.flush()
        XCTAssertTrue(c.waitForBackgroundIndex(timeoutSeconds: 60))
        let segs = try segments(c)
        XCTAssertEqual(segs.filter { $0.rowCount >= 100 }.map(\.indexed), Array(repeating: true, count: segs.filter { $0.rowCount >= 100 }.count))
        XCTAssertGreaterThanOrEqual(c.backgroundIndexStats?.built ?? 0, 4)
        try assertContent(c, model)
        try assertExactSearch(c, model, seed: 99)
        // The ANN path over indexed segments finds the reference neighbours of stored rows.
        var found = 0
        for id in stride(from: UInt64(1), to: 1500, by: 97) where model[id] != nil {
            let q = vector(id, model[id]!)
            found += try c.search(query: q, options: SearchOptions(k: 1, listSize: 64)).first?.id == id ? 1 : 0
        }
        XCTAssertGreaterThanOrEqual(found, 13)
        c.close()
        let reopened = try StrataCollection.open(path: dir, options: backgroundOptions())
        defer { reopened.close() }
        try assertContent(reopened, model)
    }

    func testDeletesAndUpsertsDuringABuildKeepTheNewestBitmap() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: backgroundOptions())
        defer { c.close() }
        var model: Model = [:]
        for id in UInt64(0)..<300 { model[id] = 0 }
        let raced = Mutex(false)
        let errors = Mutex<[String]>([])
        c.indexer!.hooks.withLock {
            $0.beforePublish = { [unowned c] _ in
                guard !raced.withLock({ let was = $0; $0 = true; return was }) else { return }
                // The build of the first segment is done, its swap not yet published: delete and
                // replace rows of that segment and flush, so the manifest names a new bitmap of it.
                do {
                    try c.delete(ids: [3, 4, 5])
                    try c.upsert(Self.rows([7, 8], version: 2))
                    try c.flush()
                } catch { errors.withLock { $0.append("\(error)") } }
            }
        }
        try c.insert(rows(0..<300))
        try eventually("the race ran and the builder published") { try raced.withLock { $0 } && segments(c).contains { $0.indexed } }
        XCTAssertTrue(c.waitForBackgroundIndex(timeoutSeconds: 60))
        XCTAssertEqual(errors.withLock { $0 }, [])
        for id: UInt64 in [3, 4, 5] { model[id] = nil }
        for id: UInt64 in [7, 8] { model[id] = 2 }
        let first = try segments(c)[0]
        XCTAssertTrue(first.indexed)
        XCTAssertEqual(first.deletedCount, 5, "the swap kept the bitmap flushed during the build")
        XCTAssertNotNil(first.deleteFile)
        try assertContent(c, model)
        try assertExactSearch(c, model, seed: 5)
        XCTAssertNil(try c.get(id: 3))
        c.close()
        let reopened = try StrataCollection.open(path: dir, options: backgroundOptions())
        defer { reopened.close() }
        try assertContent(reopened, model)
        XCTAssertTrue(try StrataCollection.verify(path: dir).isSound)
    }

    func testCompactionIndexingTheSameSegmentMeanwhileDropsTheBuildersCopy() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: backgroundOptions())
        defer { c.close() }
        let ran = Mutex<CompactionResult?>(nil)
        let errors = Mutex<[String]>([])
        var policy = CompactionPolicy()
        policy.index = smallIndex
        policy.graceSeconds = 0
        c.indexer!.hooks.withLock { [policy] in
            $0.beforePublish = { _ in
                guard ran.withLock({ $0 }) == nil, errors.withLock({ $0 }).isEmpty else { return }
                do {
                    let r = try Compactor(path: dir, policy: policy).run()
                    ran.withLock { $0 = r }
                } catch { errors.withLock { $0.append("\(error)") } }
            }
        }
        try c.insert(rows(0..<300))
        eventually("the compaction ran") { ran.withLock { $0 } != nil || !errors.withLock { $0 }.isEmpty }
        XCTAssertEqual(errors.withLock { $0 }, [])
        XCTAssertEqual(ran.withLock { $0 }?.done.map(\.task.kind), [.index])
        eventually("the builder is idle") { c.backgroundIndexStats?.building == nil }
        let segs = try segments(c)
        XCTAssertEqual(segs.count, 1)
        XCTAssertTrue(segs[0].indexed)
        XCTAssertTrue(segs[0].name.hasPrefix("seg-c"), "the compactor's output stands; the builder's copy was dropped")
        XCTAssertEqual(c.backgroundIndexStats?.built, 0)
        let manifest = try Manifest.read(directory: dir)
        let known = manifest.referencedFiles.union(manifest.obsolete.map(\.name))
        XCTAssertEqual(try FileSystem.list(dir).filter { $0.hasPrefix("seg-") && !known.contains($0) }, [], "no copy left behind")
        try assertContent(c, Dictionary(uniqueKeysWithValues: (0..<300).map { (UInt64($0), Int64(0)) }))
    }

    func testCloseMidBuildAbandonsTheCopyAndReopenIndexes() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: backgroundOptions())
        let closed = Mutex(false)
        c.indexer!.hooks.withLock {
            $0.beforePublish = { [unowned c] _ in
                c.close()
                closed.withLock { $0 = true }
            }
        }
        try c.insert(rows(0..<300))
        eventually("closed mid-build") { closed.withLock { $0 } }
        eventually("the builder is idle") { c.backgroundIndexStats?.building == nil }
        XCTAssertEqual(try Manifest.read(directory: dir).segments.map(\.indexed), [false], "nothing published after close")
        XCTAssertEqual(try FileSystem.list(dir).filter { $0.hasPrefix("seg-") || $0.hasPrefix(".seg-") }.count, 1, "the copy was removed")
        assertStrataError(.invalidArgument) { try c.insert(self.rows([1000])) }
        let reopened = try StrataCollection.open(path: dir, options: backgroundOptions())
        defer { reopened.close() }
        XCTAssertTrue(reopened.waitForBackgroundIndex(timeoutSeconds: 60))
        XCTAssertEqual(try segments(reopened).map(\.indexed), [true])
        try assertContent(reopened, Dictionary(uniqueKeysWithValues: (0..<300).map { (UInt64($0), Int64(0)) }))
    }

    func testCloseCancelsABuildInFlightAtItsNextBatch() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: backgroundOptions(flushRows: 5_000))
        // The build asks once after PQ, then before each of its batches (5,000 rows: 64 per pass);
        // the third time, the collection is closed from under it.
        let checks = Mutex(0)
        let before = Mutex<Manifest?>(nil)
        c.indexer!.hooks.withLock {
            $0.whileBuilding = { [unowned c] in
                let n = checks.withLock { $0 += 1; return $0 }
                if n == 3 {
                    before.withLock { $0 = try? Manifest.read(directory: dir) }
                    c.close()
                }
            }
        }
        try c.insert(rows(0..<5_000))
        eventually("closed mid-build") { before.withLock { $0 } != nil }
        eventually("the builder is idle") { c.backgroundIndexStats?.building == nil }
        let stats = try XCTUnwrap(c.backgroundIndexStats)
        XCTAssertEqual(stats.cancelled, 1, "the build reports it was cancelled")
        XCTAssertEqual(stats.built, 0)
        XCTAssertEqual(stats.failed, [:], "a cancelled build is not a refused segment")
        XCTAssertEqual(checks.withLock { $0 }, 3, "no batch ran after the close")
        let after = try Manifest.read(directory: dir)
        XCTAssertEqual(after.generation, before.withLock { $0 }?.generation, "no manifest edit was published")
        XCTAssertEqual(after.segments.map(\.indexed), [false])
        let listing = try FileSystem.list(dir)
        XCTAssertEqual(listing.filter { $0.hasPrefix("seg-") || $0.hasPrefix(".seg-") }.count, 1, "the copy's temporary file was removed: \(listing)")
        let reopened = try StrataCollection.open(path: dir, options: options(index: smallIndex))
        defer { reopened.close() }
        try assertContent(reopened, Dictionary(uniqueKeysWithValues: (0..<5_000).map { (UInt64($0), Int64(0)) }))
    }

    func testBackPressureWaitsForTheBuilderOverTheBound() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: backgroundOptions(flushRows: 300, maxUnindexedRows: 500))
        defer { c.close() }
        c.indexer!.hooks.withLock { $0.paused = true }
        try c.insert(rows(0..<300))                   // backlog 300 <= 500: returns
        XCTAssertEqual(c.backgroundIndexStats?.backlogRows, 300)
        let done = Mutex(false)
        let writer = Thread {
            try? c.insert(Self.rows(300..<600))         // backlog 600 > 500: waits for the builder
            done.withLock { $0 = true }
        }
        writer.start()
        eventually("the writer waits") { c.backgroundIndexStats?.writersWaiting == 1 }
        XCTAssertFalse(done.withLock { $0 })
        XCTAssertEqual(c.backgroundIndexStats?.backlogRows, 600)
        c.indexer!.hooks.withLock { $0.paused = false }
        eventually("the write returned") { done.withLock { $0 } }
        XCTAssertLessThanOrEqual(c.backgroundIndexStats?.backlogRows ?? .max, 500, "the write returned only under the bound")
        XCTAssertTrue(c.waitForBackgroundIndex(timeoutSeconds: 60))
        XCTAssertEqual(try c.count(), 600)
    }

    func testDamagedUnindexedSegmentIsRefusedNotLaundered() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: backgroundOptions())
        c.indexer!.hooks.withLock { $0.paused = true }
        try c.insert(rows(0..<300))
        let name = try segments(c)[0].name
        c.close()
        // Flip a byte of the vectors section (it starts at the first page).
        let file = "\(dir)/\(name)"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        bytes[Int(SegmentFormat.pageSize) + 100] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: file))
        let reopened = try StrataCollection.open(path: dir, options: backgroundOptions())
        defer { reopened.close() }
        eventually("the builder refused the segment") { reopened.backgroundIndexStats?.failed[name] != nil }
        XCTAssertTrue(reopened.backgroundIndexStats!.failed[name]!.contains("checksum"), reopened.backgroundIndexStats!.failed[name]!)
        XCTAssertEqual(try segments(reopened).map(\.name), [name], "the damaged segment stays as it is")
        XCTAssertEqual(try segments(reopened).map(\.indexed), [false])
        XCTAssertEqual(try FileSystem.list(dir).filter { $0.hasPrefix("seg-") || $0.hasPrefix(".seg-") }, [name], "no copy left")
        XCTAssertEqual(reopened.backgroundIndexStats?.queued, [], "not retried, not counted by back-pressure")
    }

    func testCosineVectorsAreNormalisedOnceBitIdentical() throws {
        let dir = tmpPath("c")
        let schema = SegmentSchema(dimension: 8, elementType: .float32, metric: .cosine, columns: [])
        var o = backgroundOptions()
        o.flushThresholdRows = 1_000_000
        let c = try StrataCollection.create(path: dir, schema: schema, options: o)
        defer { c.close() }
        var rng = SplitMix64(seed: 7)
        let input = (0..<300).map { i in SegmentRow(id: UInt64(i), vector: (0..<8).map { _ in rng.gaussianish() * 3 + 0.5 }) }
        try c.insert(input)
        func bits(_ c: StrataCollection) throws -> [[UInt32]] {
            try (0..<300).map { try c.get(id: UInt64($0))!.vector.map(\.bitPattern) }
        }
        let buffered = try bits(c)
        // The stored form is the writer's normalisation of the input, done once.
        XCTAssertEqual(buffered[0], Distance(schema).storedForm(input[0].vector).map(\.bitPattern))
        try c.flush()
        XCTAssertEqual(try bits(c), buffered, "flush keeps the buffered bits")
        XCTAssertTrue(c.waitForBackgroundIndex(timeoutSeconds: 60))
        XCTAssertEqual(try segments(c).map(\.indexed), [true])
        XCTAssertEqual(try bits(c), buffered, "the indexed copy keeps them too")
        var policy = CompactionPolicy()
        policy.index = smallIndex
        policy.deletedFractionThreshold = 0
        try c.delete(ids: [0])
        try c.flush()
        _ = try Compactor(path: dir, policy: policy).run()
        XCTAssertEqual(Array(try (1..<300).map { try c.get(id: UInt64($0))!.vector.map(\.bitPattern) }), Array(buffered[1...]),
                       "compaction keeps them too")
    }
    func testBenchIngestReportsThroughputAndAcknowledgesEveryRow() throws {
        let dir = tmpPath("ingest")
        let r = try runStrata(["bench-ingest", dir, "--gen", "2500", "--dim", "8", "--batch", "500", "--flush-rows", "1000",
                               "--search-every", "2", "--json"], scratch: tmp)
        XCTAssertEqual(r.status, 0, r.stderr)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        XCTAssertEqual(doc["rows"] as? Int, 2500)
        XCTAssertEqual(doc["mode"] as? String, "background-index")
        XCTAssertEqual(doc["recall_at_k"] as? Double, 1, "searches over unindexed segments and the buffer are exact")
        XCTAssertEqual(try StrataCollection.open(path: dir, access: .readOnly).count(), 2500)
        let both = try runStrata(["bench-ingest", tmpPath("x"), "--gen", "10", "--vectors", "v.fvecs"], scratch: tmp)
        XCTAssertEqual(both.status, 2, "--gen and --vectors together are a usage error")
    }
}
