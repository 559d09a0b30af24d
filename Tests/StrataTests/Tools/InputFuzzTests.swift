// The input campaign: the files `strata build` / `strata insert` read (vectors, TSV payload, ids,
// sparse vectors) through `InputRows`, `StrataCollection.preflight`, inserts and a segment build,
// checking that a refused input writes nothing, that an accepted one goes in whole, and that a
// failed build leaves nothing (InputHarness). Three parts:
//   - a seeded campaign of valid inputs with structured mutations (NaN, infinity, float16
//     overflow, zero vectors, bad and non-UTF-8 TSV cells, repeated and live ids, short and long
//     side files, bad sparse entries, truncated or ragged .fvecs, random byte flips);
//   - `IdList` (`strata delete --ids`) on random texts: total equals what is enumerated;
//   - the seeds and every crasher of the `input` libFuzzer target (Fixtures/fuzz-regressions/input).
// `InputHarness` (StrataTestSupport) is the harness the libFuzzer target in tools/fuzz runs.
import Foundation
import XCTest
import Strata
import StrataTools
@testable import StrataTestSupport

final class InputFuzzTests: StrataTestCase {
    /// Seeded cases of the campaign (about 40 ms each in a debug build).
    static let campaignCases = 200

    func testSeededInputCampaign() throws {
        var rng = SplitMix64(seed: 0x1A9B_7E57)
        var tally: [String: Int] = [:]
        for n in 0..<Self.campaignCases {
            let (data, mutations) = Self.makeCase(&rng)
            let outcome = InputHarness.run(data, scratch: tmpPath("case"))
            switch outcome {
            case .violation(let what): XCTFail("case \(n) (\(mutations.joined(separator: ", "))): \(what)")
            case .unreadable(let code): tally["unreadable \(code)", default: 0] += 1
            case .refused(let code): tally["refused \(code)", default: 0] += 1
            case .inserted: tally["inserted", default: 0] += 1
            }
        }
        // The campaign reached each class of outcome it exists for.
        for key in ["inserted", "refused nonFiniteValue", "refused duplicateId", "refused corrupt", "refused typeMismatch",
                    "refused invalidValue", "unreadable corrupt", "unreadable invalidArgument"] {
            XCTAssertGreaterThan(tally[key] ?? 0, 0, "no case ended \(key): \(tally)")
        }
        print("input campaign: \(Self.campaignCases) cases: \(tally.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
    }

    func testIdListsEnumerateWhatTheyCount() {
        var rng = SplitMix64(seed: 0x1D5)
        let alphabet = Array("0123456789,. 9")
        var parsed = 0
        for _ in 0..<3000 {
            let text = String((0..<rng.int(24)).map { _ in alphabet[rng.int(alphabet.count)] })
            guard let list = IdList(parsing: text) else { continue }
            parsed += 1
            guard list.total <= 100_000 else { continue }
            var count: UInt64 = 0
            for id in list {
                count += 1
                XCTAssertTrue(list.parts.contains { $0.contains(id) }, text)
            }
            XCTAssertEqual(count, list.total, text)
        }
        XCTAssertGreaterThan(parsed, 100)
        // The edges: the largest id, empty ranges, a total past UInt64.max saturates.
        XCTAssertEqual(Array(IdList(parsing: "18446744073709551615")!), [UInt64.max])
        XCTAssertEqual(IdList(parsing: "5..5, 7")!.total, 1)
        XCTAssertEqual(IdList(parsing: "0..18446744073709551615,0..18446744073709551615")!.total, UInt64.max)
        XCTAssertNil(IdList(parsing: "9..3"))
        XCTAssertNil(IdList(parsing: "1..2..3"))
    }

    func testFuzzSeedsAndRegressionInputs() throws {
        let dir = repoRoot.appendingPathComponent("Fixtures/fuzz-regressions/input")
        var inputs: [[UInt8]] = InputHarness.seeds()
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() where !name.hasPrefix(".") {
            inputs.append([UInt8](try Data(contentsOf: dir.appendingPathComponent(name))))
        }
        for (i, data) in inputs.enumerated() {
            let outcome = InputHarness.run(data, scratch: tmpPath("replay"))
            if case .violation(let what) = outcome { XCTFail("input \(i): \(what)") }
            if i < InputHarness.seeds().count, case .inserted = outcome {} else if i < InputHarness.seeds().count {
                XCTFail("seed \(i) should insert: \(outcome)")
            }
        }
    }

    // MARK: case generation

    static func fvecs(_ rows: [[Float]]) -> [UInt8] { [UInt8](fvecsData(rows)) }

    /// A valid input of 1...24 rows with 0...3 mutations; returns the bytes and the mutations' names.
    static func makeCase(_ rng: inout SplitMix64) -> ([UInt8], [String]) {
        let n = 1 + rng.int(24)
        var vectors = (0..<n).map { i in [Float(i + 1), Float(rng.int(5)), 0.5, -1] }
        var payload = (0..<n).map { i -> [UInt8] in
            Array("row \(i) é\t\(rng.int(3) == 0 ? "" : String(i * 7))\t\(rng.int(2) == 0 ? "" : "x,y")\t\(Double(i) / 8)\t\(i % 2 == 0 ? "true" : "0")".utf8)
        }
        var ids = (0..<n).map { "\(10 + 3 * $0)" }
        var sparse = (0..<n).map { i in rng.int(4) == 0 ? "" : "\(i):0.5 \(i + 3):\(Float(rng.int(9)) / 4)" }
        var control = UInt8(truncatingIfNeeded: rng.next()) | 0x30   // payload and sparse files in most cases
        if rng.int(4) == 0 { control &= ~0x30 }
        if rng.int(2) == 0 { control &= ~0x08 }                    // a --rows range in half the cases
        let rowStart = UInt8(rng.int(n)), rowCount = UInt8(rng.int(n - Int(rowStart) + 2))
        var firstId = UInt64(rng.int(2000))
        var fvecsTail: [UInt8] = []
        var flips: [(part: Int, at: Int, value: UInt8)] = []
        var names: [String] = []
        for _ in 0..<rng.int(4) {
            let r = rng.int(n)
            switch rng.int(16) {
            case 0: vectors[r][rng.int(4)] = [Float.nan, .infinity, -.infinity][rng.int(3)]; names.append("non-finite row \(r)")
            case 1: vectors[r][rng.int(4)] = [1e30, -70000, 65505][rng.int(3)]; names.append("large value row \(r)")
            case 2: vectors[r] = [0, 0, 0, 0]; names.append("zero vector row \(r)")
            case 3: payload[r] = Array("row\tnot a number\t\t\t".utf8); names.append("type row \(r)")
            case 4: payload[r].insert(0xFF, at: rng.int(payload[r].count)); names.append("invalid UTF-8 row \(r)")
            case 5: payload[r] += Array("\textra".utf8); names.append("extra field row \(r)")
            case 6: payload.remove(at: r); names.append("payload line \(r) removed")
            case 7: ids[r] = ids[rng.int(n)]; names.append("repeated id row \(r)")
            case 8: ids[r] = ["1", "2", "1000"][rng.int(3)]; firstId = [0, 1, 999][rng.int(3)]; names.append("live id row \(r)")
            case 9: ids[r] = ["x", "-1", "18446744073709551616", ""][rng.int(4)]; names.append("bad id row \(r)")
            case 10: ids.append("77"); payload.append(payload[r]); sparse.append(""); names.append("lines past the end")
            case 11: sparse[r] = ["3", "3:nan", "x:1", "3:1e39", "1:2:3"][rng.int(5)]; names.append("bad sparse row \(r)")
            case 12: firstId = UInt64.max - UInt64(rng.int(30)); names.append("first id near the top")
            case 13: fvecsTail = [UInt8](repeating: 7, count: 1 + rng.int(20)); names.append("ragged fvecs")
            case 14: vectors[r] = [1, 2, 3]; names.append("short record row \(r)")
            default: flips.append((rng.int(4), rng.int(400), UInt8(truncatingIfNeeded: rng.next()))); names.append("byte flip")
            }
        }
        var parts: [[UInt8]] = [
            fvecs(vectors) + fvecsTail,
            payload.flatMap { $0 + [0x0A] },
            Array(ids.map { $0 + "\n" }.joined().utf8),
            Array(sparse.map { $0 + "\n" }.joined().utf8),
        ]
        for f in flips where !parts[f.part].isEmpty { parts[f.part][f.at % parts[f.part].count] = f.value }
        return (InputHarness.encode(control: control, rowStart: rowStart, rowCount: rowCount, firstId: firstId, parts: parts), names)
    }
}
