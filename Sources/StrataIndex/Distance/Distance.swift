// The one mapping from a metric to a distance kernel, and the one preparation of vectors for it.
//
// Strata's convention everywhere (exact scans, beam search, filtered search, the write buffer):
// smaller is closer; `.l2` is the squared Euclidean distance, `.innerProduct` is `-dot` and `.cosine`
// is `1 - dot` of unit vectors (stored vectors are normalised when written, queries when searched,
// both by VectorLimits.unitVector). Every caller that turns a metric into a number goes through
// `Distance`, so a metric is dispatched in exactly one switch.
import StrataFormat
import CStrataKernels

/// A distance function: a metric over stored vectors of one element type, compared with float32
/// queries, in Strata's convention (smaller is closer).
///
/// The `unsafe` entry points read `dimension` elements from each pointer without checking; they are
/// for hot loops over mapped or scratch memory whose bounds the caller has checked once. The other
/// entry points check their arguments.
package struct Distance: Hashable, Sendable {
    /// The metric.
    package let metric: DistanceMetric
    /// How stored vectors are encoded (the query is always float32).
    package let elementType: VectorElementType

    /// The distance of `metric` over stored vectors of `elementType`.
    @inlinable
    package init(metric: DistanceMetric, elementType: VectorElementType = .float32) {
        self.metric = metric
        self.elementType = elementType
    }

    /// The distance a segment or collection with `schema` searches with.
    @inlinable
    package init(_ schema: SegmentSchema) {
        self.init(metric: schema.metric, elementType: schema.elementType)
    }

    // MARK: Hot-loop entry points (unchecked)

    /// Distance from a float32 query to a stored vector whose elements start at `stored` (encoded
    /// as ``elementType``). Reads `dimension` elements from each side, unchecked.
    @inlinable @inline(__always)
    package func unsafeDistance(_ query: UnsafePointer<Float>, _ stored: UnsafeRawPointer, dimension: Int) -> Float {
        switch elementType {
        case .float32: return Distance.unsafeFloat32(metric, query, stored.assumingMemoryBound(to: Float.self), dimension)
        case .float16: return Distance.unsafeFloat16(metric, query, stored.assumingMemoryBound(to: UInt16.self), dimension)
        }
    }

    /// Distance under `metric` between two float32 vectors of `count` elements, unchecked.
    @inlinable @inline(__always)
    package static func unsafeFloat32(_ metric: DistanceMetric, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                     _ count: Int) -> Float {
        switch metric {
        case .l2: return strata_l2sq_f32(a, b, count)
        case .innerProduct: return -strata_dot_f32(a, b, count)
        case .cosine: return 1 - strata_dot_f32(a, b, count)
        }
    }

    /// Distance under `metric` between a float32 query and a float16 vector (raw binary16 bits) of
    /// `count` elements, unchecked.
    @inlinable @inline(__always)
    package static func unsafeFloat16(_ metric: DistanceMetric, _ a: UnsafePointer<Float>, _ b: UnsafePointer<UInt16>,
                                     _ count: Int) -> Float {
        switch metric {
        case .l2: return strata_l2sq_f16(a, b, count)
        case .innerProduct: return -strata_dot_f16(a, b, count)
        case .cosine: return 1 - strata_dot_f16(a, b, count)
        }
    }

    // MARK: Checked entry points

    /// Distance between two float32 vectors of the same length under ``metric`` (the element type
    /// is not used: both sides are float32 already). For `.cosine` both should be unit vectors
    /// (see ``prepareQuery(_:)`` and ``storedForm(_:)``).
    /// - Precondition: `a.count == b.count`.
    @inlinable
    package func callAsFunction(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        precondition(a.count == b.count, "vectors of different lengths")
        var zero: Float = 0
        return withUnsafePointer(to: &zero) { z in
            Distance.unsafeFloat32(metric, a.baseAddress ?? z, b.baseAddress ?? z, a.count)
        }
    }

    /// Distance between two float32 vectors of the same length under ``metric``.
    /// - Precondition: `a.count == b.count`.
    @inlinable
    package func callAsFunction(_ a: [Float], _ b: [Float]) -> Float {
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in self(pa, pb) } }
    }

    // MARK: Preparing vectors

    /// The query as the metric compares it: for `.cosine` the unit vector (``VectorLimits/unitVector(_:into:)``),
    /// otherwise `query` itself. The caller has checked the dimension and ``VectorLimits/checkQuery(_:path:)``.
    /// - Throws: ``StrataError/Code/invalidValue`` for a zero query under `.cosine`.
    @inlinable
    package func prepareQuery(_ query: [Float], path: String? = nil) throws(StrataError) -> [Float] {
        guard metric == .cosine else { return query }
        return try VectorLimits.cosineUnitQuery(query, path: path)
    }

    /// The vector a segment stores for `input`, as float32: the unit vector under `.cosine`, then
    /// rounded to the nearest float16 when ``elementType`` is `.float16`.
    package func storedForm(_ input: [Float]) -> [Float] {
        var out = input
        if metric == .cosine {
            input.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in _ = VectorLimits.unitVector(src, into: dst) }
            }
        }
        if elementType == .float16 {
            for d in out.indices { out[d] = Float(Float16(out[d])) }
        }
        return out
    }
}
