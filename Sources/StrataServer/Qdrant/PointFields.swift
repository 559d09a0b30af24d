// The fields every point request shares: point ids, dense vectors, and the with_payload /
// with_vector selectors.
//
// Ids: Qdrant accepts unsigned 64-bit integers or UUID strings. Strata ids are UInt64, and the
// JSON reader keeps integers exact only within Int64, so ids are 0...Int64.max; a UUID string gets
// a 400 that says UUIDs are not supported. Vectors: one dense vector of float32s per point, unnamed
// or named, and at most one named sparse vector ({"indices": [...], "values": [...]}); multi-vectors
// are refused with a 400 naming the field. Which names a collection has is checked by the server.

import Strata
import StrataFormat

/// What payload to return with points (Qdrant's `with_payload`).
package enum PayloadSelection: Sendable, Equatable {
    /// No payload (the `payload` field is omitted).
    case none
    /// Every key.
    case all
    /// Only these keys.
    case include(Set<String>)
    /// Every key but these.
    case exclude(Set<String>)

    /// Whether the key `name` is returned.
    package func includes(_ name: String) -> Bool {
        switch self {
        case .none: return false
        case .all: return true
        case .include(let keys): return keys.contains(name)
        case .exclude(let keys): return !keys.contains(name)
        }
    }
}

/// A point's vectors as a request gave them.
package struct PointVectors: Sendable, Equatable {
    /// The dense vector.
    package var dense: [Float]
    /// Its name in the named form (`""`: the unnamed vector), nil in the list form.
    package var denseName: String?
    /// The sparse vector, when given.
    package var sparse: SparseVector? = nil
    /// Its name.
    package var sparseName: String? = nil
}

/// Point fields shared by the requests.
package enum PointFields {
    /// A point id: a JSON integer in 0...Int64.max. A UUID string is refused with a clear 400.
    package static func id(_ v: JSONValue, _ path: String) throws(QdrantError) -> UInt64 {
        switch v {
        case .int(let i):
            guard i >= 0 else { throw .format(path, "point id \(i) is negative (ids are unsigned integers)") }
            return UInt64(i)
        case .string(let s):
            throw .wrongInput("\(path): point id \"\(s)\" is a string; UUID point ids are not supported by this server, use unsigned integers")
        case .double(let d) where d >= 0x1p63 && d.rounded() == d:
            throw .wrongInput("\(path): point ids above \(Int64.max) are not supported")
        default:
            throw .format(path, "expected an unsigned integer point id, got \(v.kindName)")
        }
    }

    /// A list of point ids, at most `limit` of them.
    package static func ids(_ v: JSONValue, _ path: String, limit: Int) throws(QdrantError) -> [UInt64] {
        guard case .array(let a) = v else { throw .format(path, "expected a list of point ids, got \(v.kindName)") }
        guard a.count <= limit else { throw .format(path, "\(a.count) ids exceed the limit of \(limit) per request") }
        var out: [UInt64] = []
        out.reserveCapacity(a.count)
        for (i, x) in a.enumerated() { out.append(try id(x, "\(path)[\(i)]")) }
        return out
    }

    /// A dense vector: a non-empty array of numbers, each finite as a float32, of at most
    /// `SegmentSchema.maximumDimension` elements, with a squared norm within
    /// `VectorLimits.maximumSquaredNorm`. The collection's dimension is the caller's check.
    package static func vector(_ v: JSONValue, _ path: String) throws(QdrantError) -> [Float] {
        switch v {
        case .array(let a):
            guard !a.isEmpty else { throw .format(path, "a vector needs at least one element") }
            guard a.count <= SegmentSchema.maximumDimension else {
                throw .format(path, "\(a.count) elements exceed the largest dimension \(SegmentSchema.maximumDimension)")
            }
            var out: [Float] = []
            out.reserveCapacity(a.count)
            for (i, x) in a.enumerated() {
                let f: Float
                switch x {
                case .int(let n): f = Float(n)
                case .double(let d): f = Float(d)
                case .array: throw .wrongInput("\(path): multi-vectors (a list of vectors per point) are not supported")
                default: throw .format("\(path)[\(i)]", "expected a number, got \(x.kindName)")
                }
                guard f.isFinite else {
                    let text: String = if case .double(let d) = x { String(d) } else { String(f) }
                    throw .format("\(path)[\(i)]", "\(text) is out of the range of a 32-bit float")
                }
                out.append(f)
            }
            do { try VectorLimits.check(squaredNorm: VectorLimits.squaredNorm(out), what: path) } catch {
                throw .format(path, error.message)
            }
            return out
        case .object(let o):
            if o["indices"] != nil || o["values"] != nil {
                throw .wrongInput("\(path): a sparse vector where a dense vector is expected (name the sparse vector with 'using')")
            }
            if o["model"] != nil {
                throw .wrongInput("\(path): inference objects (documents, images) are not supported; send a dense vector")
            }
            throw .wrongInput("\(path): expected a dense vector (a list of numbers), got an object")
        default:
            throw .format(path, "expected a vector (a list of numbers), got \(v.kindName)")
        }
    }

    /// A sparse vector: `{"indices": [u32...], "values": [f32...]}`, equal counts, at most
    /// `SparseVector.maximumNonZeros` entries, indices within `SparseVector.maximumIndex`, finite
    /// weights (the engine's checks, as a 400 naming the field).
    package static func sparseVector(_ v: JSONValue, _ path: String) throws(QdrantError) -> SparseVector {
        let o = try RequestBody.object(v, path, allowed: ["indices", "values"])
        guard let iv = try RequestBody.array(o, "indices", path) else { throw .format(path, "missing field 'indices'") }
        guard let vv = try RequestBody.array(o, "values", path) else { throw .format(path, "missing field 'values'") }
        guard iv.count == vv.count else { throw .format(path, "\(iv.count) indices but \(vv.count) values") }
        guard iv.count <= SparseVector.maximumNonZeros else {
            throw .format("\(path).indices", "\(iv.count) entries exceed the limit of \(SparseVector.maximumNonZeros)")
        }
        var indices: [UInt32] = []
        var values: [Float] = []
        indices.reserveCapacity(iv.count)
        values.reserveCapacity(vv.count)
        for (i, x) in iv.enumerated() {
            guard case .int(let n) = x else { throw .format("\(path).indices[\(i)]", "expected an integer index, got \(x.kindName)") }
            guard n >= 0, n <= Int64(SparseVector.maximumIndex) else {
                throw .format("\(path).indices[\(i)]", "index \(n) is outside 0...\(SparseVector.maximumIndex)")
            }
            indices.append(UInt32(n))
        }
        for (i, x) in vv.enumerated() {
            let f: Float
            switch x {
            case .int(let n): f = Float(n)
            case .double(let d): f = Float(d)
            default: throw .format("\(path).values[\(i)]", "expected a number, got \(x.kindName)")
            }
            guard f.isFinite else { throw .format("\(path).values[\(i)]", "out of the range of a 32-bit float") }
            values.append(f)
        }
        let sparse = SparseVector(indices: indices, values: values)
        do throws(StrataError) { try sparse.validate() } catch { throw .format(path, error.message) }
        return sparse
    }

    /// A point's `vector`: a list (the unnamed dense vector) or an object of named vectors (`""`
    /// names the unnamed one), of which one is dense and at most one sparse.
    package static func pointVectors(_ v: JSONValue, _ path: String) throws(QdrantError) -> PointVectors {
        guard case .object(let o) = v else { return PointVectors(dense: try vector(v, path), denseName: nil) }
        if o["indices"] != nil || o["values"] != nil {
            throw .wrongInput("\(path): a sparse vector needs its name ({\"name\": {\"indices\": [...], \"values\": [...]}}) beside the dense vector")
        }
        var out = PointVectors(dense: [], denseName: nil)
        var sawDense = false
        for name in o.keys.sorted() {
            let x = o[name]!
            let p = "\(path).\(name.isEmpty ? "\"\"" : name)"
            if case .object(let xo) = x, xo["indices"] != nil || xo["values"] != nil {
                guard out.sparse == nil else { throw .wrongInput("\(path): at most one sparse vector per point (got '\(out.sparseName ?? "")' and '\(name)')") }
                out.sparse = try sparseVector(x, p)
                out.sparseName = name
            } else {
                guard !sawDense else { throw .wrongInput("\(path): at most one dense vector per point (got '\(out.denseName ?? "")' and '\(name)')") }
                out.dense = try vector(x, p)
                out.denseName = name
                sawDense = true
            }
        }
        guard sawDense else { throw .wrongInput("\(path): every point needs its dense vector (Strata stores one per point)") }
        return out
    }

    /// `with_payload`: a boolean, a list of keys, `{"include": [...]}` or `{"exclude": [...]}`.
    /// `nil` (absent) gives `defaultValue`, which differs per endpoint in Qdrant (true for
    /// retrieve and scroll, false for search and query).
    package static func withPayload(_ v: JSONValue?, _ path: String, default defaultValue: PayloadSelection) throws(QdrantError) -> PayloadSelection {
        guard let v else { return defaultValue }
        switch v {
        case .null: return defaultValue
        case .bool(let b): return b ? .all : .none
        case .array: return .include(try keys(v, path))
        case .object(let o):
            guard o.count == 1 else { throw .format(path, "expected {\"include\": [...]} or {\"exclude\": [...]}") }
            if let inc = o["include"] { return .include(try keys(inc, "\(path).include")) }
            if let exc = o["exclude"] { return .exclude(try keys(exc, "\(path).exclude")) }
            throw .format(path, "unknown field '\(o.keys.first ?? "")' (include, exclude)")
        default:
            throw .format(path, "expected a boolean, a list of keys or {include|exclude: [...]}, got \(v.kindName)")
        }
    }

    private static func keys(_ v: JSONValue, _ path: String) throws(QdrantError) -> Set<String> {
        guard case .array(let a) = v else { throw .format(path, "expected a list of payload keys, got \(v.kindName)") }
        var out = Set<String>()
        for (i, x) in a.enumerated() {
            guard case .string(let s) = x else { throw .format("\(path)[\(i)]", "expected a payload key (a string), got \(x.kindName)") }
            out.insert(s)
        }
        return out
    }

    /// `with_vector` (also spelled `with_vectors` by older clients): a boolean, or a list of vector
    /// names (`[]` means none; any name asks for the dense vector, the only one returned). `nil`
    /// gives false.
    package static func withVector(_ v: JSONValue?, _ path: String) throws(QdrantError) -> Bool {
        guard let v else { return false }
        switch v {
        case .null: return false
        case .bool(let b): return b
        case .array(let a):
            for (i, x) in a.enumerated() {
                guard case .string = x else { throw .format("\(path)[\(i)]", "expected a vector name, got \(x.kindName)") }
            }
            return !a.isEmpty
        default: throw .format(path, "expected a boolean, got \(v.kindName)")
        }
    }
}
