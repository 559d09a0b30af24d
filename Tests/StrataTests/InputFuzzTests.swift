// The input campaign: the files `strata build` / `strata insert` read (vectors, TSV payload, ids,
// sparse vectors) through `InputRows`, `StrataCollection.preflight`, inserts and a segment build,
// checking that a refused input writes nothing, that an accepted one goes in whole, and that a
// failed build leaves nothing (InputHarness, below). Three parts:
//   - a seeded campaign of valid inputs with structured mutations (NaN, infinity, float16
//     overflow, zero vectors, bad and non-UTF-8 TSV cells, repeated and live ids, short and long
//     side files, bad sparse entries, truncated or ragged .fvecs, random byte flips);
//   - `IdList` (`strata delete --ids`) on random texts: total equals what is enumerated;
//   - the seeds and every crasher of the `input` libFuzzer target (Fixtures/fuzz-regressions/input).
// `InputHarness` is a copy of tools/fuzz/Sources/FuzzInput/InputHarness.swift (the fuzz package is
// separate so that the main build never compiles sanitizer flags); a test checks the copies match.
import Foundation
import XCTest
import Strata
import StrataTools

final class InputFuzzTests: StrataTestCase {
    /// Seeded cases of the campaign (about 40 ms each in a debug build).
    static let campaignCases = 200

    func testHarnessCopyMatchesTheFuzzTarget() throws {
        let original = try String(contentsOf: repoRoot.appendingPathComponent("tools/fuzz/Sources/FuzzInput/InputHarness.swift"), encoding: .utf8)
        let copy = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        // From the enum's first line to the end marker, both at the start of a line.
        func harness(_ text: String) -> String? {
            guard let start = text.range(of: "\nenum InputHarness {"),
                  let end = text.range(of: "\n// MARK: - end of InputHarness", range: start.upperBound..<text.endIndex) else { return nil }
            return String(text[start.lowerBound..<end.lowerBound])
        }
        XCTAssertNotNil(harness(original))
        XCTAssertEqual(harness(original), harness(copy),
                       "InputHarness here and in tools/fuzz/Sources/FuzzInput/InputHarness.swift must be identical")
    }

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
        var inputs: [[UInt8]] = Self.seeds()
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() where !name.hasPrefix(".") {
            inputs.append([UInt8](try Data(contentsOf: dir.appendingPathComponent(name))))
        }
        for (i, data) in inputs.enumerated() {
            let outcome = InputHarness.run(data, scratch: tmpPath("replay"))
            if case .violation(let what) = outcome { XCTFail("input \(i): \(what)") }
            if i < Self.seeds().count, case .inserted = outcome {} else if i < Self.seeds().count {
                XCTFail("seed \(i) should insert: \(outcome)")
            }
        }
    }

    // MARK: case generation

    /// The fuzz target's seeds (mirror of `inputSeeds()` in tools/fuzz/Sources/FuzzInput/FuzzInput.swift).
    static func seeds() -> [[UInt8]] {
        let v = fvecs((0..<8).map { i in [Float(i + 1), Float(i % 3), 0.5, -1] })
        let payload = Array((0..<8).map { "name \($0)\t\($0 % 3 == 0 ? "" : String($0))\ta,b\t\(Double($0) / 4)\t\($0 % 2 == 0)\n" }.joined().utf8)
        let ids = Array((0..<8).map { "\(10 + $0 * 3)\n" }.joined().utf8)
        let sparse = Array((0..<8).map { $0 % 4 == 3 ? "\n" : "\($0):0.5,\($0 + 7):\($0)\n" }.joined().utf8)
        return [
            InputHarness.encode(control: 0x34, parts: [v, payload, ids, sparse]),
            InputHarness.encode(control: 0x12, parts: [v, payload, ids, sparse]),
            InputHarness.encode(control: 0x5D, rowStart: 2, rowCount: 5, firstId: 500, parts: [v, payload, ids, sparse]),
            InputHarness.encode(control: 0xB6, parts: [v, payload, ids, sparse]),
        ]
    }

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

// MARK: - InputHarness (copy of tools/fuzz/Sources/FuzzInput/InputHarness.swift)

enum InputHarness {
    static let columns = try! SegmentSchema.parseColumns("name:string,n:int64?,tags:string_list?,x:float64?,b:bool?")
    static let separator: [UInt8] = [0x0A, 0x1E, 0x0A]
    static let headerLength = 11
    static let liveIds: [UInt64] = [1, 2, 1000]

    enum Outcome: Equatable {
        /// The files could not be opened as input (a bad vector file, a bad range).
        case unreadable(StrataError.Code)
        /// Preflight refused the input; nothing was written.
        case refused(StrataError.Code)
        /// Everything was inserted: this many rows.
        case inserted(Int)
        /// A property did not hold.
        case violation(String)
    }

    /// Builds an input from its parts.
    static func encode(control: UInt8, rowStart: UInt8 = 0, rowCount: UInt8 = 0, firstId: UInt64 = 0, parts: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = [control, rowStart, rowCount]
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: firstId >> (8 * UInt64(i)))) }
        for (i, p) in parts.enumerated() {
            if i > 0 { out += separator }
            out += p
        }
        return out
    }

    /// The four parts of `data` after the header (missing ones empty).
    static func parts(_ data: [UInt8]) -> [[UInt8]] {
        var parts: [[UInt8]] = []
        var rest = data.count > headerLength ? Array(data[headerLength...]) : []
        while parts.count < 3, let r = firstRange(of: separator, in: rest) {
            parts.append(Array(rest[..<r.lowerBound]))
            rest = Array(rest[r.upperBound...])
        }
        parts.append(rest)
        while parts.count < 4 { parts.append([]) }
        return parts
    }

    static func firstRange(of needle: [UInt8], in haystack: [UInt8]) -> Range<Int>? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return i..<(i + needle.count) }
        }
        return nil
    }

    /// Runs one input in `scratch` (a directory this harness owns).
    static func run(_ data: [UInt8], scratch: String) -> Outcome {
        guard data.count >= headerLength else { return .unreadable(.truncated) }
        let control = data[0]
        var firstId: UInt64 = 0
        for i in 0..<8 { firstId |= UInt64(data[3 + i]) << (8 * UInt64(i)) }
        let p = parts(data)
        let fm = FileManager.default
        try? fm.removeItem(atPath: scratch)
        try? fm.createDirectory(atPath: scratch + "/out", withIntermediateDirectories: true)
        let vectors = scratch + "/v.fvecs", payload = scratch + "/p.tsv", ids = scratch + "/ids.txt", sparse = scratch + "/s.txt"
        _ = fm.createFile(atPath: vectors, contents: Data(p[0]))
        _ = fm.createFile(atPath: payload, contents: Data(p[1]))
        _ = fm.createFile(atPath: ids, contents: Data(p[2]))
        _ = fm.createFile(atPath: sparse, contents: Data(p[3]))
        let idSource: InputIdSource
        switch control & 3 {
        case 1: idSource = .sequential(first: firstId)
        case 2: idSource = .file(ids)
        default: idSource = .rowNumbers
        }
        let upsert = control & 4 != 0
        let rows: Range<Int>? = control & 8 != 0 ? Int(data[1] % 64)..<(Int(data[1] % 64) + Int(data[2] % 64)) : nil
        let schema = SegmentSchema(dimension: 4, elementType: control & 0x80 != 0 ? .float16 : .float32,
                                   metric: control & 0x40 != 0 ? .cosine : .l2, columns: columns)
        let input: InputRows
        do throws(StrataError) {
            input = try InputRows(vectors: vectors, rows: rows, payload: control & 0x10 != 0 ? payload : nil, columns: columns,
                                  ids: idSource, sparse: control & 0x20 != 0 ? sparse : nil)
        } catch {
            return error.path == nil ? .violation("input error without a file: \(error)") : .unreadable(error.code)
        }
        // The collection: ids 1, 2, 1000 live.
        var options = CollectionOptions()
        options.index = nil
        options.flushThresholdRows = 1 << 30
        let collection: StrataCollection
        do throws(StrataError) {
            collection = try StrataCollection.create(path: scratch + "/coll", schema: schema, options: options)
            try collection.insert(liveIds.map { SegmentRow(id: $0, vector: [1, Float($0), 0.5, -2], payload: ["name": .string("live \($0)")]) })
        } catch {
            return .violation("cannot make the collection: \(error)")
        }
        defer { collection.close() }
        func state() -> [UInt64] {
            guard let s = try? collection.stats() else { return [] }
            return [UInt64(s.liveRows), s.walBytes, s.walSequence, s.generation]
        }
        let before = state()
        // The build property needs the upsert-mode verdict.
        let upsertVerdict: StrataError?
        do throws(StrataError) { try collection.preflight(input, upsert: true); upsertVerdict = nil } catch { upsertVerdict = error }
        if let e = upsertVerdict, e.path == nil { return .violation("preflight error without a file: \(e)") }
        if let v = checkBuild(input, schema: schema, mustSucceed: upsertVerdict == nil, scratch: scratch) { return .violation(v) }
        var verdict = upsertVerdict
        if !upsert, verdict == nil {
            do throws(StrataError) { try collection.preflight(input, upsert: false) } catch { verdict = error }
        }
        if let verdict {
            if verdict.path == nil { return .violation("preflight error without a file: \(verdict)") }
            if state() != before { return .violation("a refused input changed the collection: \(before) -> \(state()) after \(verdict)") }
            return .refused(verdict.code)
        }
        // Passed: every row must go in.
        var batch: [SegmentRow] = []
        var inserted = 0
        do throws(StrataError) {
            try input.forEach { (row) throws(StrataError) in
                var payload: [String: PayloadValue] = [:]
                for (spec, v) in zip(input.columns, row.values) { payload[spec.name] = v }
                batch.append(SegmentRow(id: row.id, vector: input.vectors.row(row.fileRow), payload: payload))
                if batch.count == 7 {
                    if upsert { try collection.upsert(batch) } else { try collection.insert(batch) }
                    inserted += batch.count
                    batch.removeAll()
                }
            }
            if upsert { try collection.upsert(batch) } else { try collection.insert(batch) }
            inserted += batch.count
        } catch {
            return .violation("input passed preflight (upsert \(upsert)) but row \(inserted + batch.count) failed: \(error)")
        }
        let replaced = upsert ? liveIds.filter { id in (try? input.firstRow(withId: id)) != nil }.count : 0
        guard let live = try? collection.count(), live == liveIds.count + inserted - replaced else {
            return .violation("expected \(liveIds.count + inserted - replaced) live rows, got \(String(describing: try? collection.count()))")
        }
        if let v = checkFidelity(input, ids: idSource, rawPayload: control & 0x10 != 0 ? p[1] : nil, rawIds: p[2], collection) { return .violation(v) }
        return .inserted(inserted)
    }

    /// Each row is in the collection under the id the input says (row number, first id + k, or the
    /// ids file's line, computed here independently of `InputRows`), with its `name` cell's bytes
    /// exactly as in the TSV (no U+FFFD). Returns a violation, or nil.
    static func checkFidelity(_ input: InputRows, ids: InputIdSource, rawPayload: [UInt8]?, rawIds: [UInt8],
                              _ collection: StrataCollection) -> String? {
        let payloadLines = rawPayload.map { $0.split(separator: 0x0A, omittingEmptySubsequences: false) }
        let idLines = rawIds.split(separator: 0x0A, omittingEmptySubsequences: false)
        for (k, r) in input.rows.enumerated() {
            let id: UInt64
            switch ids {
            case .rowNumbers: id = UInt64(r)
            case .sequential(let first):
                let (sum, overflow) = first.addingReportingOverflow(UInt64(k))
                guard !overflow else { return "row \(r): first id \(first) + \(k) passes UInt64.max but was accepted" }
                id = sum
            case .file:
                let text = String(decoding: idLines[r], as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: " \t\r"))
                guard let v = UInt64(text) else { return "row \(r): ids line '\(text)' was accepted" }
                id = v
            }
            guard let record = try? collection.get(id: id) else { return "row \(r): no live row with id \(id)" }
            if let payloadLines, case .string(let name) = record.payload[0] {
                let cell = payloadLines[r].split(separator: 0x09, omittingEmptySubsequences: false)[0]
                guard Array(name.utf8) == Array(cell) else { return "row \(r): name \(Array(name.utf8)) stored for cell \(Array(cell))" }
            }
        }
        return nil
    }

    /// `build` of the input: when it must succeed, it does and verifies; when it fails, it leaves
    /// nothing behind. Returns a violation, or nil.
    static func checkBuild(_ input: InputRows, schema: SegmentSchema, mustSucceed: Bool, scratch: String) -> String? {
        let out = scratch + "/out/b.seg"
        let buildSchema = SegmentSchema(dimension: 4, elementType: schema.elementType, metric: schema.metric, columns: input.columns)
        do throws(StrataError) {
            let writer = try SegmentWriter(path: out, schema: buildSchema)
            try input.forEach { (row) throws(StrataError) in
                do throws(StrataError) {
                    try input.vectors.withRow(row.fileRow) { (v) throws(StrataError) in try writer.append(id: row.id, vector: v, values: row.values) }
                    if let s = row.sparse { try writer.setSparseVector(row: writer.rowCount - 1, s) }
                } catch {
                    throw input.locate(error, row: row)
                }
            }
            let summary = try writer.finish()
            let seg = try Segment.open(path: out)
            defer { seg.close() }
            guard seg.verify().isSound, summary.rowCount == input.rows.count else { return "built segment is not sound or has the wrong rows" }
            try? FileManager.default.removeItem(atPath: out)
        } catch {
            if mustSucceed { return "input passed preflight but build failed: \(error)" }
            if error.path == nil { return "build error without a file: \(error)" }
            let left = (try? FileManager.default.contentsOfDirectory(atPath: scratch + "/out")) ?? []
            if !left.isEmpty { return "failed build left \(left)" }
        }
        return nil
    }
}
// MARK: - end of InputHarness
