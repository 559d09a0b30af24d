// The internal API's JSON between nodes (docs/SERVE.md, "Internal API"): a shard's answer as
//   {"generation": g, "count": n, "segments": s, "cache": true (read not by the live writer)?,
//    "points": [{"id": u64, "score": f32?, "distance": f32?, "payload": [value per column]?, "vector": [f32]?}]}
// Payload values are positional (the shard's column order, a prefix of the collection's): null,
// a JSON integer (int64), a number (float64), true/false, a string, or an array of strings. Floats
// print as their shortest round-trip decimal, so distances arrive bit for bit and the coordinator's
// merge (by distance, then id) is exact. Also the writer of points forwarded to a shard's owner (Qdrant's upsert body).
import Strata
import StrataFormat

/// Encoding and decoding of the internal API's bodies.
package enum ShardWire {
    /// A shard's answer as JSON.
    package static func encode(_ r: ShardResult) -> [UInt8] {
        var w = JSONWriter(capacity: 64 + r.points.count * 64)
        w.beginObject()
        w.key("generation"); w.uint(r.generation)
        w.key("count"); w.int(Int64(r.count))
        w.key("segments"); w.int(Int64(r.segments))
        if r.fromCache { w.key("cache"); w.bool(true) }
        w.key("points"); w.beginArray()
        for (i, p) in r.points.enumerated() {
            w.beginObject()
            // The reader keeps JSON integers within Int64: ids travel as their bit pattern.
            w.key("id"); w.int(Int64(bitPattern: p.id))
            if let s = p.score { w.key("score"); w.float(s) }
            if i < r.distances.count { w.key("distance"); w.float(r.distances[i]) }
            if let values = p.payload {
                w.key("payload"); w.beginArray()
                for v in values { write(v, into: &w) }
                w.endArray()
            }
            if let v = p.vector { w.key("vector"); w.floats(v) }
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return w.bytes
    }

    private static func write(_ v: PayloadValue, into w: inout JSONWriter) {
        switch v {
        case .null: w.null()
        case .int64(let i): w.int(i)
        case .float64(let d): w.double(d)
        case .bool(let b): w.bool(b)
        case .string(let s): w.string(s)
        case .stringList(let l):
            w.beginArray()
            for s in l { w.string(s) }
            w.endArray()
        }
    }

    /// Decodes a shard's answer; payload values are typed by `columns` (the collection's).
    /// Throws `.corrupt` naming `peer` for anything else.
    package static func decode(_ bytes: [UInt8], columns: [ColumnSpec], peer: String) throws(StrataError) -> ShardResult {
        func bad(_ what: String) -> StrataError { StrataError(.corrupt, "node \(peer) answered a malformed shard result: \(what)", path: peer) }
        let root = try JSONValue.parse(bytes: bytes, what: "shard result", maximumDepth: 8)
        guard case .object(let o) = root, case .int(let g)? = o["generation"], g >= 0,
              case .array(let list)? = o["points"] else { throw bad("expected generation and points") }
        var result = ShardResult(generation: UInt64(g))
        if case .int(let n)? = o["count"] { result.count = Int(n) }
        if case .int(let n)? = o["segments"] { result.segments = Int(n) }
        if case .bool(let b)? = o["cache"] { result.fromCache = b }
        result.points.reserveCapacity(list.count)
        for item in list {
            guard case .object(let p) = item, case .int(let idValue)? = p["id"] else { throw bad("a point without an id") }
            var point = PointOut(id: UInt64(bitPattern: idValue))
            switch p["score"] {
            case .double(let d)?: point.score = Float(d)
            case .int(let i)?: point.score = Float(i)
            case nil: break
            default: throw bad("a score that is not a number")
            }
            switch p["distance"] {
            case .double(let d)?: result.distances.append(Float(d))
            case .int(let i)?: result.distances.append(Float(i))
            case nil: break
            default: throw bad("a distance that is not a number")
            }
            if case .array(let values)? = p["payload"] {
                guard values.count <= columns.count else { throw bad("more payload values than columns") }
                var out: [PayloadValue] = []
                out.reserveCapacity(values.count)
                for (v, c) in zip(values, columns) { out.append(try value(v, c.type, bad)) }
                point.payload = out
            }
            if case .array(let values)? = p["vector"] {
                var v: [Float] = []
                v.reserveCapacity(values.count)
                for x in values {
                    switch x {
                    case .double(let d): v.append(Float(d))
                    case .int(let i): v.append(Float(i))
                    default: throw bad("a vector element that is not a number")
                    }
                }
                point.vector = v
            }
            result.points.append(point)
        }
        return result
    }

    private static func value(_ v: JSONValue, _ type: ColumnType, _ bad: (String) -> StrataError) throws(StrataError) -> PayloadValue {
        switch (v, type) {
        case (.null, _): return .null
        case (.int(let i), .int64): return .int64(i)
        case (.int(let i), .float64): return .float64(Double(i))
        case (.double(let d), .float64): return .float64(d)
        case (.bool(let b), .bool): return .bool(b)
        case (.string(let s), .string): return .string(s)
        case (.array(let a), .stringList):
            var l: [String] = []
            for x in a {
                guard case .string(let s) = x else { throw bad("a list item that is not a string") }
                l.append(s)
            }
            return .stringList(l)
        default: throw bad("a payload value that does not fit its column type \(type)")
        }
    }

    /// Qdrant's upsert body for `points` (what a node forwards to a shard's owner).
    package static func upsertBody(_ points: [UpsertPoint]) -> [UInt8] {
        var w = JSONWriter(capacity: 64 + points.count * 128)
        w.beginObject()
        w.key("points"); w.beginArray()
        for p in points {
            w.beginObject()
            w.key("id"); w.uint(p.id)
            w.key("vector")
            if p.vectorName != nil || p.sparse != nil {
                w.beginObject()
                w.key(p.vectorName ?? ""); w.floats(p.vector)
                if let sparse = p.sparse { w.key(p.sparseName ?? ""); writeSparse(sparse, into: &w) }
                w.endObject()
            } else {
                w.floats(p.vector)
            }
            if let payload = p.payload {
                w.key("payload"); writeJSON(.object(payload), into: &w)
            }
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return w.bytes
    }

    /// `{"indices": [...], "values": [...]}`.
    package static func writeSparse(_ v: SparseVector, into w: inout JSONWriter) {
        w.beginObject()
        w.key("indices"); w.beginArray()
        for i in v.indices { w.uint(UInt64(i)) }
        w.endArray()
        w.key("values"); w.floats(v.values)
        w.endObject()
    }

    /// Writes a parsed JSON value back out.
    package static func writeJSON(_ v: JSONValue, into w: inout JSONWriter) {
        switch v {
        case .null: w.null()
        case .bool(let b): w.bool(b)
        case .int(let i): w.int(i)
        case .double(let d): w.double(d)
        case .string(let s): w.string(s)
        case .array(let a):
            w.beginArray()
            for x in a { writeJSON(x, into: &w) }
            w.endArray()
        case .object(let o):
            w.beginObject()
            for k in o.keys.sorted() {
                w.key(k)
                writeJSON(o[k]!, into: &w)
            }
            w.endObject()
        }
    }
}
