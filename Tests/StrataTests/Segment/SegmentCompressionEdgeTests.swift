// Highly compressible payload blocks (LZ4 near its 255:1 limit) must round-trip: the reader bounds
// decoded-length claims by the stored length, and this is the real-data edge of that bound.
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class SegmentCompressionEdgeTests: StrataTestCase {
    func testAllZeroBlocksNearTheLZ4RatioLimitRoundTrip() throws {
        let rows = 40_000
        let schema = SegmentSchema(dimension: 1, metric: .l2,
                                   columns: [ColumnSpec(name: "zero", type: .int64), ColumnSpec(name: "empty", type: .string)])
        var options = SegmentWriterOptions()
        options.rowsPerBlock = rows
        options.maxBlockBytes = 1 << 20
        let path = tmpPath("zeros.seg")
        let writer = try SegmentWriter(path: path, schema: schema, options: options)
        for i in 0..<rows {
            try [Float(i)].withUnsafeBufferPointer { try writer.append(id: UInt64(i), vector: $0, values: [.int64(0), .string("")]) }
        }
        try writer.finish()
        let seg = try Segment.open(path: path)
        let blocks = try seg.blocks(ofColumn: "zero")
        XCTAssertGreaterThan(Double(blocks[0].decodedLength) / Double(blocks[0].storedLength), 200, "expected a near-limit ratio")
        XCTAssertTrue(seg.verify().isSound)
        XCTAssertEqual(try seg.value(row: rows - 1, column: "zero"), .int64(0))
        XCTAssertEqual(try seg.value(row: 0, column: "empty"), .string(""))
    }
}
