// Bodies of the internal API (node to node, docs/SERVE.md "Internal API"): the coordinating node
// asks a shard's owner for its part of a request. Filters travel as the client sent them (Qdrant
// JSON), because each shard binds them to its own columns (ShardOperations.swift).
import Strata
import StrataFormat

/// One shard's part of a request, as sent to the node that holds the shard.
package enum InternalRequest: Sendable {
    case search(VectorSearch, k: Int)
    case retrieve(ids: [UInt64], payload: Bool, vector: Bool)
    case scroll(filter: QdrantFilter?, offset: UInt64?, limit: Int, payload: Bool, vector: Bool)
    case count(filter: QdrantFilter?)
    case upsert([UpsertPoint])
    case delete(DeleteRequest)

    /// The path under `/strata/internal/v1/collections/{c}/shards/{s}/`.
    package var operation: String {
        switch self {
        case .search: return "search"
        case .retrieve: return "retrieve"
        case .scroll: return "scroll"
        case .count: return "count"
        case .upsert: return "upsert"
        case .delete: return "delete"
        }
    }

    /// Whether it changes the shard (and so must reach its writer).
    package var isWrite: Bool {
        switch self {
        case .upsert, .delete: return true
        default: return false
        }
    }

    /// The JSON body; `uid` names the collection's incarnation.
    package func encoded(uid: String) -> [UInt8] {
        var w = JSONWriter(capacity: 256)
        w.beginObject()
        w.key("uid"); w.string(uid)
        switch self {
        case .search(let s, let k):
            w.key("k"); w.int(Int64(k))
            if let sparse = s.sparse {
                w.key("sparse"); ShardWire.writeSparse(sparse, into: &w)
                if let using = s.using { w.key("using"); w.string(using) }
            } else {
                w.key("vector"); w.floats(s.vector)
            }
            writeFilter(s.filter, &w)
            if let ef = s.params.hnswEf { w.key("hnsw_ef"); w.int(Int64(ef)) }
            w.key("exact"); w.bool(s.params.exact)
            if let t = s.scoreThreshold { w.key("score_threshold"); w.float(t) }
            w.key("with_payload"); w.bool(s.withPayload != .none)
            w.key("with_vector"); w.bool(s.withVector)
        case .retrieve(let ids, let payload, let vector):
            writeIDs(ids, &w)
            w.key("with_payload"); w.bool(payload)
            w.key("with_vector"); w.bool(vector)
        case .scroll(let filter, let offset, let limit, let payload, let vector):
            writeFilter(filter, &w)
            if let offset { w.key("offset"); w.int(Int64(bitPattern: offset)) }
            w.key("limit"); w.int(Int64(limit))
            w.key("with_payload"); w.bool(payload)
            w.key("with_vector"); w.bool(vector)
        case .count(let filter):
            writeFilter(filter, &w)
        case .upsert(let points):
            w.key("body"); w.raw(ShardWire.upsertBody(points))   // Qdrant's upsert body
        case .delete(let d):
            switch d {
            case .ids(let ids): writeIDs(ids, &w)
            case .filter(let f): writeFilter(f, &w)
            }
        }
        w.endObject()
        return w.bytes
    }

    private func writeFilter(_ f: QdrantFilter?, _ w: inout JSONWriter) {
        guard let f else { return }
        w.key("filter")
        ShardWire.writeJSON(f.source, into: &w)
    }

    private func writeIDs(_ ids: [UInt64], _ w: inout JSONWriter) {
        w.key("ids"); w.beginArray()
        for id in ids { w.int(Int64(bitPattern: id)) }
        w.endArray()
    }

    /// Decodes a body of the internal API for `operation`; returns the uid and the request.
    /// Throws a 400 naming the field for anything malformed.
    package static func decode(_ bytes: [UInt8], operation: String, limits: ServerLimits) throws(QdrantError) -> (uid: String, request: InternalRequest) {
        let root = try RequestBody.parse(bytes, limits: limits)
        guard case .object(let o) = root, case .string(let uid)? = o["uid"] else { throw .format("body", "expected an object with uid") }
        func filter() throws(QdrantError) -> QdrantFilter? {
            guard let f = o["filter"], f != .null else { return nil }
            return try QdrantFilter.parse(f, "body.filter", limits: limits)
        }
        func flag(_ key: String) throws(QdrantError) -> Bool { try RequestBody.bool(o, key, "body") ?? false }
        func ids() throws(QdrantError) -> [UInt64] {
            guard case .array(let a)? = o["ids"], a.count <= limits.maxPointsPerRequest * 4 else { throw .format("body.ids", "expected a list of ids") }
            var out: [UInt64] = []
            out.reserveCapacity(a.count)
            for v in a {
                guard case .int(let i) = v else { throw .format("body.ids", "expected integers") }
                out.append(UInt64(bitPattern: i))
            }
            return out
        }
        switch operation {
        case "search":
            guard let k = try RequestBody.int(o, "k", "body", in: 1...Int64(limits.maxLimit) * 2),
                  o["vector"] != nil || o["sparse"] != nil else { throw .format("body", "expected k and vector (or sparse)") }
            let threshold = try RequestBody.number(o, "score_threshold", "body").map(Float.init)
            var s = VectorSearch(vector: try o["vector"].map { v throws(QdrantError) in try PointFields.vector(v, "body.vector") } ?? [],
                                 filter: try filter(), limit: k, offset: 0,
                                 scoreThreshold: threshold,
                                 params: SearchParams(hnswEf: try RequestBody.int(o, "hnsw_ef", "body", in: 1...65_535), exact: try flag("exact")),
                                 withPayload: try flag("with_payload") ? .all : .none, withVector: try flag("with_vector"))
            if let sparse = o["sparse"] {
                s.sparse = try PointFields.sparseVector(sparse, "body.sparse")
                s.using = try RequestBody.string(o, "using", "body")
            }
            return (uid, .search(s, k: k))
        case "retrieve":
            return (uid, .retrieve(ids: try ids(), payload: try flag("with_payload"), vector: try flag("with_vector")))
        case "scroll":
            let offset: UInt64? = if case .int(let i)? = o["offset"] { UInt64(bitPattern: i) } else { nil }
            guard let limit = try RequestBody.int(o, "limit", "body", in: 1...Int64(limits.maxLimit) + 1) else { throw .format("body", "expected limit") }
            return (uid, .scroll(filter: try filter(), offset: offset, limit: limit, payload: try flag("with_payload"), vector: try flag("with_vector")))
        case "count":
            return (uid, .count(filter: try filter()))
        case "upsert":
            guard let body = o["body"] else { throw .format("body", "expected body (Qdrant's upsert body)") }
            return (uid, .upsert(try UpsertRequest.parse(body, limits: limits).points))
        case "delete":
            if o["ids"] != nil { return (uid, .delete(.ids(try ids()))) }
            guard let f = try filter() else { throw .format("body", "expected ids or filter") }
            return (uid, .delete(.filter(f)))
        default:
            throw QdrantError(status: 404, "no internal operation '\(operation)'")
        }
    }
}
