// The rows an index build reads, behind one small protocol: the in-memory Vamana build navigates a
// float16 copy (or the float32 input), the out-of-core build reads the segment's mapped vectors, and
// the merge prunes over candidates it gathered densely. RobustPrune and the medoid are written once,
// generic over `BuildRows`; every conformer is a struct of a pointer and a stride whose accessors are
// `@inline(__always)`, and callers use the protocol only as a generic constraint, so the compiler
// specialises the hot loops per row type (no existential or witness-table call per distance).
import StrataFormat
import CStrataKernels

/// Rows `0..<count` of `dimension` values that a build can read as float32 and measure against.
protocol BuildRows {
    /// Number of rows.
    var count: Int { get }
    /// Values per row.
    var dimension: Int { get }
    /// Bytes of one row as stored (what ``rowAddress(_:)`` points at), for prefetching.
    var rowBytes: Int { get }
    /// Row `i` as float32: in place when stored as float32, else widened into `scratch`
    /// (`dimension` floats, owned by the calling thread).
    func float32Row(_ i: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>
    /// Squared L2 from a float32 `query` to row `i` as stored (asymmetric for float16 rows).
    func squaredDistance(_ query: UnsafePointer<Float>, _ i: Int) -> Float
    /// Start of row `i` as stored, for prefetching.
    func rowAddress(_ i: Int) -> UnsafeRawPointer
}

/// float32 rows in memory: row `i` at `base + i * stride` (floats).
struct Float32Rows: BuildRows {
    let base: UnsafePointer<Float>
    let stride: Int
    let dimension: Int
    let count: Int

    var rowBytes: Int { @inline(__always) get { dimension * 4 } }

    @inline(__always) func row(_ i: Int) -> UnsafePointer<Float> { base + i * stride }

    @inline(__always) func float32Row(_ i: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        base + i * stride
    }

    @inline(__always) func squaredDistance(_ query: UnsafePointer<Float>, _ i: Int) -> Float {
        strata_l2sq_f32(query, base + i * stride, dimension)
    }

    @inline(__always) func rowAddress(_ i: Int) -> UnsafeRawPointer { UnsafeRawPointer(base + i * stride) }
}

/// float16 rows (raw bits) in memory: row `i` at `base + i * stride` (halves). Distances are from a
/// float32 query to the float16 row (the C kernel widens as it goes).
struct Float16Rows: BuildRows {
    let base: UnsafePointer<UInt16>
    let stride: Int
    let dimension: Int
    let count: Int

    var rowBytes: Int { @inline(__always) get { dimension * 2 } }

    @inline(__always) func float32Row(_ i: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        strata_f16_to_f32(base + i * stride, scratch, dimension)
        return UnsafePointer(scratch)
    }

    @inline(__always) func squaredDistance(_ query: UnsafePointer<Float>, _ i: Int) -> Float {
        strata_l2sq_f16(query, base + i * stride, dimension)
    }

    @inline(__always) func rowAddress(_ i: Int) -> UnsafeRawPointer { UnsafeRawPointer(base + i * stride) }
}

/// A segment's vectors section as mapped (row `i` at `base + i * strideBytes`), float32 or float16:
/// what the out-of-core build and the index writer read.
///
/// Unchecked `Sendable`: a pointer to rows that no one writes while the build reads them (a read-only
/// mapping or the frozen input).
package struct VectorRows: BuildRows, @unchecked Sendable {
    let base: UnsafeRawPointer
    let strideBytes: Int
    package let dimension: Int
    package let count: Int
    let elementType: VectorElementType

    package init(base: UnsafeRawPointer, strideBytes: Int, dimension: Int, count: Int, elementType: VectorElementType) {
        self.base = base
        self.strideBytes = strideBytes
        self.dimension = dimension
        self.count = count
        self.elementType = elementType
    }

    var rowBytes: Int { dimension * (elementType == .float32 ? 4 : 2) }

    /// Copies row `i` into `out` as float32 (`dimension` floats).
    @inline(__always) func copy(row i: Int, into out: UnsafeMutablePointer<Float>) {
        let src = base + i * strideBytes
        switch elementType {
        case .float32: out.update(from: src.assumingMemoryBound(to: Float.self), count: dimension)
        case .float16: strata_f16_to_f32(src.assumingMemoryBound(to: UInt16.self), out, dimension)
        }
    }

    @inline(__always) func float32Row(_ i: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        let src = base + i * strideBytes
        switch elementType {
        case .float32: return src.assumingMemoryBound(to: Float.self)
        case .float16:
            strata_f16_to_f32(src.assumingMemoryBound(to: UInt16.self), scratch, dimension)
            return UnsafePointer(scratch)
        }
    }

    @inline(__always) func squaredDistance(_ query: UnsafePointer<Float>, _ i: Int) -> Float {
        let src = base + i * strideBytes
        switch elementType {
        case .float32: return strata_l2sq_f32(query, src.assumingMemoryBound(to: Float.self), dimension)
        case .float16: return strata_l2sq_f16(query, src.assumingMemoryBound(to: UInt16.self), dimension)
        }
    }

    @inline(__always) func rowAddress(_ i: Int) -> UnsafeRawPointer { base + i * strideBytes }

    /// The rows as a float32 buffer with its stride in floats, when stored as float32 (read in place).
    var float32InPlace: (buffer: UnsafeBufferPointer<Float>, rowStride: Int)? {
        guard elementType == .float32, count > 0, strideBytes % 4 == 0 else { return nil }
        let strideFloats = strideBytes / 4
        return (UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: (count - 1) * strideFloats + dimension),
                strideFloats)
    }

    /// Copies the rows `rows` (any order) densely into a new array (`rows.count * dimension` floats).
    func gather<C: Collection<Int>>(_ rows: C, threads: Int) -> [Float] where C.Index == Int {
        let d = dimension
        var out = [Float](repeating: 0, count: rows.count * d)
        out.withUnsafeMutableBufferPointer { o in
            let dst = SendablePointer(o.baseAddress!)
            let list = UncheckedBox(rows)
            IndexParallel.forEach(count: rows.count, threads: threads, chunk: 1024) { _, k in
                self.copy(row: list.value[list.value.startIndex + k], into: dst.base + k * d)
            }
        }
        return out
    }
}
