// Scalar 8-bit quantisation: per dimension, value = minimum + code * scale, code in 0...255.
//
// Serialised form (little-endian):
//
// | Offset | Size  | Type  | Meaning                               |
// | -----: | ----- | ----- | ------------------------------------- |
// |      0 | 8     | ASCII | magic `STRATASQ`                      |
// |      8 | 4     | u32   | version, 1                            |
// |     12 | 4     | u32   | dimension D                           |
// |     16 | 4 * D | f32[] | per-dimension minimum                 |
// | 16+4D  | 4 * D | f32[] | per-dimension scale (>= 0, finite)    |
//
// Codes are D bytes per row.

/// A per-dimension min/scale quantiser to one byte per dimension.
public struct ScalarQuantizer: Sendable, Equatable {
    static let magic = "STRATASQ"
    static let version: UInt32 = 1

    /// Dimension of the vectors (and bytes per code).
    public let dimension: Int
    /// Per-dimension minimum.
    public let minimum: [Float]
    /// Per-dimension step: `(max - min) / 255` (0 for a constant dimension).
    public let scale: [Float]

    /// Fits minimum and scale to the rows' per-dimension range.
    /// - Throws: ``StrataError/Code/invalidArgument`` for a bad buffer or non-finite values.
    /// - Complexity: O(count * dimension).
    public init(training vectors: UnsafeBufferPointer<Float>, count: Int, dimension: Int, rowStride: Int) throws {
        try checkVectorBuffer(vectors, count: count, dimension: dimension, rowStride: rowStride)
        var lo = [Float](repeating: count == 0 ? 0 : .infinity, count: dimension)
        var hi = [Float](repeating: count == 0 ? 0 : -.infinity, count: dimension)
        if count > 0 {
            let base = vectors.baseAddress!
            for i in 0..<count {
                let x = base + i * rowStride
                for j in 0..<dimension {
                    let v = x[j]
                    if !v.isFinite { throw StrataError(.nonFiniteValue, "row \(i) dimension \(j) is \(v)") }
                    if v < lo[j] { lo[j] = v }
                    if v > hi[j] { hi[j] = v }
                }
            }
        }
        self.dimension = dimension
        self.minimum = lo
        self.scale = (0..<dimension).map { j in (hi[j] - lo[j]) / 255 }
    }

    init(dimension: Int, minimum: [Float], scale: [Float]) {
        self.dimension = dimension
        self.minimum = minimum
        self.scale = scale
    }

    /// Encodes one vector into `dimension` bytes (values outside the trained range are clamped).
    public func encode(_ vector: UnsafePointer<Float>, into code: UnsafeMutablePointer<UInt8>) {
        for j in 0..<dimension {
            let s = scale[j]
            var q: Float = s > 0 ? ((vector[j] - minimum[j]) / s).rounded() : 0
            if !(q >= 0) { q = 0 }
            if q > 255 { q = 255 }
            code[j] = UInt8(q)
        }
    }

    /// Encodes `count` rows into a `count x dimension` byte array.
    public func encode(vectors: UnsafeBufferPointer<Float>, count: Int, rowStride: Int) throws -> [UInt8] {
        try checkVectorBuffer(vectors, count: count, dimension: dimension, rowStride: rowStride)
        var out = [UInt8](repeating: 0, count: count * dimension)
        if count == 0 { return out }
        let base = vectors.baseAddress!
        out.withUnsafeMutableBufferPointer { o in
            for i in 0..<count { encode(base + i * rowStride, into: o.baseAddress! + i * dimension) }
        }
        return out
    }

    /// Reconstructs a vector from its code.
    public func decode(_ code: UnsafePointer<UInt8>) -> [Float] {
        (0..<dimension).map { j in minimum[j] + Float(code[j]) * scale[j] }
    }

    /// Mean over rows of the squared reconstruction error.
    public func meanSquaredError(vectors: UnsafeBufferPointer<Float>, count: Int, rowStride: Int) throws -> Double {
        try checkVectorBuffer(vectors, count: count, dimension: dimension, rowStride: rowStride)
        if count == 0 { return 0 }
        let base = vectors.baseAddress!
        var code = [UInt8](repeating: 0, count: dimension)
        var total = 0.0
        for i in 0..<count {
            let x = base + i * rowStride
            code.withUnsafeMutableBufferPointer { encode(x, into: $0.baseAddress!) }
            for j in 0..<dimension {
                let t = Double(x[j]) - Double(minimum[j] + Float(code[j]) * scale[j])
                total += t * t
            }
        }
        return total / Double(count)
    }

    /// The serialised form (layout at the top of this file).
    public func serialize() -> [UInt8] {
        var w = IndexByteWriter()
        w.append(ScalarQuantizer.magic)
        w.append(ScalarQuantizer.version)
        w.append(UInt32(dimension))
        w.append(floats: minimum)
        w.append(floats: scale)
        return w.bytes
    }

    /// Reads a serialised quantiser.
    /// - Throws: ``StrataError/Code/corrupt`` (section "sq codebook") for bad magic, version, length,
    ///   or non-finite / negative values.
    public init(deserializing bytes: UnsafeRawBufferPointer) throws {
        var r = IndexByteReader(bytes, section: "sq codebook")
        try r.expectMagic(ScalarQuantizer.magic)
        let version = try r.readU32()
        if version != ScalarQuantizer.version { throw r.fail("unsupported SQ version \(version)") }
        let dim = Int(try r.readU32())
        if dim == 0 { throw r.fail("SQ dimension is zero") }
        let lo = try r.readFloats(dim, "SQ minimum")
        let sc = try r.readFloats(dim, "SQ scale")
        try r.expectEnd()
        if lo.contains(where: { !$0.isFinite }) { throw r.fail("non-finite SQ minimum") }
        if sc.contains(where: { !$0.isFinite || $0 < 0 }) { throw r.fail("bad SQ scale") }
        self.init(dimension: dim, minimum: lo, scale: sc)
    }
}
