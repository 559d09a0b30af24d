// Row builders, a segment writer that mixes the two append APIs, payload and vector comparison.
import Foundation
import Strata

/// A row with positional payload (schema column order).
package struct TestRow {
    package var id: UInt64
    package var vector: [Float]
    package var values: [PayloadValue]

    package init(id: UInt64, vector: [Float], values: [PayloadValue]) {
        self.id = id
        self.vector = vector
        self.values = values
    }
}

/// Writes `rows` with a mix of the two append APIs: batches of `SegmentRow` (payload by name, nulls
/// sometimes omitted to exercise "missing is null") and single `append(id:vector:values:)` calls.
@discardableResult
package func writeSegment(path: String, schema: SegmentSchema, rows: [TestRow], rowsPerBlock: Int = 1024,
                  maxBlockBytes: Int = 1 << 20, batchSize: Int = 4) throws -> SegmentWriteSummary {
    var options = SegmentWriterOptions()
    options.rowsPerBlock = rowsPerBlock
    options.maxBlockBytes = maxBlockBytes
    let writer = try SegmentWriter(path: path, schema: schema, options: options)
    var i = 0
    var useBatch = true
    while i < rows.count {
        let end = min(rows.count, i + batchSize)
        if useBatch {
            let batch = rows[i..<end].enumerated().map { (k, r) -> SegmentRow in
                var payload: [String: PayloadValue] = [:]
                for (spec, v) in zip(schema.columns, r.values) {
                    if case .null = v, k % 2 == 0 { continue } // omitted: must read back as null
                    payload[spec.name] = v
                }
                return SegmentRow(id: r.id, vector: r.vector, payload: payload)
            }
            try writer.append(batch)
        } else {
            for r in rows[i..<end] {
                try r.vector.withUnsafeBufferPointer { v in try writer.append(id: r.id, vector: v, values: r.values) }
            }
        }
        useBatch.toggle()
        i = end
    }
    return try writer.finish()
}

/// Payload equality that distinguishes what `==` on Swift values would blur: floats by bit pattern
/// (NaN, -0.0) and strings by UTF-8 bytes (Swift `==` uses canonical equivalence).
package func samePayload(_ a: PayloadValue, _ b: PayloadValue) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case (.int64(let x), .int64(let y)): return x == y
    case (.float64(let x), .float64(let y)): return x.bitPattern == y.bitPattern
    case (.bool(let x), .bool(let y)): return x == y
    case (.string(let x), .string(let y)): return Array(x.utf8) == Array(y.utf8)
    case (.stringList(let x), .stringList(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { Array($0.utf8) == Array($1.utf8) }
    default: return false
    }
}

package func samePayload(_ a: [PayloadValue], _ b: [PayloadValue]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { samePayload($0, $1) }
}

/// The vector the segment should hold for `input` (normalised for cosine, rounded for float16).
package func expectedStoredVector(_ input: [Float], schema: SegmentSchema) -> [Float] {
    var v = input
    if schema.metric == .cosine {
        let n = v.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        v = v.map { $0 / n }
    }
    if schema.elementType == .float16 { v = v.map { Float(Float16($0)) } }
    return v
}

/// Element-wise closeness: float32 within 1e-6 (absolute, after normalisation) or float16 rounding.
package func vectorsClose(_ a: [Float], _ b: [Float], elementType: VectorElementType, metric: DistanceMetric) -> Bool {
    guard a.count == b.count else { return false }
    let exact = elementType == .float32 && metric != .cosine
    for (x, y) in zip(a, b) {
        if exact { if x.bitPattern != y.bitPattern { return false }; continue }
        let tol: Float = elementType == .float16 ? max(abs(y) * 1.0 / 1024, 1e-4) : 2e-6
        if abs(x - y) > tol { return false }
    }
    return true
}

extension IndexOptions {
    /// A small, fast index for test segments of a few thousand rows: built at any row count, 8 PQ
    /// sub-spaces, R 24, build list 48, two threads.
    package static var smallTestIndex: IndexOptions {
        var index = IndexOptions()
        index.minimumRows = 0
        index.pqSubspaces = 8
        index.graph.maxDegree = 24
        index.graph.buildListSize = 48
        index.graph.threads = 2
        return index
    }
}
