// The ingest loop of `strata build` (and `bench` when it builds its segment): vector files, payload
// lines, ids and sparse vectors streamed into a SegmentWriter.
import StrataFormat
import Strata

/// Builds a segment from input files.
package enum SegmentBuild {
    /// What a build wrote.
    package struct Outcome {
        /// The writer's summary (rows, bytes, sections).
        package var summary: SegmentWriteSummary
        /// Wall seconds, from opening the inputs to the finished file.
        package var seconds: Double
        /// Vector dimension.
        package var dimension: Int
    }

    /// Streams vectors (and payload lines, ids and sparse vectors) into a new segment at `out`.
    /// Errors name the row of the vector file or the line of a side file; a failed build leaves no
    /// file behind (the writer removes its temporary files). `progress` gets a line every 100,000
    /// rows and before the index build.
    package static func run(vectors: String, payload: String?, columns: [ColumnSpec], ids: String?, sparse: String? = nil,
                            metric: DistanceMetric, elementType: VectorElementType, options: SegmentWriterOptions, out: String,
                            progress: (String) -> Void = { _ in }) throws(StrataError) -> Outcome {
        let start = monotonicSeconds()
        let input = try InputRows(vectors: vectors, payload: payload, columns: columns, ids: ids.map { .file($0) } ?? .rowNumbers,
                                  sparse: sparse)
        guard input.vectors.dimension > 0 else {
            throw StrataError(.truncated, "the vector file is empty: no vector gives the dimension", path: vectors, offset: 0)
        }
        let schema = SegmentSchema(dimension: input.vectors.dimension, elementType: elementType, metric: metric, columns: columns)
        let writer = try SegmentWriter(path: out, schema: schema, options: options)
        try append(input, to: writer, progress: progress)
        if options.index != nil { progress("building index...") }
        let summary = try writer.finish()
        return Outcome(summary: summary, seconds: monotonicSeconds() - start, dimension: input.vectors.dimension)
    }

    /// Appends every row of `input` to `writer` (vector and payload, then its sparse vector); an
    /// append error is located at the input row (``InputRows/locate(_:row:)``).
    package static func append(_ input: InputRows, to writer: SegmentWriter, progress: (String) -> Void = { _ in }) throws(StrataError) {
        try input.forEach { (row) throws(StrataError) in
            do throws(StrataError) {
                try input.vectors.withRow(row.fileRow) { (v) throws(StrataError) in try writer.append(id: row.id, vector: v, values: row.values) }
            } catch {
                throw input.locate(error, row: row)
            }
            if let s = row.sparse { try writer.setSparseVector(row: writer.rowCount - 1, s) }
            if row.fileRow % 100_000 == 99_999 { progress("\(row.fileRow + 1) rows") }
        }
    }
}
