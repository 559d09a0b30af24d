// The progress callbacks of Segment.verify(progress:), StrataCollection.verify(path:progress:) and
// StrataCollection.scrub(path:bytesPerSecond:progress:): bytes checked, first (0, total), never
// decreasing, last (total, total), and the total is the bytes the check covers.
import Foundation
import Synchronization
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex

final class VerifyProgressTests: CollectionTestCase {
    /// Collects the calls of a progress callback.
    final class Calls: Sendable {
        let list = Mutex<[[Int]]>([])
        var callback: VerifyProgress { { done, total in self.list.withLock { $0.append([done, total]) } } }
        var all: [[Int]] { list.withLock { $0 } }
    }

    func assertProgress(_ calls: [[Int]], total: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(calls.first, [0, total], "starts at 0", file: file, line: line)
        XCTAssertEqual(calls.last, [total, total], "ends at the total", file: file, line: line)
        XCTAssertTrue(calls.allSatisfy { $0[1] == total }, "one total", file: file, line: line)
        XCTAssertEqual(calls.map { $0[0] }, calls.map { $0[0] }.sorted(), "never decreases", file: file, line: line)
    }

    /// Three sealed segments (one indexed, one with a bitmap) and a buffered row.
    func makeCollection(_ dir: String) throws -> StrataCollection {
        var ix = IndexOptions()
        ix.minimumRows = 500
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options(index: ix))
        try c.insert(rows(0..<100))
        try c.flush()
        try c.insert(rows(100..<700))
        try c.flush()
        try c.insert(rows(700..<760))
        _ = try c.delete(ids: [3, 4])
        try c.flush()
        try c.insert(rows(800..<801))
        return c
    }

    /// Sizes of the manifest's segment files, in manifest order.
    func segmentFileSizes(_ dir: String, _ c: StrataCollection) throws -> [Int] {
        try c.snapshot().manifest.segments.map { e in
            (try FileManager.default.attributesOfItem(atPath: "\(dir)/\(e.name)")[.size] as? NSNumber)?.intValue ?? -1
        }
    }

    func testSegmentVerifyReportsTheBytesOfItsChecksumPass() throws {
        let dir = tmpPath("c")
        let c = try makeCollection(dir)
        defer { c.close() }
        for e in try c.snapshot().manifest.segments {
            let seg = try Segment.open(path: "\(dir)/\(e.name)")
            let calls = Calls()
            let report = seg.verify(progress: calls.callback)
            XCTAssertTrue(report.isSound)
            let total = seg.sections.reduce(0) { $0 + Int($1.length) }
            XCTAssertEqual(UInt64(total), report.bytesChecked)
            assertProgress(calls.all, total: total)
            XCTAssertGreaterThanOrEqual(calls.all.count, 2)
        }
    }

    func testCollectionVerifyAndScrubReportTheBytesOfEachSegmentFile() throws {
        let dir = tmpPath("c")
        let c = try makeCollection(dir)
        defer { c.close() }
        let sizes = try segmentFileSizes(dir, c)
        XCTAssertEqual(sizes.count, 3)
        let total = sizes.reduce(0, +)
        // Each segment's end is reported: the running sums of the file sizes.
        var ends: [Int] = []
        for s in sizes { ends.append((ends.last ?? 0) + s) }
        let verified = Calls()
        XCTAssertTrue(try StrataCollection.verify(path: dir, progress: verified.callback).isSound)
        assertProgress(verified.all, total: total)
        XCTAssertTrue(Set(ends).isSubset(of: Set(verified.all.map { $0[0] })), "\(verified.all)")
        let scrubbed = Calls()
        let report = try StrataCollection.scrub(path: dir, progress: scrubbed.callback)
        XCTAssertTrue(report.isSound)
        XCTAssertEqual(report.segmentsChecked, 3)
        assertProgress(scrubbed.all, total: total)
        XCTAssertTrue(Set(ends).isSubset(of: Set(scrubbed.all.map { $0[0] })), "\(scrubbed.all)")
    }

    func testProgressStillEndsAtTheTotalWhenASegmentIsDamaged() throws {
        let dir = tmpPath("c")
        let c = try makeCollection(dir)
        let sizes = try segmentFileSizes(dir, c)
        let name = try c.snapshot().manifest.segments[1].name
        c.close()
        // Cut the middle segment short: it cannot be opened, and is reported as a problem.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/\(name)"))
        try handle.truncate(atOffset: 100)
        try handle.close()
        let verified = Calls()
        XCTAssertFalse(try StrataCollection.verify(path: dir, progress: verified.callback).isSound)
        assertProgress(verified.all, total: sizes[0] + 100 + sizes[2])
        let scrubbed = Calls()
        XCTAssertFalse(try StrataCollection.scrub(path: dir, progress: scrubbed.callback).isSound)
        assertProgress(scrubbed.all, total: sizes[0] + 100 + sizes[2])
    }
}
