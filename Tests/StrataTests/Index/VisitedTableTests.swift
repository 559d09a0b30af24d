// VisitedTable (StrataIndex/Graph/VisitedTable.swift): the per-search set of seen nodes that replaced O(rows)
// visited arrays, checked against Swift's Set through growth and clears.
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class VisitedTableTests: XCTestCase {
    func testInsertReportsNewIdsOnceAcrossGrowthAndClear() {
        var table = VisitedTable(capacity: 1)
        defer { table.deallocate() }
        XCTAssertEqual(table.mask + 1, 64, "the smallest table has 64 slots")
        var rng = SplitMix64(seed: 4)
        for round in 0..<3 {
            var reference = Set<UInt32>()
            for _ in 0..<50 {
                table.reserve(40)
                for _ in 0..<40 {
                    // Ids from a small range repeat; 0 and UInt32.max - 1 are the edge keys.
                    let id: UInt32 = rng.int(10) == 0 ? [0, UInt32.max - 1][rng.int(2)] : UInt32(rng.int(3000))
                    XCTAssertEqual(table.insert(id), reference.insert(id).inserted, "round \(round), id \(id)")
                }
                XCTAssertLessThanOrEqual(table.count * 2, table.mask + 1, "never more than half full")
            }
            XCTAssertEqual(table.count, reference.count)
            table.clear()
            XCTAssertEqual(table.count, 0)
        }
    }
}
