/// How distance between two vectors is measured. Stored in the segment header.
///
/// Internally every metric is turned into a *distance* where smaller is closer:
/// - ``l2``: squared Euclidean distance;
/// - ``innerProduct``: the negated inner product;
/// - ``cosine``: vectors are L2-normalised when written (as Qdrant does) and queries when searched,
///   so the distance is `1 - cosine similarity` computed as `1 - dot`.
public enum DistanceMetric: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Squared Euclidean distance.
    case l2 = 1
    /// Negated inner product.
    case innerProduct = 2
    /// One minus cosine similarity (vectors stored normalised).
    case cosine = 3

    /// The CLI / JSON spelling: `l2`, `ip`, `cosine`.
    public var description: String {
        switch self {
        case .l2: return "l2"
        case .innerProduct: return "ip"
        case .cosine: return "cosine"
        }
    }

    /// Parses `l2`, `ip` (or `dot`, `inner_product`), `cosine`.
    public init?(name: String) {
        switch name.lowercased() {
        case "l2", "euclid", "euclidean": self = .l2
        case "ip", "dot", "inner_product", "innerproduct": self = .innerProduct
        case "cosine", "cos": self = .cosine
        default: return nil
        }
    }
}

/// Element type of the stored raw vectors.
public enum VectorElementType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// IEEE 754 binary32.
    case float32 = 1
    /// IEEE 754 binary16 (queries stay float32; vectors are converted on the fly).
    case float16 = 2

    /// Bytes per element.
    public var byteWidth: Int { self == .float32 ? 4 : 2 }

    /// `float32` or `float16`.
    public var description: String { self == .float32 ? "float32" : "float16" }
}
