// The `segment` fuzz harness (tools/fuzz FuzzSegment, replayed by FuzzRegressionTests): a segment
// file from arbitrary bytes. Each input is written to a scratch file and opened with `Segment.open`;
// then `verify()` runs and, sound or not, a few rows, ids, payload values, column scans, exact and
// index search, and the filtered / sparse / BM25 / hybrid search of ``FuzzSearch`` steered by bytes
// 64..<320. A thrown StrataError is a fine outcome; a trap, a hang or an AddressSanitizer report is
// a bug.
import Foundation
import Strata

/// The segment fuzz harness.
public enum SegmentHarness {
    /// The harness body: bytes in, no trap out. The input runs as given; when re-sealing its header,
    /// directory and footer checksums changes it, once more re-sealed (so mutations reach the
    /// parsers); and when also re-sealing the payload block checksums and the section checksums
    /// changes it further, a third time (so mutated block bytes reach LZ4 and the block decoders,
    /// and verify gets past the section checksums). `scratch` is a directory the harness owns.
    public static func run(_ data: [UInt8], scratch: String) {
        runOnce(data, scratch: scratch)
        guard data.count >= 4160 else { return }
        var sealed = data
        Reseal.segment(&sealed)
        if sealed != data { runOnce(sealed, scratch: scratch) }
        var deep = sealed
        Reseal.segmentDeep(&deep)
        if deep != sealed { runOnce(deep, scratch: scratch) }
    }

    /// One pass: bytes -> file -> open and ``exercise(_:control:)``.
    static func runOnce(_ data: [UInt8], scratch: String) {
        let path = scratch + "/input.seg"
        unlink(path)
        guard FileManager.default.createFile(atPath: path, contents: Data(data)) else { fatalError("cannot create \(path)") }
        guard let seg = try? Segment.open(path: path) else { return }
        defer { seg.close() }
        exercise(seg, control: data.count >= 320 ? Array(data[64..<320]) : [])
    }

    /// Exercises every read path of a segment that opened, whatever verify() said.
    static func exercise(_ seg: Segment, control: [UInt8]) {
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
        FuzzSearch.exercise(seg, control: control)
        let d = seg.schema.dimension
        guard d > 0, d <= 1 << 16 else { return }
        let query = (0..<d).map { Float(($0 % 7) - 3) * 0.25 }
        _ = try? seg.exactSearch(query: query, k: 5)
        _ = try? seg.exactSearch(queries: [query, query.map { -$0 }], k: 3)
        _ = try? seg.search(query: query, options: SearchOptions(k: 5, listSize: 16))
        _ = try? seg.search(query: query, options: SearchOptions(k: 3, listSize: 8, beamWidth: 2, exact: false, readAhead: true))
    }

    /// Writes the seeds the fixtures lack into `directory` (`seed-indexed-search.seg`).
    public static func writeSeeds(to directory: String) throws(StrataError) {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/seed-indexed-search.seg"
        unlink(path)
        try writeIndexedSearchSeed(to: path)
    }

    /// A seed that no fixture covers: an ANN index (PQ + graph, so filtered graph search runs over
    /// possibly corrupt payload indexes) together with payload indexes on every column, BM25 on `title`
    /// and `tags`, and a sparse vector on most rows. 48 rows of 8 dimensions, 8 rows per block.
    package static func writeIndexedSearchSeed(to path: String) throws(StrataError) {
        let schema = SegmentSchema(dimension: 8, elementType: .float32, metric: .l2, columns: [
            ColumnSpec(name: "title", type: .string),
            ColumnSpec(name: "count", type: .int64, nullable: true),
            ColumnSpec(name: "score", type: .float64, nullable: true),
            ColumnSpec(name: "flag", type: .bool),
            ColumnSpec(name: "tags", type: .stringList, nullable: true),
        ])
        let options = FuzzSeed.writerOptions(search: SearchSectionOptions(indexedColumns: schema.columns.map(\.name), bm25Columns: ["title", "tags"]))
        let words = ["alpha", "beta", "gamma", "delta", "Alpha", "épsilon", "zeta"]
        let writer = try SegmentWriter(path: path, schema: schema, options: options)
        for r in 0..<48 {
            let vector = (0..<8).map { d in Float((r * 5 + d * 3) % 13 - 6) * 0.5 }
            let title: PayloadValue = .string("\(words[r % 7]) \(words[(r / 7) % 7]) #\(r)")
            let tags: PayloadValue = r % 6 == 5 ? .null : .stringList((0..<(r % 4)).map { words[(r + $0) % 7] })
            let values = [title] + FuzzSeed.numericValues(row: r) + [tags]
            try vector.withUnsafeBufferPointer { (v) throws(StrataError) in try writer.append(id: UInt64(r) &* 0x9E37_79B9 &+ 7, vector: v, values: values) }
            if r % 5 != 4 {
                try writer.setSparseVector(row: r, SparseVector(indices: [UInt32(r % 9), UInt32(10 + r % 3), 1000], values: [Float(r % 4) + 0.5, 0.25, Float(r) * 0.125]))
            }
        }
        try writer.finish()
    }
}
