/// Min/max summary of a block (or a whole column), used to skip blocks during scans.
///
/// 20 bytes on disk: kind u8, flags u8, min length u8, max length u8, min 8 B, max 8 B.
/// - kind 0: none (bool columns, all-null blocks);
/// - kind 1: int64 min/max; kind 2: float64 min/max (NaN never stored);
/// - kind 3: string prefix: the first 8 bytes of the smallest and largest UTF-8 string (for string
///   lists, over all items). A prefix is a lower bound for min; for max, flag bit 1 says the largest
///   string was longer than 8 bytes, so every string in the block is <= max prefix followed by 0xFF...
public enum ZoneMap: Sendable, Equatable, CustomStringConvertible {
    /// No summary.
    case none
    /// Integer range.
    case int64(min: Int64, max: Int64)
    /// Float range.
    case float64(min: Double, max: Double)
    /// String prefix range (`maxTruncated`: the real max is longer than `maxPrefix`).
    case stringPrefix(minPrefix: [UInt8], maxPrefix: [UInt8], maxTruncated: Bool)

    static let encodedLength = 20
    static let prefixLength = 8

    /// Human-readable range.
    public var description: String {
        switch self {
        case .none: return "-"
        case .int64(let a, let b): return "\(a)..\(b)"
        case .float64(let a, let b): return "\(a)..\(b)"
        case .stringPrefix(let a, let b, let t):
            return "\(String(decoding: a, as: UTF8.self))..\(String(decoding: b, as: UTF8.self))\(t ? "…" : "")"
        }
    }

    func encode(into w: inout ByteWriter) {
        switch self {
        case .none:
            w.zeros(20)
        case .int64(let a, let b):
            w.u8(1); w.u8(0); w.u8(0); w.u8(0); w.i64(a); w.i64(b)
        case .float64(let a, let b):
            w.u8(2); w.u8(0); w.u8(0); w.u8(0); w.f64(a); w.f64(b)
        case .stringPrefix(let a, let b, let t):
            w.u8(3); w.u8(t ? 2 : 0); w.u8(UInt8(a.count)); w.u8(UInt8(b.count))
            w.raw(a); w.zeros(8 - a.count); w.raw(b); w.zeros(8 - b.count)
        }
    }

    static func decode(_ r: inout ByteReader) throws(StrataError) -> ZoneMap {
        let kind = try r.u8(), flags = try r.u8(), minLength = try r.u8(), maxLength = try r.u8()
        switch kind {
        case 0:
            guard flags == 0, minLength == 0, maxLength == 0 else { throw r.error("reserved zone map bytes are not zero") }
            try r.reservedZeros(16)
            return .none
        case 1, 2:
            guard flags == 0, minLength == 0, maxLength == 0 else { throw r.error("reserved zone map bytes are not zero") }
            if kind == 1 { return .int64(min: try r.i64(), max: try r.i64()) }
            return .float64(min: try r.f64(), max: try r.f64())
        case 3:
            guard minLength <= 8, maxLength <= 8, flags & ~2 == 0 else { throw r.error("bad string zone map") }
            let a = try r.slice(8), b = try r.slice(8)
            guard a[Int(minLength)...].allSatisfy({ $0 == 0 }), b[Int(maxLength)...].allSatisfy({ $0 == 0 }) else {
                throw r.error("string zone map padding is not zero")
            }
            return .stringPrefix(minPrefix: Array(a[0..<Int(minLength)]), maxPrefix: Array(b[0..<Int(maxLength)]), maxTruncated: flags & 2 != 0)
        default:
            throw r.error("unknown zone map kind \(kind)", code: .unsupportedFeature)
        }
    }

    /// Merges two summaries of the same kind (for the column-wide summary).
    func merged(with other: ZoneMap) -> ZoneMap {
        switch (self, other) {
        case (.none, _): return other
        case (_, .none): return self
        case (.int64(let a, let b), .int64(let c, let d)): return .int64(min: Swift.min(a, c), max: Swift.max(b, d))
        case (.float64(let a, let b), .float64(let c, let d)): return .float64(min: Swift.min(a, c), max: Swift.max(b, d))
        case (.stringPrefix(let a, let b, let t), .stringPrefix(let c, let d, let u)):
            let lo = a.lexicographicallyPrecedes(c) ? a : c
            if b == d { return .stringPrefix(minPrefix: lo, maxPrefix: b, maxTruncated: t || u) }
            return d.lexicographicallyPrecedes(b) ? .stringPrefix(minPrefix: lo, maxPrefix: b, maxTruncated: t)
                                                  : .stringPrefix(minPrefix: lo, maxPrefix: d, maxTruncated: u)
        default: return self
        }
    }
}

/// Accumulates a zone map while values are appended.
struct ZoneMapBuilder {
    private var intRange: (Int64, Int64)?
    private var floatRange: (Double, Double)?
    private var minString: [UInt8]?
    private var maxString: [UInt8]?

    mutating func add(_ v: Int64) {
        if let (a, b) = intRange { intRange = (min(a, v), max(b, v)) } else { intRange = (v, v) }
    }
    mutating func add(_ v: Double) {
        guard !v.isNaN else { return }
        if let (a, b) = floatRange { floatRange = (min(a, v), max(b, v)) } else { floatRange = (v, v) }
    }
    mutating func add<C: Collection<UInt8>>(utf8 s: C) {
        // Only prefixes are stored, so compare on the stored prefix plus a "longer" bit.
        if let m = minString { if s.lexicographicallyPrecedes(m) { minString = Array(s.prefix(9)) } } else { minString = Array(s.prefix(9)) }
        if let m = maxString { if m.lexicographicallyPrecedes(s.prefix(9)) { maxString = Array(s.prefix(9)) } } else { maxString = Array(s.prefix(9)) }
    }

    func build() -> ZoneMap {
        if let (a, b) = intRange { return .int64(min: a, max: b) }
        if let (a, b) = floatRange { return .float64(min: a, max: b) }
        if let a = minString, let b = maxString {
            return .stringPrefix(minPrefix: Array(a.prefix(8)), maxPrefix: Array(b.prefix(8)), maxTruncated: b.count > 8)
        }
        return .none
    }
}

/// HyperLogLog distinct-count estimator (2^12 registers, 4 KB) for column statistics.
struct DistinctEstimator {
    private var registers = [UInt8](repeating: 0, count: 1 << 12)

    mutating func add(hash: UInt64) {
        let index = Int(hash >> 52)
        let rest = (hash << 12) | (1 << 11)
        let rank = UInt8(rest.leadingZeroBitCount + 1)
        if rank > registers[index] { registers[index] = rank }
    }

    var estimate: UInt64 {
        let m = Double(registers.count)
        var sum = 0.0, zeros = 0
        for r in registers {
            sum += 1.0 / Double(UInt64(1) << UInt64(r))
            if r == 0 { zeros += 1 }
        }
        let alpha = 0.7213 / (1 + 1.079 / m)
        var e = alpha * m * m / sum
        if e <= 2.5 * m, zeros > 0 { e = m * log(m / Double(zeros)) }
        return UInt64(e.rounded())
    }
}

#if canImport(Glibc)
import Glibc
#endif
