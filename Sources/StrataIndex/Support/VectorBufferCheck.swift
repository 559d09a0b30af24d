// The shape check of the row-major float buffers that index builds and quantisers take.
import StrataFormat

/// Checks that a row-major float buffer holds `count` rows of `dimension` floats `rowStride` apart.
/// - Throws: ``StrataError/Code/invalidArgument`` naming the bad shape.
func checkVectorBuffer(_ vectors: UnsafeBufferPointer<Float>, count: Int, dimension: Int, rowStride: Int) throws(StrataError) {
    if count < 0 { throw StrataError(.invalidArgument, "row count \(count) is negative") }
    if dimension <= 0 { throw StrataError(.invalidArgument, "dimension \(dimension) must be positive") }
    if rowStride < dimension { throw StrataError(.invalidArgument, "row stride \(rowStride) is below the dimension \(dimension)") }
    if count == 0 { return }
    let (a, o1) = (count - 1).multipliedReportingOverflow(by: rowStride)
    let (need, o2) = a.addingReportingOverflow(dimension)
    if o1 || o2 || need > vectors.count {
        throw StrataError(.invalidArgument, "vector buffer holds \(vectors.count) floats, \(count) rows of stride \(rowStride) need more")
    }
    if vectors.baseAddress == nil { throw StrataError(.invalidArgument, "vector buffer has no storage") }
}
