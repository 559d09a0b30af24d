// Replays the fuzz regression corpus (Fixtures/fuzz-regressions/<target>/) through the harnesses of
// the libFuzzer targets in tools/fuzz, so that every crasher ever found stays fixed in the normal
// suite. `FuzzHarness` mirrors tools/fuzz/Sources/FuzzSegment/FuzzSegment.swift and
// tools/fuzz/Sources/FuzzCollection/FuzzCollection.swift: keep the two in sync (the fuzz package is
// separate so the main build never compiles sanitizer flags, hence the copy). A regression passes
// when the harness returns: a thrown StrataError is a fine outcome, a trap kills the test process.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

#if canImport(Glibc)
import Glibc
#endif

/// The fuzz harness bodies, run on one input each.
enum FuzzHarness {
    /// Segment target: the input as given; if re-sealing changes it, re-sealed; if the deep re-seal
    /// (block and section checksums too) changes it further, deep re-sealed.
    static func segment(_ data: Data, scratch: String) {
        segmentOnce(data, scratch: scratch)
        guard data.count >= 4160 else { return }
        var sealed = [UInt8](data)
        Reseal.segment(&sealed)
        if !sealed.elementsEqual(data) { segmentOnce(Data(sealed), scratch: scratch) }
        var deep = sealed
        Reseal.segmentDeep(&deep)
        if deep != sealed { segmentOnce(Data(deep), scratch: scratch) }
    }

    /// Bytes -> file -> open, verify, read rows/payload/columns, filtered / sparse / BM25 / hybrid
    /// search steered by bytes 64..<320 (`FuzzSearch`), exact and index search.
    static func segmentOnce(_ data: Data, scratch: String) {
        let path = scratch + "/input.seg"
        unlink(path)
        _ = FileManager.default.createFile(atPath: path, contents: data)
        guard let seg = try? Segment.open(path: path) else { return }
        defer { seg.close() }
        _ = seg.verify()
        let n = seg.rowCount
        let rows = Set([0, 1, n / 2, n - 1].filter { $0 >= 0 && $0 < n })
        for r in rows {
            if let id = try? seg.id(ofRow: r) { _ = try? seg.row(forId: id) }
            _ = try? seg.vector(row: r)
            _ = try? seg.payload(row: r)
            for c in seg.schema.columns.prefix(4) { _ = try? seg.value(row: r, column: c.name) }
        }
        _ = try? seg.row(forId: 0x5EED)
        for c in seg.schema.columns.prefix(4) {
            _ = try? seg.blocks(ofColumn: c.name)
            var seen = 0
            try? seg.scan(column: c.name) { _, _ in seen += 1 }
        }
        _ = seg.columnStatistics
        FuzzSearch.exercise(seg, control: data.count >= 320 ? [UInt8](data[64..<320]) : [])
        let d = seg.schema.dimension
        guard d > 0, d <= 1 << 16 else { return }
        let query = (0..<d).map { Float(($0 % 7) - 3) * 0.25 }
        _ = try? seg.exactSearch(query: query, k: 5)
        _ = try? seg.exactSearch(queries: [query, query.map { -$0 }], k: 3)
        _ = try? seg.search(query: query, options: SearchOptions(k: 5, listSize: 16))
        _ = try? seg.search(query: query, options: SearchOptions(k: 3, listSize: 8, beamWidth: 2, exact: false, readAhead: true))
    }

    static let collectionSchema = SegmentSchema(dimension: 4, elementType: .float32, metric: .l2,
                                                columns: [ColumnSpec(name: "ver", type: .int64), ColumnSpec(name: "tag", type: .string, nullable: true)])

    static func collectionRows(_ ids: some Sequence<UInt64>) -> [SegmentRow] {
        ids.map { id in
            SegmentRow(id: id, vector: (0..<4).map { Float((Int(id) * 7 + $0 * 3) % 11) - 5 },
                       payload: ["ver": .int64(Int64(id)), "tag": id % 3 == 0 ? .null : .string("t\(id)")])
        }
    }

    /// The template collection (same steps as the fuzz target): its files and the three fuzzed names.
    static func collectionTemplate(in scratch: String) throws -> (files: [String: Data], targets: [String]) {
        let dir = scratch + "/template"
        var o = CollectionOptions()
        o.flushThresholdRows = 1_000_000
        o.index = nil
        o.obsoleteFileGraceSeconds = 3600
        o.rowsPerBlock = 4
        let c = try StrataCollection.create(path: dir, schema: collectionSchema, options: o)
        try c.insert(collectionRows(1...12))
        _ = try c.flush()
        _ = try c.delete(ids: [2, 5, 9])
        _ = try c.flush()
        try c.insert(collectionRows(20...24))
        try c.upsert(collectionRows([3]))
        _ = try c.delete(ids: [4, 21])
        c.close()
        var files: [String: Data] = [:]
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        for n in names where !n.hasSuffix("lock") && n != "LOCK" {
            files[n] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + n))
        }
        let wal = try XCTUnwrap(names.filter { $0.hasPrefix("wal-") }.sorted().last)
        let bitmap = try XCTUnwrap(names.first { $0.hasSuffix(".del") })
        return (files, ["MANIFEST", wal, bitmap])
    }

    static func exercise(_ c: StrataCollection) {
        _ = try? c.count()
        for id in [1, 2, 3, 4, 12, 20, 21, 999] as [UInt64] { _ = try? c.get(id: id) }
        _ = try? c.search(query: [0, 1, -1, 2], options: SearchOptions(k: 5))
        _ = try? c.search(query: [0, 1, -1, 2], options: SearchOptions(k: 50, exact: true))
        _ = try? c.stats()
    }

    /// Collection target: byte 0 picks MANIFEST / WAL / bitmap (% 3) and re-sealing ((/ 3) % 2), the
    /// rest replaces that file in a fresh copy of the template; verify, open read-only, open read-write.
    /// Returns a violation of the WAL rules (the fuzz target traps on it instead), or nil.
    static func collection(_ data: Data, template: (files: [String: Data], targets: [String]), scratch: String) -> String? {
        guard let selector = data.first else { return nil }
        let which = Int(selector) % 3
        let target = template.targets[which]
        var content = [UInt8](data.dropFirst())
        if (Int(selector) / 3) % 2 == 1 {
            if which == 1 { Reseal.wal(&content) } else { Reseal.trailer(&content) }
        }
        let dir = scratch + "/input"
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, bytes) in template.files {
            _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: name == target ? Data(content) : bytes)
        }
        var o = CollectionOptions()
        o.index = nil
        o.obsoleteFileGraceSeconds = 3600
        _ = try? StrataCollection.verify(path: dir)
        var roError: StrataError? = nil
        do {
            let c = try StrataCollection.open(path: dir, access: .readOnly, options: o)
            exercise(c)
            c.close()
        } catch {
            roError = error
        }
        if which == 1 { return walRuleViolation(dir: dir, wal: target, roError: roError, options: o) }
        if let c = try? StrataCollection.open(path: dir, access: .readWrite, options: o) {
            exercise(c)
            c.close()
        }
        return nil
    }

    /// The WAL rules (docs/COLLECTION-FORMAT.md C.4) as properties of an input that replaced the current WAL
    /// (`roError`: what the read-only open threw). The read-write open must agree with the read-only one;
    /// when it throws, the WAL is unchanged; when it drops a torn tail, the side file it names holds those
    /// bytes exactly and the WAL is cut there; when it drops nothing, the WAL is unchanged. A damaged
    /// record (section "wal", past the file header) is cut by `recoverWAL(apply: true)`, which keeps the
    /// whole WAL in its copy, after which the collection opens with the records kept. Returns the first
    /// violation, or nil.
    static func walRuleViolation(dir: String, wal: String, roError: StrataError?, options o: CollectionOptions) -> String? {
        let path = dir + "/" + wal
        guard let before = FileManager.default.contents(atPath: path) else { return nil }
        let rw: StrataCollection
        do {
            rw = try StrataCollection.open(path: dir, access: .readWrite, options: o)
        } catch {
            if FileManager.default.contents(atPath: path) != before { return "a refused read-write open changed the WAL (\(error))" }
            if roError == nil { return "read-write open threw \(error) where read-only opened" }
            guard error.section == "wal", error.code == .checksumMismatch || error.code == .corrupt, (error.offset ?? 0) >= 32,
                  let report = try? StrataCollection.recoverWAL(path: dir, apply: true) else { return nil }
            guard report.state == .damaged, report.applied, let copy = report.copyFile else { return "recover did not cut the damage: \(report.state)" }
            if FileManager.default.contents(atPath: dir + "/" + copy) != before { return "the recovery copy is not the whole WAL" }
            if FileManager.default.contents(atPath: path) != before.prefix(Int(report.keptBytes)) { return "recover did not cut at \(report.keptBytes)" }
            guard let c = try? StrataCollection.open(path: dir, access: .readWrite, options: o) else { return "the collection does not open after recover" }
            defer { c.close() }
            return c.recovery.records == report.keptRecords ? nil : "\(c.recovery.records) records replayed after recover, \(report.keptRecords) kept"
        }
        defer { rw.close() }
        exercise(rw)
        if let roError { return "read-only open threw \(roError) where read-write opened" }
        let after = FileManager.default.contents(atPath: path) ?? Data()
        let dropped = Int(rw.recovery.droppedBytes)
        if dropped == 0 { return after == before ? nil : "the WAL changed with nothing dropped" }
        guard let side = rw.recovery.tornTailFile, let kept = FileManager.default.contents(atPath: dir + "/" + side) else {
            return "\(dropped) torn bytes dropped without a side file"
        }
        if kept != before.suffix(dropped) { return "the side file \(side) does not hold the torn bytes" }
        return after == before.prefix(before.count - dropped) ? nil : "the WAL is not cut at the torn tail"
    }
}

// MARK: - Mirror of tools/fuzz/Sources/FuzzSegment/SearchOperations.swift (verbatim from here to the
// test class: filtered, sparse, BM25, hybrid search and payload-index lookups steered by input bytes).

/// Choice bytes consumed in order; 0 once exhausted (so an untouched seed takes the first choices).
struct FuzzChoices {
    let bytes: [UInt8]
    var at = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func byte() -> Int {
        defer { at += 1 }
        return at < bytes.count ? Int(bytes[at]) : 0
    }

    mutating func u64() -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(byte()) << (8 * UInt64(i)) }
        return v
    }

    mutating func text(maxLength: Int) -> String {
        var b: [UInt8] = []
        for _ in 0..<(byte() % (maxLength + 1)) { b.append(UInt8(byte())) }
        return String(decoding: b, as: UTF8.self)
    }
}

enum FuzzSearch {
    /// The filter form of a stored value (first item of a list); nil for null.
    static func filterValue(_ v: PayloadValue?) -> FilterValue? {
        switch v {
        case .int64(let x): return .int(x)
        case .float64(let x): return .float(x)
        case .bool(let x): return .bool(x)
        case .string(let s): return .string(s)
        case .stringList(let l): return l.first.map { .string($0) }
        case .null, .none: return nil
        }
    }

    /// A value for a condition on `spec`: a stored one, a raw one of the column's type, or one of
    /// another type (a typeMismatch path).
    static func value(_ seg: Segment, _ spec: ColumnSpec, _ ch: inout FuzzChoices) -> FilterValue {
        let how = ch.byte()
        let n = seg.rowCount
        if how % 4 < 2, n > 0, let v = filterValue(try? seg.value(row: ch.byte() % n, column: spec.name)) {
            if case .string(let s) = v, how % 4 == 1 { return .string(String(s.prefix(ch.byte() % 4))) }
            return v
        }
        switch (how % 4 == 3 ? ch.byte() : Int(spec.type.rawValue)) % 5 {
        case 1: return .int(Int64(bitPattern: ch.u64()))
        case 2: return .float(Double(bitPattern: ch.u64()))
        case 3: return .bool(ch.byte() & 1 == 1)
        default: return .string(ch.text(maxLength: 6))
        }
    }

    static func condition(_ seg: Segment, _ ch: inout FuzzChoices, depth: Int) -> FilterCondition {
        let columns = seg.schema.columns
        let op = ch.byte() % 8
        if op == 7, depth < 2 { return .filter(filter(seg, &ch, depth: depth + 1)) }
        let pick = ch.byte()
        guard !columns.isEmpty, pick != 255 else { return .isNull(key: "no such column") }
        let spec = columns[pick % columns.count]
        switch op {
        case 1:
            var values: [FilterValue] = []
            for _ in 0..<(1 + ch.byte() % 3) { values.append(value(seg, spec, &ch)) }
            return .matchAny(key: spec.name, values: values)
        case 2, 3:
            let which = ch.byte()
            var r = FilterRange()
            if which & 1 != 0 { r.gt = value(seg, spec, &ch) }
            if which & 2 != 0 { r.gte = value(seg, spec, &ch) }
            if which & 4 != 0 { r.lt = value(seg, spec, &ch) }
            if which & 8 != 0 || which & 15 == 0 { r.lte = value(seg, spec, &ch) }
            return .range(key: spec.name, r)
        case 4:
            let p: String
            if case .string(let s) = value(seg, spec, &ch) { p = String(s.prefix(1 + ch.byte() % 3)) } else { p = ch.text(maxLength: 2) }
            return .prefix(key: spec.name, prefix: p, caseInsensitive: ch.byte() & 1 == 1)
        case 5:
            return .isNull(key: spec.name)
        default:
            return .match(key: spec.name, value: value(seg, spec, &ch))
        }
    }

    static func filter(_ seg: Segment, _ ch: inout FuzzChoices, depth: Int = 0) -> Filter {
        let shape = ch.byte()
        var f = Filter()
        for _ in 0..<(1 + shape % 3) { f.must.append(condition(seg, &ch, depth: depth)) }
        for _ in 0..<((shape / 4) % 3) { f.should.append(condition(seg, &ch, depth: depth)) }
        for _ in 0..<((shape / 16) % 2) { f.mustNot.append(condition(seg, &ch, depth: depth)) }
        return f
    }

    static func sparseQuery(_ ch: inout FuzzChoices) -> SparseVector {
        var indices: [UInt32] = [], values: [Float] = []
        for i in 0..<(1 + ch.byte() % 4) {
            let b = ch.byte()
            indices.append(b < 200 ? UInt32(b % 16) : b < 250 ? 1000 : UInt32(truncatingIfNeeded: ch.u64()))
            values.append(Float(Int8(truncatingIfNeeded: ch.byte() &+ 8 &* (i + 1))) * 0.25)
        }
        return SparseVector(indices: indices, values: values)
    }

    /// BM25 text: a stored value of the column (list items joined), sometimes cut, plus fuzz text.
    static func text(_ seg: Segment, column: String, _ ch: inout FuzzChoices) -> String {
        var t = ""
        if seg.rowCount > 0 {
            switch try? seg.value(row: ch.byte() % seg.rowCount, column: column) {
            case .string(let s): t = s
            case .stringList(let l): t = l.joined(separator: " ")
            default: break
            }
        }
        let cut = ch.byte()
        if cut % 4 == 3 { t = String(t.prefix(cut / 4)) }
        return t + " " + ch.text(maxLength: 8)
    }

    /// Payload-index lookups, then filters on their own and in filtered, sparse, BM25 and hybrid search.
    static func exercise(_ seg: Segment, control: [UInt8]) {
        var ch = FuzzChoices(control)
        let columns = seg.schema.columns
        for c in columns { _ = try? seg.hasPayloadIndex(column: c.name) }
        _ = seg.payloadIndexSizes
        _ = seg.bm25IndexSizes
        let bm25 = seg.bm25Columns
        let hasSparse = seg.hasSparseIndex
        // One simple condition per column (is_null, a stored value, a range from it, its prefix), so
        // the seeds reach every index kind whatever the choice bytes.
        for c in columns.prefix(16) {
            let v = seg.rowCount > 0 ? filterValue(try? seg.value(row: seg.rowCount / 2, column: c.name)) : nil
            var conditions: [FilterCondition] = [.isNull(key: c.name)]
            if let v {
                conditions += [.match(key: c.name, value: v), .range(key: c.name, FilterRange(gte: v)), .range(key: c.name, FilterRange(gt: v, lte: v))]
                if case .string(let s) = v { conditions.append(.prefix(key: c.name, prefix: String(s.prefix(2)), caseInsensitive: true)) }
            }
            for cond in conditions {
                _ = try? seg.rows(matching: .only(cond))
                _ = try? seg.rows(matching: Filter(mustNot: [cond]))
            }
        }
        let d = seg.schema.dimension
        // Mostly small queries; sometimes one whose squared norm passes VectorLimits (refused) or
        // sits near it (accepted; distances to stored vectors may still overflow in a bad file).
        let magnitude: Float = [0.5, 0.5, 0.5, 0x1p60, 1e19, 3e38][ch.byte() % 6]
        let dense: [Float]? = d > 0 && d <= 1 << 16 ? (0..<d).map { Float(($0 % 5) - 2) * magnitude } : nil
        let plans: [FilterPlanKind?] = [.graph, nil, .exact, .unfiltered, .empty]
        for _ in 0..<3 {
            let f = filter(seg, &ch)
            _ = try? seg.rows(matching: f)
            let k = 1 + ch.byte() % 8
            var options = FilteredSearchOptions(k: k, listSize: 4 + ch.byte() % 32)
            options.plan = plans[ch.byte() % plans.count]
            if ch.byte() & 1 == 1 { options.exactThreshold = ch.byte() }
            _ = try? seg.planFilter(f, options: options)
            if let dense {
                _ = try? seg.exactSearch(query: dense, k: k, filter: f)
                _ = try? seg.search(query: dense, filter: f, options: options)
            }
            let sparse = sparseQuery(&ch)
            if hasSparse {
                _ = try? seg.sparseSearch(query: sparse, k: k)
                _ = try? seg.sparseSearch(query: sparse, k: k, filter: f)
            }
            var textQuery: (column: String, query: String)? = nil
            for c in bm25 {
                let t = text(seg, column: c, &ch)
                _ = try? seg.bm25Statistics(column: c, text: t)
                _ = try? seg.bm25Search(column: c, text: t, k: k)
                _ = try? seg.bm25Search(column: c, text: t, k: k, filter: f)
                if textQuery == nil { textQuery = (c, t) }
            }
            let weights: [Double] = [1, 0.5, 0.75, -2, 0, 1e308, .nan, .infinity]
            let fusion: HybridFusion = ch.byte() & 1 == 0 ? .rrf(k: [60, 0, -1, .nan][ch.byte() % 4])
                : .weighted(dense: weights[ch.byte() % 8], sparse: weights[ch.byte() % 8], text: weights[ch.byte() % 8])
            let q = HybridQuery(dense: dense, sparse: hasSparse ? sparse : nil, text: textQuery, filter: ch.byte() & 1 == 0 ? f : nil,
                                k: k, candidates: 1 + ch.byte() % 16, fusion: fusion, denseListSize: 8)
            _ = try? seg.hybridSearch(q)
        }
    }

    /// A seed that no fixture covers: an ANN index (PQ + graph, so filtered graph search runs over
    /// possibly corrupt payload indexes) together with payload indexes on every column, BM25 on `title`
    /// and `tags`, and a sparse vector on most rows. 48 rows of 8 dimensions, 8 rows per block.
    static func writeIndexedSearchSeed(to path: String) throws {
        let schema = SegmentSchema(dimension: 8, elementType: .float32, metric: .l2, columns: [
            ColumnSpec(name: "title", type: .string),
            ColumnSpec(name: "count", type: .int64, nullable: true),
            ColumnSpec(name: "score", type: .float64, nullable: true),
            ColumnSpec(name: "flag", type: .bool),
            ColumnSpec(name: "tags", type: .stringList, nullable: true),
        ])
        var options = SegmentWriterOptions()
        options.rowsPerBlock = 8
        var index = IndexOptions()
        index.minimumRows = 16
        index.pqSubspaces = 2
        index.pqIterations = 4
        index.graph.maxDegree = 8
        index.graph.buildListSize = 16
        index.graph.threads = 1
        options.index = index
        options.search = SearchSectionOptions(indexedColumns: schema.columns.map(\.name), bm25Columns: ["title", "tags"])
        let words = ["alpha", "beta", "gamma", "delta", "Alpha", "épsilon", "zeta"]
        let writer = try SegmentWriter(path: path, schema: schema, options: options)
        for r in 0..<48 {
            let vector = (0..<8).map { d in Float((r * 5 + d * 3) % 13 - 6) * 0.5 }
            let values: [PayloadValue] = [
                .string("\(words[r % 7]) \(words[(r / 7) % 7]) #\(r)"),
                r % 5 == 2 ? .null : .int64(Int64(r * r) - 300),
                r % 4 == 1 ? .null : .float64(Double(r) * 0.75 - 10),
                .bool(r % 3 == 0),
                r % 6 == 5 ? .null : .stringList((0..<(r % 4)).map { words[(r + $0) % 7] }),
            ]
            try vector.withUnsafeBufferPointer { v in try writer.append(id: UInt64(r) &* 0x9E37_79B9 &+ 7, vector: v, values: values) }
            if r % 5 != 4 {
                try writer.setSparseVector(row: r, SparseVector(indices: [UInt32(r % 9), UInt32(10 + r % 3), 1000], values: [Float(r % 4) + 0.5, 0.25, Float(r) * 0.125]))
            }
        }
        try writer.finish()
    }
}

final class FuzzRegressionTests: StrataTestCase {
    /// Every regular file under Fixtures/fuzz-regressions/<target>/, sorted.
    func regressionInputs(_ target: String) throws -> [URL] {
        let dir = repoRoot.appendingPathComponent("Fixtures/fuzz-regressions/\(target)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { dir.appendingPathComponent($0) }
    }

    func testSegmentRegressionInputs() throws {
        // The seeds first (the harness must accept sound files too), then every crasher.
        var inputs = [repoRoot.appendingPathComponent("Fixtures/v1/small.seg")]
        let v12 = repoRoot.appendingPathComponent("Fixtures/v1.2/search.seg")
        if FileManager.default.fileExists(atPath: v12.path) { inputs.append(v12) }
        // The seed the fuzz target writes itself (ANN index plus every search section).
        let seed = tmpPath("seed-indexed-search.seg")
        try FuzzSearch.writeIndexedSearchSeed(to: seed)
        let indexed = try Segment.open(path: seed)
        XCTAssertTrue(indexed.verify().isSound)
        XCTAssertTrue(indexed.hasSparseIndex)
        XCTAssertEqual(indexed.bm25Columns.sorted(), ["tags", "title"])
        XCTAssertEqual(indexed.payloadIndexSizes.count, 5)
        XCTAssertEqual(try indexed.planFilter(Filter.only(.isNull(key: "tags")), options: FilteredSearchOptions(plan: .graph)).kind, .graph)
        indexed.close()
        inputs.append(URL(fileURLWithPath: seed))
        inputs += try regressionInputs("segment")
        for url in inputs {
            let data = try Data(contentsOf: url)
            FuzzHarness.segment(data, scratch: tmp.path)
        }
        // Re-sealing an intact segment leaves it unchanged.
        var fixture = [UInt8](try Data(contentsOf: inputs[0]))
        let original = fixture
        Reseal.segment(&fixture)
        XCTAssertEqual(fixture, original)
        let seg = try Segment.open(path: repoRoot.appendingPathComponent("Fixtures/v1/small.seg").path)
        defer { seg.close() }
        XCTAssertTrue(seg.verify().isSound)
    }

    /// The deep re-seal leaves intact segments unchanged, and after a payload block byte changes it
    /// restores the block and section checksums, so the damage reaches the decoders (no
    /// checksumMismatch left), which the fuzzer relies on.
    func testDeepResealReachesBlockDecoders() throws {
        for name in ["Fixtures/v1/small.seg", "Fixtures/v1.2/search.seg"] {
            var b = [UInt8](try Data(contentsOf: repoRoot.appendingPathComponent(name)))
            let original = b
            Reseal.segmentDeep(&b)
            XCTAssertEqual(b, original, name)
        }
        let url = repoRoot.appendingPathComponent("Fixtures/v1.2/search.seg")
        let intact = try Segment.open(path: url.path)
        let section = try XCTUnwrap(intact.sections.first { $0.kind == .column && $0.ordinal == 0 })
        let block = try XCTUnwrap(try intact.blocks(ofColumn: intact.schema.columns[0].name).first)
        intact.close()
        var b = [UInt8](try Data(contentsOf: url))
        b[Int(section.offset + block.offset) + Int(block.storedLength) / 2] ^= 0x55
        func checksumProblems(_ bytes: [UInt8]) throws -> Int {
            let p = tmpPath("deep.seg")
            try Data(bytes).write(to: URL(fileURLWithPath: p))
            let seg = try Segment.open(path: p)
            defer { seg.close() }
            return seg.verify().problems.filter { $0.code == .checksumMismatch }.count
        }
        XCTAssertGreaterThan(try checksumProblems(b), 0)
        Reseal.segmentDeep(&b)
        XCTAssertEqual(try checksumProblems(b), 0)
        FuzzHarness.segment(Data(b), scratch: tmp.path)
    }

    func testCollectionRegressionInputs() throws {
        let template = try FuzzHarness.collectionTemplate(in: tmp.path)
        var inputs: [Data] = template.targets.enumerated().map { i, name in Data([UInt8(i)]) + template.files[name]! }
        // Re-sealing an intact file must leave it unchanged (the mirror computes the same checksums).
        for (i, name) in template.targets.enumerated() {
            var b = [UInt8](template.files[name]!)
            if i == 1 { Reseal.wal(&b) } else { Reseal.trailer(&b) }
            XCTAssertEqual(b, [UInt8](template.files[name]!), "re-sealing \(name)")
            inputs.append(Data([UInt8(i + 3)]) + template.files[name]!)
        }
        // The WAL rules' paths: a flipped byte in every record (damage, then recover), the same
        // re-sealed (checksums pass, the decoder refuses), and cuts inside every record (torn tails).
        let wal = [UInt8](template.files[template.targets[1]]!)
        var at = 32
        while wal.count - at >= 32 {
            let end = at + 32 + (0..<4).reduce(0) { $0 | Int(wal[at + $1]) << (8 * $1) }
            var flipped = wal
            flipped[(at + end) / 2] ^= 0x40
            inputs += [Data([1] + flipped), Data([4] + flipped), Data([1] + wal[0..<(at + 7)]), Data([1] + wal[0..<(end - 1)])]
            at = end
        }
        XCTAssertEqual(at, wal.count)
        // The 1.0 seed: the same records in format 1.0 open with the same content.
        let wal1 = Reseal.walAsFormat1(wal)
        var resealed = wal1
        Reseal.wal(&resealed)
        XCTAssertEqual(resealed, wal1)
        inputs += [Data([1] + wal1), Data([1] + wal1.dropLast(3))]
        inputs += try regressionInputs("collection").map { try Data(contentsOf: $0) }
        for data in inputs { XCTAssertNil(FuzzHarness.collection(data, template: template, scratch: tmp.path)) }
        // The unmodified template still opens with its 12 - 3 + 5 - 2 = 12 live rows.
        let dir = tmp.path + "/check"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        for (name, bytes) in template.files { _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: bytes) }
        let c = try StrataCollection.open(path: dir, access: .readOnly)
        XCTAssertEqual(try c.count(), 12)
        XCTAssertEqual(c.recovery.walFormat, "2.0")
        c.close()
        // And the 1.0 seed holds the same records.
        _ = FileManager.default.createFile(atPath: dir + "/" + template.targets[1], contents: Data(wal1))
        let c1 = try StrataCollection.open(path: dir, access: .readOnly)
        defer { c1.close() }
        XCTAssertEqual(try c1.count(), 12)
        XCTAssertEqual(c1.recovery.walFormat, "1.0")
        XCTAssertEqual(c1.recovery.records, 3)
    }
}
