// Round trips: every column type and null pattern, both element types, every metric, id edge
// cases, 0- and 1-row segments, dimension 1 and 4096, many small blocks.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class SegmentRoundTripTests: StrataTestCase {
    /// One column of every type, nullable and not, with distinct null patterns (rowsPerBlock 3):
    /// - i64: not nullable, extremes;            - i64_alln: every row null;
    /// - f64: alternating null, special values;  - b: not nullable;
    /// - b_n: nulls at both block edges (r % 3 == 0 or 2), a value only mid-block;
    /// - s: unicode, empty, embedded NUL, long;  - s_n: nullable but never null;
    /// - tags: lists incl. empty lists and empty items;
    /// - tags_n: whole blocks null (rows 3..<9), empty lists elsewhere.
    static let columns: [ColumnSpec] = [
        ColumnSpec(name: "i64", type: .int64),
        ColumnSpec(name: "i64_alln", type: .int64, nullable: true),
        ColumnSpec(name: "f64", type: .float64, nullable: true),
        ColumnSpec(name: "b", type: .bool),
        ColumnSpec(name: "b_n", type: .bool, nullable: true),
        ColumnSpec(name: "s", type: .string),
        ColumnSpec(name: "s_n", type: .string, nullable: true),
        ColumnSpec(name: "tags", type: .stringList),
        ColumnSpec(name: "tags_n", type: .stringList, nullable: true),
    ]

    static let strings = ["", "a", "héllo", "日本語テキスト", "🚀🔥", "e\u{301}", "\u{e9}", "zero\u{0}byte",
                          String(repeating: "long-", count: 60), "Ω≈ç√", "ascii only", "\u{10FFFF}"]
    static let doubles: [Double] = [.nan, .infinity, -.infinity, -0.0, 0.0, .greatestFiniteMagnitude,
                                    .leastNonzeroMagnitude, -1.5, 3.141592653589793, 1e300]
    static let ints: [Int64] = [.min, .max, 0, -1, 1, 42, -9_007_199_254_740_993]

    static func values(_ r: Int, rng: inout SplitMix64) -> [PayloadValue] {
        let i64 = PayloadValue.int64(r < ints.count ? ints[r] : Int64(bitPattern: rng.next()))
        let f64: PayloadValue = r % 2 == 1 ? .null : .float64(doubles[(r / 2) % doubles.count])
        let b = PayloadValue.bool(rng.next() & 1 == 1)
        let bn: PayloadValue = (r % 3 == 0 || r % 3 == 2) ? .null : .bool(r % 2 == 0)
        let s = PayloadValue.string(strings[r % strings.count])
        let sn = PayloadValue.string(strings[(r * 5 + 3) % strings.count])
        let tags: PayloadValue
        switch r % 4 {
        case 0: tags = .stringList([])
        case 1: tags = .stringList([""])
        case 2: tags = .stringList(["a", "日本", "🚀", "", "e\u{301}"])
        default: tags = .stringList((0..<(r % 9)).map { "tag\($0)-\(strings[$0 % strings.count])" })
        }
        let tagsN: PayloadValue = (3..<9).contains(r) ? .null : (r % 2 == 0 ? .stringList([]) : .stringList(["x\(r)"]))
        return [i64, .null, f64, b, bn, s, sn, tags, tagsN]
    }

    static func ids(count: Int, rng: inout SplitMix64) -> [UInt64] {
        var ids: [UInt64] = [UInt64.max, 0, 1, UInt64.max - 1, 1 << 63, (1 << 63) - 1, 1 << 32, (1 << 32) - 1]
        var seen = Set(ids)
        while ids.count < count {
            let x = rng.next()
            if seen.insert(x).inserted { ids.append(x) }
        }
        // Unsorted order: swap some around.
        for i in stride(from: ids.count - 1, to: 0, by: -1) { ids.swapAt(i, rng.int(i + 1)) }
        return Array(ids.prefix(count))
    }

    static func rows(count: Int, dimension: Int, seed: UInt64) -> [TestRow] {
        var rng = SplitMix64(seed: seed)
        let idList = ids(count: count, rng: &rng)
        return (0..<count).map { r in
            let v = (0..<dimension).map { _ in rng.gaussianish() * 2 }
            return TestRow(id: idList[r], vector: v, values: values(r, rng: &rng))
        }
    }

    /// Checks every accessor of `seg` against `rows`.
    func assertContent(_ seg: Segment, rows: [TestRow], schema: SegmentSchema, rowsPerBlock: Int,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(seg.rowCount, rows.count, file: file, line: line)
        XCTAssertEqual(seg.schema, schema, file: file, line: line)
        XCTAssertEqual(seg.formatVersion.major, SegmentFormat.writerMajor, file: file, line: line)
        for (r, row) in rows.enumerated() {
            XCTAssertEqual(try seg.id(ofRow: r), row.id, "row \(r)", file: file, line: line)
            XCTAssertEqual(try seg.row(forId: row.id), r, "id \(row.id)", file: file, line: line)
            let v = try seg.vector(row: r)
            let want = expectedStoredVector(row.vector, schema: schema)
            XCTAssertTrue(vectorsClose(v, want, elementType: schema.elementType, metric: schema.metric),
                          "row \(r) vector \(v) != \(want)", file: file, line: line)
            let payload = try seg.payload(row: r)
            XCTAssertTrue(samePayload(payload, row.values), "row \(r) payload \(payload) != \(row.values)", file: file, line: line)
            for (c, spec) in schema.columns.enumerated() {
                let value = try seg.value(row: r, column: spec.name)
                XCTAssertTrue(samePayload(value, row.values[c]), "row \(r) column \(spec.name): \(value)", file: file, line: line)
            }
        }
        // Absent ids.
        let present = Set(rows.map(\.id))
        for probe: UInt64 in [0, 1, 2, 3, UInt64.max, UInt64.max - 2, 1 << 40, 12345] where !present.contains(probe) {
            XCTAssertNil(try seg.row(forId: probe), "absent id \(probe)", file: file, line: line)
        }
        // Scans: whole column and a sub-range crossing block edges.
        for (c, spec) in schema.columns.enumerated() {
            var seen: [Int] = []
            try seg.scan(column: spec.name) { r, value in
                seen.append(r)
                XCTAssertTrue(samePayload(value, rows[r].values[c]), "scan \(spec.name) row \(r)", file: file, line: line)
            }
            XCTAssertEqual(seen, Array(0..<rows.count), "scan of \(spec.name) visits every row once in order", file: file, line: line)
            if rows.count > 4 {
                let sub = 1..<(rows.count - 2)
                var subSeen: [Int] = []
                try seg.scan(column: spec.name, rows: sub) { r, value in
                    subSeen.append(r)
                    XCTAssertTrue(samePayload(value, rows[r].values[c]), file: file, line: line)
                }
                XCTAssertEqual(subSeen, Array(sub), file: file, line: line)
            }
            let blocks = try seg.blocks(ofColumn: spec.name)
            XCTAssertEqual(blocks.count, (rows.count + rowsPerBlock - 1) / rowsPerBlock, "blocks of \(spec.name)", file: file, line: line)
            let nulls = rows.filter { if case .null = $0.values[c] { return true } else { return false } }.count
            let stats = seg.columnStatistics[c]
            XCTAssertEqual(stats.column, spec, file: file, line: line)
            XCTAssertEqual(stats.nullCount, UInt64(nulls), "null count of \(spec.name)", file: file, line: line)
        }
        let report = seg.verify()
        XCTAssertTrue(report.isSound, "verify: \(report.problems)", file: file, line: line)
        XCTAssertEqual(report.sectionsChecked, seg.sections.count, file: file, line: line)
    }

    func testEveryTypeNullPatternElementTypeAndMetric() throws {
        var n = 0
        for elementType in VectorElementType.allCases {
            for metric in DistanceMetric.allCases {
                n += 1
                let schema = SegmentSchema(dimension: 12, elementType: elementType, metric: metric, columns: Self.columns)
                let rows = Self.rows(count: 25, dimension: 12, seed: UInt64(n))
                let path = tmpPath("rt-\(elementType)-\(metric).seg")
                let summary = try writeSegment(path: path, schema: schema, rows: rows, rowsPerBlock: 3)
                XCTAssertEqual(summary.rowCount, 25)
                XCTAssertEqual(summary.fileBytes, UInt64(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int))
                let seg = try Segment.open(path: path)
                XCTAssertEqual(seg.sections, summary.sections)
                try assertContent(seg, rows: rows, schema: schema, rowsPerBlock: 3)
                // Sections are page aligned; vectors are 32-byte aligned in the mapping.
                for s in seg.sections { XCTAssertEqual(s.offset % 4096, 0) }
                for r in 0..<seg.rowCount {
                    try seg.withUnsafeVectorBytes(row: r) { (raw) throws(StrataError) in
                        XCTAssertEqual(Int(bitPattern: raw.baseAddress!) % 32, 0)
                        XCTAssertEqual(raw.count, 12 * elementType.byteWidth)
                    }
                }
            }
        }
        XCTAssertEqual(tmpContents().filter { $0.contains(".tmp") }, [], "no temp or spool files left behind")
    }

    func testFloat16Rounding() throws {
        let schema = SegmentSchema(dimension: 8, elementType: .float16, metric: .l2)
        let v: [Float] = [0, -0.0, 1, -2.5, 65504, -65504, 6.1e-5, 1.0 / 3.0]
        try writeSegment(path: tmpPath("f16.seg"), schema: schema, rows: [TestRow(id: 9, vector: v, values: [])])
        let seg = try Segment.open(path: tmpPath("f16.seg"))
        let got = try seg.vector(row: 0)
        XCTAssertEqual(Array(got[0..<6]), [0, 0, 1, -2.5, 65504, -65504])
        XCTAssertEqual(got[6], 6.1e-5, accuracy: 1e-7)
        XCTAssertEqual(got[7], 1.0 / 3.0, accuracy: 1.0 / 2048)
        XCTAssertTrue(seg.verify().isSound)
    }

    func testZeroRowSegment() throws {
        for elementType in VectorElementType.allCases {
            let schema = SegmentSchema(dimension: 5, elementType: elementType, metric: .l2, columns: Self.columns)
            let path = tmpPath("empty-\(elementType).seg")
            let summary = try writeSegment(path: path, schema: schema, rows: [])
            XCTAssertEqual(summary.rowCount, 0)
            let seg = try Segment.open(path: path)
            XCTAssertEqual(seg.rowCount, 0)
            XCTAssertEqual(seg.schema, schema)
            XCTAssertTrue(seg.verify().isSound, "\(seg.verify().problems)")
            XCTAssertNil(try seg.row(forId: 0))
            XCTAssertNil(try seg.row(forId: UInt64.max))
            XCTAssertEqual(try seg.exactSearch(query: [1, 2, 3, 4, 5], k: 10), [])
            XCTAssertEqual(try seg.exactSearch(queries: [[1, 2, 3, 4, 5], [0, 0, 0, 0, 1]], k: 3), [[], []])
            XCTAssertEqual(try seg.exactSearch(queries: [], k: 3), [])
            assertStrataError(.invalidArgument) { try seg.payload(row: 0) }
            assertStrataError(.invalidArgument) { try seg.vector(row: 0) }
            assertStrataError(.invalidArgument) { try seg.id(ofRow: 0) }
            assertStrataError(.invalidArgument) { try seg.value(row: 0, column: "s") }
            for spec in schema.columns {
                var calls = 0
                try seg.scan(column: spec.name) { _, _ in calls += 1 }
                XCTAssertEqual(calls, 0)
                XCTAssertEqual(try seg.blocks(ofColumn: spec.name).count, 0)
                XCTAssertEqual(seg.columnStatistics.first { $0.column.name == spec.name }?.nullCount, 0)
            }
        }
        // And with no columns at all.
        let bare = SegmentSchema(dimension: 1, elementType: .float32, metric: .innerProduct)
        try writeSegment(path: tmpPath("bare.seg"), schema: bare, rows: [])
        let seg = try Segment.open(path: tmpPath("bare.seg"))
        XCTAssertEqual(seg.rowCount, 0)
        XCTAssertEqual(seg.schema.columns, [])
        XCTAssertTrue(seg.verify().isSound)
    }

    func testOneRowSegment() throws {
        for elementType in VectorElementType.allCases {
            for metric in DistanceMetric.allCases {
                let schema = SegmentSchema(dimension: 3, elementType: elementType, metric: metric, columns: Self.columns)
                var rng = SplitMix64(seed: 77)
                let row = TestRow(id: UInt64.max, vector: [0.5, -1, 2], values: Self.values(4, rng: &rng))
                let path = tmpPath("one-\(elementType)-\(metric).seg")
                try writeSegment(path: path, schema: schema, rows: [row], rowsPerBlock: 3)
                let seg = try Segment.open(path: path)
                try assertContent(seg, rows: [row], schema: schema, rowsPerBlock: 3)
                let hits = try seg.exactSearch(query: [1, 1, 1], k: 5)
                XCTAssertEqual(hits.map(\.id), [UInt64.max])
                XCTAssertEqual(hits.map(\.row), [0])
                assertStrataError(.invalidArgument) { try seg.payload(row: 1) }
                assertStrataError(.invalidArgument) { try seg.payload(row: -1) }
                assertStrataError(.invalidArgument) { try seg.vector(row: 1) }
                assertStrataError(.invalidArgument) { try seg.id(ofRow: -1) }
            }
        }
    }

    func testDimensionOneAnd4096() throws {
        for elementType in VectorElementType.allCases {
            for dimension in [1, 4096] {
                let schema = SegmentSchema(dimension: dimension, elementType: elementType, metric: .l2,
                                           columns: [ColumnSpec(name: "s", type: .string, nullable: true)])
                var rng = SplitMix64(seed: UInt64(dimension))
                let rows = (0..<5).map { r in
                    TestRow(id: UInt64(100 - r), vector: (0..<dimension).map { _ in rng.gaussianish() },
                            values: [r == 2 ? .null : .string("row \(r)")])
                }
                let path = tmpPath("dim\(dimension)-\(elementType).seg")
                try writeSegment(path: path, schema: schema, rows: rows, rowsPerBlock: 2)
                let seg = try Segment.open(path: path)
                try assertContent(seg, rows: rows, schema: schema, rowsPerBlock: 2)
                // Each row is its own nearest neighbour under l2.
                for (r, row) in rows.enumerated() {
                    let hits = try seg.exactSearch(query: expectedStoredVector(row.vector, schema: schema), k: 1)
                    XCTAssertEqual(hits.first?.row, r)
                    XCTAssertEqual(Double(hits.first?.distance ?? 1), 0, accuracy: 1e-6)
                }
            }
        }
    }

    func testManyBlocks() throws {
        let schema = SegmentSchema(dimension: 4, elementType: .float32, metric: .innerProduct, columns: Self.columns)
        let rows = Self.rows(count: 23, dimension: 4, seed: 99)
        for rowsPerBlock in 1...7 {
            let path = tmpPath("blocks\(rowsPerBlock).seg")
            try writeSegment(path: path, schema: schema, rows: rows, rowsPerBlock: rowsPerBlock, batchSize: rowsPerBlock + 1)
            let seg = try Segment.open(path: path)
            try assertContent(seg, rows: rows, schema: schema, rowsPerBlock: rowsPerBlock)
            for spec in schema.columns {
                let blocks = try seg.blocks(ofColumn: spec.name)
                XCTAssertEqual(blocks.map(\.firstRow), stride(from: 0, to: 23, by: rowsPerBlock).map(UInt64.init))
                XCTAssertEqual(blocks.reduce(0) { $0 + Int($1.rowCount) }, 23)
            }
        }
    }

    func testMaxBlockBytesClosesBlocksEarly() throws {
        let schema = SegmentSchema(dimension: 2, elementType: .float32, metric: .l2,
                                   columns: [ColumnSpec(name: "big", type: .string), ColumnSpec(name: "n", type: .int64)])
        let rows = (0..<40).map { r in
            TestRow(id: UInt64(r), vector: [Float(r), 1],
                    values: [.string(String(repeating: Character(UnicodeScalar(UInt8(65 + r % 26))), count: 300 + r)), .int64(Int64(r))])
        }
        let path = tmpPath("maxbytes.seg")
        try writeSegment(path: path, schema: schema, rows: rows, rowsPerBlock: 1024, maxBlockBytes: 1024)
        let seg = try Segment.open(path: path)
        let blocks = try seg.blocks(ofColumn: "big")
        XCTAssertGreaterThan(blocks.count, 5, "1 KiB blocks of ~300-byte strings")
        XCTAssertEqual(try seg.blocks(ofColumn: "n").count, 1)
        for (r, row) in rows.enumerated() {
            XCTAssertTrue(samePayload(try seg.payload(row: r), row.values))
        }
        XCTAssertTrue(seg.verify().isSound)
    }

    func testUncompressedPayloadOption() throws {
        let schema = SegmentSchema(dimension: 3, elementType: .float32, metric: .l2, columns: Self.columns)
        let rows = Self.rows(count: 10, dimension: 3, seed: 5)
        var options = SegmentWriterOptions()
        options.compressPayload = false
        options.rowsPerBlock = 3
        let path = tmpPath("raw.seg")
        let writer = try SegmentWriter(path: path, schema: schema, options: options)
        for r in rows { try r.vector.withUnsafeBufferPointer { try writer.append(id: r.id, vector: $0, values: r.values) } }
        try writer.finish()
        let seg = try Segment.open(path: path)
        for spec in schema.columns {
            XCTAssertTrue(try seg.blocks(ofColumn: spec.name).allSatisfy { $0.encoding == 0 })
        }
        try assertContent(seg, rows: rows, schema: schema, rowsPerBlock: 3)
    }

    func testOverwriteExistingPathAndReopen() throws {
        let schema = SegmentSchema(dimension: 2, elementType: .float32, metric: .l2)
        let path = tmpPath("same.seg")
        try writeSegment(path: path, schema: schema, rows: [TestRow(id: 1, vector: [1, 2], values: [])])
        let first = try Segment.open(path: path)
        try writeSegment(path: path, schema: schema, rows: [TestRow(id: 2, vector: [3, 4], values: []),
                                                          TestRow(id: 3, vector: [5, 6], values: [])])
        // The old mapping still reads the old file (rename replaced the directory entry only).
        XCTAssertEqual(first.rowCount, 1)
        XCTAssertEqual(try first.vector(row: 0), [1, 2])
        let second = try Segment.open(path: path)
        XCTAssertEqual(second.rowCount, 2)
        XCTAssertEqual(try second.vector(row: 1), [5, 6])
    }

    func testScanRangeEdgesAndHugeK() throws {
        let schema = SegmentSchema(dimension: 3, elementType: .float32, metric: .l2, columns: Self.columns)
        let rows = Self.rows(count: 10, dimension: 3, seed: 3)
        let path = tmpPath("edges.seg")
        try writeSegment(path: path, schema: schema, rows: rows, rowsPerBlock: 3)
        let seg = try Segment.open(path: path)
        for (range, want) in [(-5..<2, 0..<2), (8..<100, 8..<10), (5..<5, 5..<5), (10..<20, 10..<10), (-9 ..< -1, 0..<0),
                              (Int.min..<Int.max, 0..<10)] {
            var seen: [Int] = []
            try seg.scan(column: "s", rows: range) { r, _ in seen.append(r) }
            XCTAssertEqual(seen, Array(want), "scan rows \(range)")
        }
        XCTAssertEqual(try seg.exactSearch(query: [0, 0, 0], k: Int.max).count, 10)
        XCTAssertEqual(try seg.exactSearch(queries: [[0, 0, 0]], k: Int.max).first?.count, 10)
        assertStrataError(.invalidArgument) { try seg.id(ofRow: Int.max) }
        assertStrataError(.invalidArgument) { try seg.payload(row: Int.min) }
        assertStrataError(.invalidArgument) { try seg.value(row: 10, column: "s") }
    }

    /// `withUnsafeVectorBytes(row:)` is public; an out-of-range row is bad input and must not trap.
    func testWithUnsafeVectorBytesOutOfRange() throws {
        let schema = SegmentSchema(dimension: 2, elementType: .float32, metric: .l2)
        try writeSegment(path: tmpPath("wuvb.seg"), schema: schema, rows: [TestRow(id: 1, vector: [1, 2], values: [])])
        let seg = try Segment.open(path: tmpPath("wuvb.seg"))
        for row in [-1, 1, Int.max] {
            do {
                _ = try seg.withUnsafeVectorBytes(row: row) { (raw) throws(StrataError) in raw.count }
                XCTFail("row \(row) should throw")
            } catch {
                XCTAssertEqual(error.code, .invalidArgument)
            }
        }
    }

    func testCloseMakesAccessorsThrow() throws {
        let schema = SegmentSchema(dimension: 2, elementType: .float32, metric: .l2, columns: [ColumnSpec(name: "n", type: .int64)])
        let path = tmpPath("close.seg")
        try writeSegment(path: path, schema: schema, rows: [TestRow(id: 1, vector: [1, 2], values: [.int64(1)])])
        let seg = try Segment.open(path: path)
        seg.close()
        assertStrataError(.invalidArgument) { try seg.vector(row: 0) }
        assertStrataError(.invalidArgument) { try seg.payload(row: 0) }
        assertStrataError(.invalidArgument) { try seg.row(forId: 1) }
        assertStrataError(.invalidArgument) { try seg.exactSearch(query: [1, 2], k: 1) }
        assertStrataError(.invalidArgument) { try seg.exactSearch(queries: [[1, 2]], k: 1) }
        seg.close() // idempotent
    }
}
