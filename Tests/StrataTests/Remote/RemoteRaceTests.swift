// Races between a remote collection's writer and its compactor, against the real services: a
// flush whose head moved under it (a compaction committed while deletes were buffered) rebases
// onto the compacted segments, and a reader on an old generation keeps answering while compaction
// and gc run.
import Foundation
import XCTest
@testable import Strata
@testable import StrataRemote
import StrataFormat
import StrataTestSupport

final class RemoteRaceTests: XCTestCase {
    private func ids(_ c: RemoteCollection) async throws -> [UInt64: Int] {
        var seen: [UInt64: Int] = [:]
        try await c.snapshot().snapshot.forEachRow { seen[$0.id, default: 0] += 1 }
        return seen
    }

    func testAFlushRebasesOntoACompactionThatCommittedFirst() async throws {
        let f = try RemoteFixture("flush-vs-compact")
        defer { Task { await f.shutdown() } }
        let w = try await f.create()
        for part in 0..<3 {
            try await w.insert((UInt64(part * 100 + 1)...UInt64(part * 100 + 60)).map(RemoteFixture.row))
            try await w.flush()
        }
        // Deletes of sealed rows wait in the writer's buffer while a compactor merges the segments.
        try await w.delete(ids: [5, 105, 205])
        try await w.insert([RemoteFixture.row(999)])
        var policy = CompactionPolicy()
        policy.index = nil
        let compactor = RemoteCompactor(layout: f.layout, store: f.store, metadata: f.metadata, options: f.options(cache: "compactor"),
                                        policy: policy)
        let result = try await compactor.run()
        XCTAssertFalse(result.done.isEmpty, "the compactor merged nothing: \(result)")
        // The writer's flush starts from the pre-compaction head, loses the commit and rebases.
        let flushed = try await w.flush()
        XCTAssertEqual(flushed?.deletesApplied, 3)
        let expected = Set((0..<3).flatMap { p in (UInt64(p * 100 + 1)...UInt64(p * 100 + 60)) }).subtracting([5, 105, 205]).union([999])
        let seen = try await ids(w)
        XCTAssertEqual(Set(seen.keys), expected)
        XCTAssertTrue(seen.values.allSatisfy { $0 == 1 })
        await w.close()
        let r = try await f.open(.readOnly, cache: "reader")
        let read = try await ids(r)
        XCTAssertEqual(Set(read.keys), expected)
        XCTAssertTrue(read.values.allSatisfy { $0 == 1 })
        await r.close()
    }

    func testAPinnedReaderKeepsItsGenerationThroughCompactionAndGC() async throws {
        let f = try RemoteFixture("pinned-reader")
        defer { Task { await f.shutdown() } }
        let w = try await f.create()
        for part in 0..<3 {
            try await w.insert((UInt64(part * 50 + 1)...UInt64(part * 50 + 40)).map(RemoteFixture.row))
            try await w.flush()
        }
        await w.close()
        let reader = try await f.open(.readOnly, cache: "reader")
        let before = try await reader.snapshot()
        let oldSegments = before.snapshot.version.manifest.segments.map { f.layout.segmentObject($0.name) }
        var policy = CompactionPolicy()
        policy.index = nil
        let result = try await RemoteCompactor(layout: f.layout, store: f.store, metadata: f.metadata,
                                               options: f.options(cache: "compactor"), policy: policy).run()
        XCTAssertFalse(result.done.isEmpty)
        var gc = RemoteGarbageCollector(layout: f.layout, store: f.store, metadata: f.metadata)
        gc.graceSeconds = 0
        _ = try await gc.run()
        // The pinned generation's segments survive gc, and the reader still answers from them.
        for key in oldSegments {
            let info = try await f.s3.head(key)
            XCTAssertNotNil(info, "gc removed \(key), which a live pin names")
        }
        XCTAssertEqual(try before.snapshot.search(query: RemoteFixture.row(42).vector, options: SearchOptions(k: 1)).first?.id, 42)
        // Once the reader is gone (its pin with it), gc removes them.
        await reader.close()
        _ = try await gc.run()
        for key in oldSegments {
            let info = try await f.s3.head(key)
            XCTAssertNil(info, "gc kept \(key) after its last pin ended")
        }
        let fresh = try await f.open(.readOnly, cache: "fresh")
        let n = try await fresh.count()
        XCTAssertEqual(n, 120)
        await fresh.close()
    }
}
