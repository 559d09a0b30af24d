// The id index sort at SegmentWriter.finish(): above SegmentWriterOptions.idSortMemoryBytes it
// spills sorted runs next to the segment and merges them; the file must be byte-identical to the
// in-memory sort's, the run files must be gone, and a repeated id must still be refused.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex

final class ExternalIdSortTests: StrataTestCase {
    private let schema = SegmentSchema(dimension: 4, metric: .l2, columns: [ColumnSpec(name: "n", type: .int64)])

    /// `count` rows with distinct, shuffled ids (some near UInt64.max).
    private func rows(_ count: Int, seed: UInt64) -> [SegmentRow] {
        var rng = SplitMix64(seed: seed)
        var ids = (0..<UInt64(count)).map { $0 % 3 == 0 ? UInt64.max - $0 : $0 * 7919 }
        for i in stride(from: ids.count - 1, to: 0, by: -1) { ids.swapAt(i, rng.int(i + 1)) }
        return ids.enumerated().map { (r, id) in
            SegmentRow(id: id, vector: (0..<4).map { _ in rng.unitFloat() }, payload: ["n": .int64(Int64(r))])
        }
    }

    private func write(_ rows: [SegmentRow], to path: String, idSortBytes: Int?) throws -> SegmentWriteSummary {
        var o = SegmentWriterOptions()
        o.idSortMemoryBytes = idSortBytes
        let w = try SegmentWriter(path: path, schema: schema, options: o)
        for chunk in stride(from: 0, to: rows.count, by: 100) { try w.append(Array(rows[chunk..<min(rows.count, chunk + 100)])) }
        return try w.finish()
    }

    func testExternalSortWritesTheSameBytesAsTheInMemorySort() throws {
        // Run sizes that divide the rows, that do not, and a single-row run.
        for (count, bound) in [(1000, 16 * 37), (1000, 16 * 100), (257, 16), (5, 16 * 2)] {
            let input = rows(count, seed: UInt64(count + bound))
            let memory = tmpPath("mem-\(count)-\(bound).seg"), external = tmpPath("ext-\(count)-\(bound).seg")
            _ = try write(input, to: memory, idSortBytes: nil)
            _ = try write(input, to: external, idSortBytes: bound)
            XCTAssertEqual(IdIndexSort(rows: count, memoryBytes: bound, tempPrefix: "x").runRows, max(1, bound / 16), "the bound must force runs")
            let a = try Data(contentsOf: URL(fileURLWithPath: memory)), b = try Data(contentsOf: URL(fileURLWithPath: external))
            XCTAssertEqual(a, b, "\(count) rows, bound \(bound)")
            let segment = try Segment.open(path: external)
            XCTAssertTrue(segment.verify().isSound)
            for row in input.prefix(50) { XCTAssertNotNil(try segment.row(forId: row.id)) }
        }
        XCTAssertEqual(tmpContents().filter { !$0.hasSuffix(".seg") || $0.hasPrefix(".") }, [], "run files and temporaries are removed")
    }

    func testInMemoryWhenTheRowsFitTheBound() {
        XCTAssertNil(IdIndexSort(rows: 100, memoryBytes: 100 * 40, tempPrefix: "x").runRows)
        XCTAssertNil(IdIndexSort(rows: 1 << 30, memoryBytes: nil, tempPrefix: "x").runRows)
        XCTAssertEqual(IdIndexSort(rows: 101, memoryBytes: 100 * 40, tempPrefix: "x").runRows, 250)
    }

    func testExternalSortRefusesARepeatedIdAcrossRuns() throws {
        var input = rows(300, seed: 9)
        input[250].id = input[3].id  // in different runs of 16 rows
        let path = tmpPath("dup.seg")
        let e = assertStrataError(.duplicateId) { try write(input, to: path, idSortBytes: 16 * 16) }
        XCTAssertTrue(e?.message.contains("appears in row 3 and row 250") ?? false, e?.message ?? "")
        XCTAssertEqual(tmpContents(), [], "no segment, temporary or run file is left")
    }

    func testHeapPopsInOrder() {
        var heap = PairHeap()
        var rng = SplitMix64(seed: 4)
        var expected: [UInt64] = []
        for i in 0..<500 {
            let id = rng.next()
            expected.append(id)
            heap.push((id, UInt64(i)), run: i % 7)
        }
        var got: [UInt64] = []
        while let top = heap.pop() { got.append(top.id) }
        XCTAssertEqual(got, expected.sorted())
    }
}
