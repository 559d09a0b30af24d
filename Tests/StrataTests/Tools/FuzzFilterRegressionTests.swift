// Replays Fixtures/fuzz-regressions/filter/ (and the target's seeds) through the filter fuzz
// target's harness (`FilterHarness` in StrataTestSupport, which tools/fuzz runs under libFuzzer).
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools
@testable import StrataTestSupport

final class FuzzFilterRegressionTests: StrataTestCase {
    func testFilterRegressionInputs() throws {
        let path = tmpPath("template.seg")
        try FilterHarness.writeTemplate(to: path)
        let seg = try Segment.open(path: path)
        defer { seg.close() }
        XCTAssertTrue(seg.hasIndex)
        // Every seed parses and fits the template's schema (so the fuzzer starts past the parser).
        for seed in FilterHarness.seeds {
            XCTAssertNoThrow(try Filter(json: seed).validate(against: seg.schema), seed)
        }
        var inputs = FilterHarness.seeds.map { Data($0.utf8) }
        let dir = repoRoot.appendingPathComponent("Fixtures/fuzz-regressions/filter")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        inputs += try names.filter { !$0.hasPrefix(".") }.sorted().map { try Data(contentsOf: dir.appendingPathComponent($0)) }
        for data in inputs { FilterHarness.run([UInt8](data), segment: seg) }
    }
}
