// The fields every point request shares: point ids, dense vectors, and the with_payload /
// with_vector selectors.
//
// Ids: Qdrant accepts unsigned 64-bit integers or UUID strings. Strata ids are UInt64, and the
// JSON reader keeps integers exact only within Int64, so ids are 0...Int64.max; a UUID string gets
// a 400 that says UUIDs are not supported. Vectors: one unnamed dense vector of float32s per point;
// named, multi- and sparse vectors are refused with a 400 naming the field.

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
                throw .wrongInput("\(path): sparse vectors are not supported (collections hold one dense vector)")
            }
            if o["model"] != nil {
                throw .wrongInput("\(path): inference objects (documents, images) are not supported; send a dense vector")
            }
            throw .wrongInput("\(path): named vectors are not supported (collections hold one unnamed dense vector)")
        default:
            throw .format(path, "expected a vector (a list of numbers), got \(v.kindName)")
        }
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
    /// names, of which only the unnamed vector exists (`[]` means none). `nil` gives false.
    package static func withVector(_ v: JSONValue?, _ path: String) throws(QdrantError) -> Bool {
        guard let v else { return false }
        switch v {
        case .null: return false
        case .bool(let b): return b
        case .array(let a):
            guard a.isEmpty else { throw .wrongInput("\(path): named vectors are not supported (use true or false)") }
            return false
        default: throw .format(path, "expected a boolean, got \(v.kindName)")
        }
    }
}
