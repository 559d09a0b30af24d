// Typed errors for every class of bad input: bad files (magic, version, truncation, checksums) and
// bad writes (dimension, duplicate id, NaN/inf, unknown column, type mismatch, null, schema).
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class SegmentErrorTests: StrataTestCase {
    static let schema = SegmentSchema(dimension: 4, elementType: .float32, metric: .l2, columns: [
        ColumnSpec(name: "name", type: .string),
        ColumnSpec(name: "rank", type: .int64, nullable: true),
        ColumnSpec(name: "tags", type: .stringList),
    ])

    static func rows(_ n: Int) -> [TestRow] {
        (0..<n).map { (r: Int) -> TestRow in
            let rank: PayloadValue = r % 2 == 0 ? .null : .int64(Int64(r))
            let vector: [Float] = [Float(r), 1, -2, 0.5]
            return TestRow(id: UInt64(r * 10), vector: vector, values: [.string("n\(r)"), rank, .stringList(["t\(r)"])])
        }
    }

    /// Writes the standard 9-row segment (rowsPerBlock 4) and returns its path and bytes.
    func goodSegment(_ name: String = "good.seg") throws -> (String, [UInt8]) {
        let path = tmpPath(name)
        try writeSegment(path: path, schema: Self.schema, rows: Self.rows(9), rowsPerBlock: 4)
        return (path, Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = tmpPath(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Rewrites the header checksum (bytes 56..<64 = XXH3-64 of bytes 0..<56).
    func resealHeader(_ bytes: inout [UInt8]) {
        let sum = bytes.withUnsafeBytes { Checksum.xxh3(UnsafeRawBufferPointer(rebasing: $0[0..<56])) }
        withUnsafeBytes(of: sum.littleEndian) { for i in 0..<8 { bytes[56 + i] = $0[i] } }
    }

    func setU16(_ bytes: inout [UInt8], at offset: Int, _ v: UInt16) {
        bytes[offset] = UInt8(v & 0xFF)
        bytes[offset + 1] = UInt8(v >> 8)
    }

    // MARK: reading bad files

    func testWrongMagic() throws {
        var (_, bytes) = try goodSegment()
        bytes[0] ^= 0xFF
        let e = assertStrataError(.badMagic) { try Segment.open(path: try write(bytes, "magic.seg")) }
        XCTAssertEqual(e?.section, "header")
        XCTAssertEqual(e?.offset, 0)
        XCTAssertEqual(e?.path, tmpPath("magic.seg"))
        // Any other file: text, a big zero file.
        let text = Array(String(repeating: "hello, not a segment\n", count: 400).utf8)
        assertStrataError(.badMagic) { try Segment.open(path: try write(text, "text.seg")) }
        assertStrataError(.badMagic) { try Segment.open(path: try write([UInt8](repeating: 0, count: 9000), "zeros.seg")) }
    }

    func testUnsupportedVersion() throws {
        let (_, original) = try goodSegment()
        // Min reader major past this reader's (3): it must refuse, after the checksum passes.
        var newer = original
        setU16(&newer, at: 8, SegmentFormat.readerMajor + 1)
        setU16(&newer, at: 12, SegmentFormat.readerMajor + 1)
        resealHeader(&newer)
        let e = assertStrataError(.unsupportedVersion) { try Segment.open(path: try write(newer, "future.seg")) }
        XCTAssertEqual(e?.section, "header")
        XCTAssertNotNil(e?.offset)
        // Major 0 predates the oldest readable major.
        var older = original
        setU16(&older, at: 8, 0)
        setU16(&older, at: 12, 0)
        resealHeader(&older)
        assertStrataError(.unsupportedVersion) { try Segment.open(path: try write(older, "v0.seg")) }
        // Patching without resealing is caught by the header checksum first.
        var unsealed = original
        setU16(&unsealed, at: 12, 3)
        let c = assertStrataError(.checksumMismatch) { try Segment.open(path: try write(unsealed, "v3-unsealed.seg")) }
        XCTAssertEqual(c?.section, "header")
        XCTAssertEqual(c?.offset, 56)
        // A newer minor (or major) that still admits major-1 readers opens.
        var compatible = original
        setU16(&compatible, at: 8, 2)
        setU16(&compatible, at: 10, 7)
        setU16(&compatible, at: 12, 1)
        resealHeader(&compatible)
        let seg = try Segment.open(path: try write(compatible, "v2-compatible.seg"))
        XCTAssertEqual(seg.formatVersion.major, 2)
        XCTAssertEqual(seg.formatVersion.minor, 7)
        XCTAssertEqual(seg.rowCount, 9)
        XCTAssertTrue(seg.verify().isSound)
    }

    func testTruncated() throws {
        let (_, bytes) = try goodSegment()
        for length in [0, 1, 7, 8, 63, 64, 4095, 4096, 4096 + 63, bytes.count / 2, bytes.count - 64, bytes.count - 1] {
            let e = assertStrataError(.truncated, "length \(length)") {
                try Segment.open(path: try write(Array(bytes.prefix(length)), "trunc\(length).seg"))
            }
            XCTAssertNotNil(e?.offset, "length \(length)")
        }
        // Appended garbage is not a segment end either.
        assertStrataError(.truncated) { try Segment.open(path: try write(bytes + [0, 1, 2], "longer.seg")) }
    }

    func testMissingFileIsIOError() throws {
        let e = assertStrataError(.io) { try Segment.open(path: tmpPath("does-not-exist.seg")) }
        XCTAssertNotNil(e?.errno)
        assertStrataError(.io) { try Segment.open(path: tmp.path) } // a directory
    }

    func testChecksumMismatchNamesSectionAndOffset() throws {
        let (path, original) = try goodSegment()
        let seg = try Segment.open(path: path)
        let vectors = seg.sections.first { $0.kind == .vectors }!
        let ids = seg.sections.first { $0.kind == .ids }!
        let column = seg.sections.first { $0.kind == .column && $0.ordinal == 0 }!
        let nameBlocks = try seg.blocks(ofColumn: "name")

        // A vector byte: open succeeds (bulk data is checked lazily), verify names "vectors" at its offset.
        var bytes = original
        bytes[Int(vectors.offset) + 2 * 32 + 1] ^= 0x01 // row 2 (stride 32), element 0
        var bad = try Segment.open(path: try write(bytes, "vec.seg"))
        var report = bad.verify()
        XCTAssertFalse(report.isSound)
        let p = report.problems.first { $0.code == .checksumMismatch }
        XCTAssertEqual(p?.section, "vectors")
        XCTAssertEqual(p?.offset, vectors.offset)
        XCTAssertEqual(p?.path, tmpPath("vec.seg"))

        // An id byte: verify names "ids" and also reports the id/index disagreement.
        bytes = original
        bytes[Int(ids.offset) + 8 * 3] ^= 0x40
        bad = try Segment.open(path: try write(bytes, "ids.seg"))
        report = bad.verify()
        XCTAssertEqual(report.problems.first { $0.code == .checksumMismatch }?.section, "ids")
        XCTAssertEqual(report.problems.first { $0.code == .checksumMismatch }?.offset, ids.offset)

        // A payload block byte: verify names the column section and the block's offset, and reading
        // that row throws .checksumMismatch with the same location; other blocks still read.
        bytes = original
        let block1 = nameBlocks[1]
        bytes[Int(column.offset + block1.offset)] ^= 0xFF
        bad = try Segment.open(path: try write(bytes, "col.seg"))
        report = bad.verify()
        // The section-level problem is located by the section's offset, the block-level one by the
        // block's; both name the column (see the closing note).
        let sectionProblem = report.problems.first { $0.code == .checksumMismatch && $0.offset == column.offset }
        XCTAssertTrue(sectionProblem?.section?.hasPrefix("column") ?? false, "\(report.problems)")
        let blockProblem = report.problems.first { $0.code == .checksumMismatch && $0.offset == column.offset + block1.offset }
        XCTAssertEqual(blockProblem?.section, "column 'name'", "\(report.problems)")
        let e = assertStrataError(.checksumMismatch) { try bad.value(row: Int(block1.firstRow), column: "name") }
        XCTAssertEqual(e?.section, "column 'name'")
        XCTAssertEqual(e?.offset, column.offset + block1.offset)
        assertStrataError(.checksumMismatch) { try bad.payload(row: Int(block1.firstRow) + 1) }
        XCTAssertTrue(samePayload(try bad.payload(row: 0), Self.rows(9)[0].values))
        XCTAssertTrue(samePayload(try bad.value(row: 8, column: "name"), .string("n8")))

        // The directory: open refuses, naming the directory.
        bytes = original
        let dirOffset = bytes.count - 64 - seg.sections.count * 64
        bytes[dirOffset + 9] ^= 0x10
        let d = assertStrataError(.checksumMismatch) { try Segment.open(path: try write(bytes, "dir.seg")) }
        XCTAssertEqual(d?.section, "directory")
        XCTAssertEqual(d?.offset, UInt64(dirOffset))

        // The footer.
        bytes = original
        bytes[bytes.count - 64 + 3] ^= 0x01
        let f = assertStrataError(.checksumMismatch) { try Segment.open(path: try write(bytes, "footer.seg")) }
        XCTAssertEqual(f?.section, "footer")
        XCTAssertEqual(f?.offset, UInt64(bytes.count - 64 + 48))

        // The header (row count byte).
        bytes = original
        bytes[24] ^= 0x01
        let h = assertStrataError(.checksumMismatch) { try Segment.open(path: try write(bytes, "header.seg")) }
        XCTAssertEqual(h?.section, "header")
        XCTAssertEqual(h?.offset, 56)
    }

    // MARK: writing bad rows

    func makeWriter(_ name: String = "w.seg", schema: SegmentSchema = SegmentErrorTests.schema) throws -> SegmentWriter {
        try SegmentWriter(path: tmpPath(name), schema: schema)
    }

    func testDimensionMismatch() throws {
        let w = try makeWriter()
        assertStrataError(.dimensionMismatch) {
            try w.append([SegmentRow(id: 1, vector: [1, 2, 3], payload: ["name": .string("a"), "tags": .stringList([])])])
        }
        assertStrataError(.dimensionMismatch) {
            try w.append([SegmentRow(id: 1, vector: [1, 2, 3, 4, 5], payload: ["name": .string("a"), "tags": .stringList([])])])
        }
        assertStrataError(.dimensionMismatch) {
            try [Float](repeating: 1, count: 7).withUnsafeBufferPointer {
                try w.append(id: 1, vector: $0, values: [.string("a"), .null, .stringList([])])
            }
        }
        XCTAssertEqual(w.rowCount, 0)
        w.abort()
    }

    func testDuplicateIdFailsFinishAndLeavesNoFile() throws {
        for sameBatch in [true, false] {
            let name = "dup-\(sameBatch).seg"
            let w = try makeWriter(name)
            let row = { (id: UInt64) in
                SegmentRow(id: id, vector: [1, 2, 3, 4], payload: ["name": .string("x"), "tags": .stringList([])])
            }
            if sameBatch {
                try w.append([row(5), row(6), row(5)])
            } else {
                try w.append([row(UInt64.max), row(0)])
                try w.append([row(7), row(UInt64.max)])
            }
            let e = assertStrataError(.duplicateId) { try w.finish() }
            XCTAssertNotNil(e?.message)
            XCTAssertFalse(FileManager.default.fileExists(atPath: tmpPath(name)), "no segment published")
            XCTAssertEqual(tmpContents().filter { $0.contains(name) }, [], "no temp or spool files left")
            assertStrataError(.invalidArgument, "finish after failure") { try w.finish() }
        }
    }

    func testNonFiniteVector() throws {
        let w = try makeWriter()
        for bad: Float in [.nan, .infinity, -.infinity, .signalingNaN] {
            assertStrataError(.nonFiniteValue) {
                try w.append([SegmentRow(id: 1, vector: [1, bad, 3, 4], payload: ["name": .string("a"), "tags": .stringList([])])])
            }
            assertStrataError(.nonFiniteValue) {
                try [0, 0, 0, bad].withUnsafeBufferPointer { try w.append(id: 1, vector: $0, values: [.string("a"), .null, .stringList([])]) }
            }
        }
        // float16 overflow is non-finite once stored.
        let w16 = try makeWriter("f16.seg", schema: SegmentSchema(dimension: 2, elementType: .float16, metric: .l2))
        assertStrataError(.nonFiniteValue) { try w16.append([SegmentRow(id: 1, vector: [70000, 0])]) }
        assertStrataError(.nonFiniteValue) { try w16.append([SegmentRow(id: 1, vector: [0, -1e30])]) }
        try w16.append([SegmentRow(id: 1, vector: [65504, -65504])])
        try w16.finish()
        XCTAssertEqual(try Segment.open(path: tmpPath("f16.seg")).vector(row: 0), [65504, -65504])
        // Cosine: a zero vector has no direction.
        let wc = try makeWriter("cos.seg", schema: SegmentSchema(dimension: 2, elementType: .float32, metric: .cosine))
        assertStrataError(.invalidValue) { try wc.append([SegmentRow(id: 1, vector: [0, 0])]) }
        // Components whose squares overflow float32 exceed the norm limit for every metric
        // (VectorLimits); large components within it keep their direction.
        assertStrataError(.invalidValue) { try wc.append([SegmentRow(id: 1, vector: [3e38, 3e38])]) }
        try wc.append([SegmentRow(id: 1, vector: [3e18, 3e18])])
        try wc.finish()
        let big = try Segment.open(path: tmpPath("cos.seg"))
        XCTAssertEqual(try big.vector(row: 0)[0], 0.70710677, accuracy: 1e-6)
        XCTAssertEqual(try big.vector(row: 0)[1], 0.70710677, accuracy: 1e-6)
        XCTAssertTrue(big.verify().isSound)
        w.abort()
    }

    func testUnknownColumnAndTypeMismatchAndNulls() throws {
        let w = try makeWriter()
        assertStrataError(.unknownColumn) {
            try w.append([SegmentRow(id: 1, vector: [1, 2, 3, 4], payload: ["name": .string("a"), "tags": .stringList([]), "nope": .int64(1)])])
        }
        assertStrataError(.typeMismatch) {
            try w.append([SegmentRow(id: 1, vector: [1, 2, 3, 4], payload: ["name": .int64(3), "tags": .stringList([])])])
        }
        assertStrataError(.typeMismatch) {
            try w.append([SegmentRow(id: 1, vector: [1, 2, 3, 4], payload: ["name": .string("a"), "rank": .float64(1), "tags": .stringList([])])])
        }
        assertStrataError(.typeMismatch) {
            try w.append([SegmentRow(id: 1, vector: [1, 2, 3, 4], payload: ["name": .string("a"), "tags": .string("t")])])
        }
        // Null (explicit or missing) in a non-nullable column.
        let nullError = assertStrataError(.typeMismatch) {
            try w.append([SegmentRow(id: 1, vector: [1, 2, 3, 4], payload: ["name": .null, "tags": .stringList([])])])
        }
        XCTAssertTrue(nullError?.message.contains("not nullable") ?? false, nullError?.message ?? "")
        assertStrataError(.typeMismatch, "missing non-nullable column") {
            try w.append([SegmentRow(id: 1, vector: [1, 2, 3, 4], payload: ["tags": .stringList([])])])
        }
        [Float](repeating: 1, count: 4).withUnsafeBufferPointer { v in
            assertStrataError(.typeMismatch) { try w.append(id: 1, vector: v, values: [.bool(true), .null, .stringList([])]) }
            assertStrataError(.typeMismatch) { try w.append(id: 1, vector: v, values: [.string("a"), .null, .null]) }
            assertStrataError(.invalidArgument, "wrong value count") { try w.append(id: 1, vector: v, values: [.string("a")]) }
        }
        XCTAssertEqual(w.rowCount, 0)
        // Reads: unknown column.
        try w.append([SegmentRow(id: 1, vector: [1, 2, 3, 4], payload: ["name": .string("a"), "tags": .stringList([])])])
        try w.finish()
        let seg = try Segment.open(path: tmpPath("w.seg"))
        assertStrataError(.unknownColumn) { try seg.value(row: 0, column: "nope") }
        assertStrataError(.unknownColumn) { try seg.blocks(ofColumn: "nope") }
        assertStrataError(.unknownColumn) { try seg.scan(column: "Name") { _, _ in } }
        assertStrataError(.unknownColumn) { try seg.schema.columnIndex(named: "") }
    }

    func testBadSchemaAndOptions() throws {
        func bad(_ schema: SegmentSchema, _ label: String) {
            assertStrataError(.invalidArgument, label) { try SegmentWriter(path: tmpPath("bad.seg"), schema: schema) }
        }
        bad(SegmentSchema(dimension: 0), "dimension 0")
        bad(SegmentSchema(dimension: -1), "dimension -1")
        bad(SegmentSchema(dimension: 4097), "dimension 4097")
        bad(SegmentSchema(dimension: 4, columns: [ColumnSpec(name: "", type: .int64)]), "empty name")
        bad(SegmentSchema(dimension: 4, columns: [ColumnSpec(name: String(repeating: "x", count: 256), type: .int64)]), "256-byte name")
        bad(SegmentSchema(dimension: 4, columns: [ColumnSpec(name: String(repeating: "é", count: 128), type: .int64)]), "256 UTF-8 bytes")
        bad(SegmentSchema(dimension: 4, columns: [ColumnSpec(name: "a", type: .int64), ColumnSpec(name: "a", type: .string)]), "duplicate")
        XCTAssertNoThrow(try SegmentSchema(dimension: 4, columns: [ColumnSpec(name: String(repeating: "x", count: 255), type: .int64)]).validate())
        for (rpb, mbb) in [(0, 1 << 20), (-1, 1 << 20), ((1 << 20) + 1, 1 << 20), (16, 1023), (16, (1 << 28) + 1)] {
            var o = SegmentWriterOptions()
            o.rowsPerBlock = rpb
            o.maxBlockBytes = mbb
            assertStrataError(.invalidArgument, "options \(rpb) \(mbb)") {
                try SegmentWriter(path: tmpPath("bad.seg"), schema: SegmentSchema(dimension: 4), options: o)
            }
        }
        XCTAssertEqual(tmpContents(), [], "a rejected writer leaves no file")
        // Schema specs.
        for spec in ["name", "name:", ":int64", "a:widget", "a:int64:maybe", "a:int64,b"] {
            assertStrataError(.invalidArgument, spec) { try SegmentSchema.parseColumns(spec) }
        }
        XCTAssertEqual(try SegmentSchema.parseColumns("name:string, rank:int64?,t:tags:nullable,f:double nullable,b:bool"), [
            ColumnSpec(name: "name", type: .string), ColumnSpec(name: "rank", type: .int64, nullable: true),
            ColumnSpec(name: "t", type: .stringList, nullable: true), ColumnSpec(name: "f", type: .float64, nullable: true),
            ColumnSpec(name: "b", type: .bool),
        ])
        // A directory that does not exist.
        assertStrataError(.io) { try SegmentWriter(path: tmpPath("no/such/dir.seg"), schema: SegmentSchema(dimension: 4)) }
    }

    func testRejectedBatchLeavesWriterUsable() throws {
        let w = try makeWriter()
        let good = Self.rows(6)
        func segRow(_ r: TestRow) -> SegmentRow {
            SegmentRow(id: r.id, vector: r.vector, payload: ["name": r.values[0], "rank": r.values[1], "tags": r.values[2]])
        }
        try w.append(good[0..<2].map(segRow))
        // Bad row last in the batch: nothing of the batch is written.
        var badBatch = good[2..<4].map(segRow)
        badBatch.append(SegmentRow(id: 999, vector: [1, .nan, 1, 1], payload: ["name": .string("bad"), "tags": .stringList([])]))
        assertStrataError(.nonFiniteValue) { try w.append(badBatch) }
        XCTAssertEqual(w.rowCount, 2)
        var badBatch2 = good[2..<4].map(segRow)
        badBatch2.append(SegmentRow(id: 998, vector: [1, 1, 1, 1], payload: ["name": .string("bad"), "oops": .null, "tags": .stringList([])]))
        assertStrataError(.unknownColumn) { try w.append(badBatch2) }
        assertStrataError(.dimensionMismatch) { try w.append([SegmentRow(id: 997, vector: [1])]) }
        XCTAssertEqual(w.rowCount, 2)
        try w.append(good[2..<6].map(segRow))
        XCTAssertEqual(w.rowCount, 6)
        let summary = try w.finish()
        XCTAssertEqual(summary.rowCount, 6)
        let seg = try Segment.open(path: tmpPath("w.seg"))
        XCTAssertEqual(seg.rowCount, 6)
        for (r, row) in good.enumerated() {
            XCTAssertEqual(try seg.id(ofRow: r), row.id)
            XCTAssertEqual(try seg.vector(row: r), row.vector)
            XCTAssertTrue(samePayload(try seg.payload(row: r), row.values))
        }
        XCTAssertNil(try seg.row(forId: 999))
        XCTAssertTrue(seg.verify().isSound)
        // A finished writer refuses more rows.
        assertStrataError(.invalidArgument) { try w.append([segRow(good[0])]) }
        assertStrataError(.invalidArgument) { try w.finish() }
    }

    /// A cosine vector whose norm is below ~3e-39 (all components tiny or subnormal) must either be
    /// rejected or stored as a finite unit vector: the writer must never publish a segment that its
    /// own verify() calls corrupt.
    func testCosineTinyVectorIsNormalisedOrRejected() throws {
        let tiny = Float.leastNormalMagnitude / 16 // subnormal, ~7e-40
        for elementType in VectorElementType.allCases {
            let name = "tiny-\(elementType).seg"
            let w = try makeWriter(name, schema: SegmentSchema(dimension: 4, elementType: elementType, metric: .cosine))
            do {
                try w.append([SegmentRow(id: 1, vector: [tiny, 0, 0, 0]), SegmentRow(id: 2, vector: [1, 1, 0, 0])])
            } catch {
                XCTAssertEqual(error.code, .invalidArgument)
                w.abort()
                continue
            }
            try w.finish()
            let seg = try Segment.open(path: tmpPath(name))
            let v = try seg.vector(row: 0)
            XCTAssertTrue(v.allSatisfy(\.isFinite), "\(elementType): stored \(v) for a tiny but non-zero vector")
            if v.allSatisfy(\.isFinite) { XCTAssertEqual(v[0], 1, accuracy: 1e-3) }
            let report = seg.verify()
            XCTAssertTrue(report.isSound, "\(elementType): the writer published a segment verify rejects: \(report.problems)")
            let hits = try seg.exactSearch(query: [1, 0, 0, 0], k: 2)
            XCTAssertEqual(hits.first?.id, 1, "\(elementType): the tiny vector points exactly along the query")
        }
    }

    func testDroppedWriterRemovesTempFiles() throws {
        do {
            let w = try makeWriter("dropped.seg")
            try w.append(Self.rows(2).map { SegmentRow(id: $0.id, vector: $0.vector, payload: ["name": $0.values[0], "tags": $0.values[2]]) })
            XCTAssertFalse(tmpContents().isEmpty)
        }
        XCTAssertEqual(tmpContents(), [], "deinit of an unfinished writer removes its temp file and spools")
    }

    func testAbortRemovesTempFiles() throws {
        let w = try makeWriter("aborted.seg")
        try w.append(Self.rows(3).map { SegmentRow(id: $0.id, vector: $0.vector, payload: ["name": $0.values[0], "tags": $0.values[2]]) })
        XCTAssertFalse(tmpContents().isEmpty, "temp file and spools exist while writing")
        w.abort()
        XCTAssertEqual(tmpContents(), [])
        assertStrataError(.invalidArgument) { try w.finish() }
    }
}
