// The layout ranges `strata dump` prints (header, section directory, footer) agree with the footer
// on disk: the directory offset and length it records.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat

final class SegmentLayoutRangeTests: XCTestCase {
    func testRangesMatchTheFooter() throws {
        for name in ["Fixtures/v1/small.seg", "Fixtures/v1.2/search.seg"] {
            let path = repoRoot.appendingPathComponent(name).path
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let footer = bytes.count - 64
            let seg = try Segment.open(path: path)
            defer { seg.close() }
            XCTAssertEqual(seg.footerRange, UInt64(footer)..<UInt64(bytes.count), name)
            XCTAssertEqual(seg.directoryRange.lowerBound, Reseal.load64(bytes, footer), name)
            XCTAssertEqual(UInt64(seg.directoryRange.count), Reseal.load64(bytes, footer + 8), name)
            XCTAssertEqual(seg.headerRange, 0..<4096, name)
        }
    }
}
