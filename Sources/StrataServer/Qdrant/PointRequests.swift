// Request bodies of the point endpoints: upsert, delete, retrieve, scroll, count.

import Strata
import StrataFormat

/// One point of an upsert.
package struct UpsertPoint: Sendable, Equatable {
    /// The id.
    package var id: UInt64
    /// The dense vector (the collection's dimension is the caller's check).
    package var vector: [Float]
    /// The payload object; nil when absent or null.
    package var payload: [String: JSONValue]?
    /// The dense vector's name when the request named it (`""`: the unnamed one); nil for a list.
    package var vectorName: String? = nil
    /// The sparse vector, when given (the collection's sparse vector name is the caller's check).
    package var sparse: SparseVector? = nil
    /// Its name.
    package var sparseName: String? = nil

    init(id: UInt64, vectors: PointVectors, payload: [String: JSONValue]?) {
        self.init(id: id, vector: vectors.dense, payload: payload, vectorName: vectors.denseName,
                  sparse: vectors.sparse, sparseName: vectors.sparseName)
    }

    package init(id: UInt64, vector: [Float], payload: [String: JSONValue]?, vectorName: String? = nil,
                 sparse: SparseVector? = nil, sparseName: String? = nil) {
        self.id = id
        self.vector = vector
        self.payload = payload
        self.vectorName = vectorName
        self.sparse = sparse
        self.sparseName = sparseName
    }
}

/// PUT /collections/{c}/points: `{"points": [{"id", "vector", "payload"}]}` or
/// `{"batch": {"ids": [...], "vectors": [[...]], "payloads": [...]}}`.
package struct UpsertRequest: Sendable, Equatable {
    /// The points in request order (a repeated id: the last one wins, as in Qdrant).
    package var points: [UpsertPoint]
    /// Whether the request used the batch form (for the paths in messages).
    package var batchForm = false

    /// The request with one point per id: the last occurrence wins, as in Qdrant (a later upsert
    /// of an id replaces the earlier one whole), in the order of those last occurrences. Call it
    /// before ``mapPayloads(columns:limits:)``, so that a replaced payload adds no columns. O(points).
    package func deduplicated() -> UpsertRequest {
        var last: [UInt64: Int] = [:]
        for (i, p) in points.enumerated() { last[p.id] = i }
        guard last.count < points.count else { return self }
        return UpsertRequest(points: points.enumerated().filter { last[$0.element.id] == $0.offset }.map(\.element), batchForm: batchForm)
    }

    /// The payloads mapped onto `columns` (see ``PayloadMapper``), with messages naming each
    /// point's payload as the request did (after ``deduplicated()``, indices of the survivors).
    package func mapPayloads(columns: [ColumnSpec], limits: ServerLimits) throws(QdrantError) -> MappedPayloads {
        try PayloadMapper.map(points.map(\.payload), columns: columns, maxColumns: limits.maxPayloadKeys) { i in
            batchForm ? "body.batch.payloads[\(i)]" : "body.points[\(i)].payload"
        }
    }

    /// Parses either form; at most `limits.maxPointsPerRequest` points. `shard_key`,
    /// `update_filter` and `update_mode` other than `upsert` are refused.
    package static func parse(_ body: JSONValue, limits: ServerLimits) throws(QdrantError) -> UpsertRequest {
        let o = try RequestBody.object(body, "body", allowed: ["points", "batch", "shard_key", "update_filter", "update_mode"])
        try RequestBody.refuse(o, "shard_key", "body", "shards are chosen by id hash")
        try RequestBody.refuse(o, "update_filter", "body", "conditional updates are not implemented")
        if let mode = try RequestBody.string(o, "update_mode", "body"), mode != "upsert" {
            throw .wrongInput("body.update_mode '\(mode)' is not supported (upsert only)")
        }
        let max = limits.maxPointsPerRequest
        switch (RequestBody.value(o, "points"), RequestBody.value(o, "batch")) {
        case (let list?, nil):
            guard case .array(let a) = list else { throw .format("body.points", "expected a list of points, got \(list.kindName)") }
            guard a.count <= max else { throw .format("body.points", "\(a.count) points exceed the limit of \(max) per request") }
            var points: [UpsertPoint] = []
            points.reserveCapacity(a.count)
            for (i, x) in a.enumerated() {
                let p = "body.points[\(i)]"
                let po = try RequestBody.object(x, p, allowed: ["id", "vector", "payload"])
                guard let id = RequestBody.value(po, "id") else { throw .format(p, "missing field 'id'") }
                guard let v = RequestBody.value(po, "vector") else { throw .format(p, "missing field 'vector'") }
                points.append(UpsertPoint(id: try PointFields.id(id, "\(p).id"), vectors: try PointFields.pointVectors(v, "\(p).vector"),
                                          payload: try payload(RequestBody.value(po, "payload"), "\(p).payload")))
            }
            return UpsertRequest(points: points)
        case (nil, let batch?):
            let p = "body.batch"
            let bo = try RequestBody.object(batch, p, allowed: ["ids", "vectors", "payloads"])
            guard let idsValue = RequestBody.value(bo, "ids") else { throw .format(p, "missing field 'ids'") }
            let ids = try PointFields.ids(idsValue, "\(p).ids", limit: max)
            guard let vectorsValue = RequestBody.value(bo, "vectors") else { throw .format(p, "missing field 'vectors'") }
            // The named form, {"name": [vector per id], ...}, is read as one named-vector object per id.
            let vs: [JSONValue]
            switch vectorsValue {
            case .array(let a): vs = a
            case .object(let named):
                var perID = Array(repeating: [String: JSONValue](), count: ids.count)
                for (name, column) in named {
                    guard case .array(let a) = column else { throw .format("\(p).vectors.\(name)", "expected a list of vectors, got \(column.kindName)") }
                    guard a.count == ids.count else { throw .format("\(p).vectors.\(name)", "\(a.count) vectors for \(ids.count) ids") }
                    for (i, x) in a.enumerated() where x != .null { perID[i][name] = x }
                }
                vs = perID.map { .object($0) }
            default: throw .format("\(p).vectors", "expected a list of vectors, got \(vectorsValue.kindName)")
            }
            guard vs.count == ids.count else { throw .format("\(p).vectors", "\(vs.count) vectors for \(ids.count) ids") }
            var payloads: [[String: JSONValue]?] = Array(repeating: nil, count: ids.count)
            if let ps = try RequestBody.array(bo, "payloads", p) {
                guard ps.count == ids.count else { throw .format("\(p).payloads", "\(ps.count) payloads for \(ids.count) ids") }
                for (i, x) in ps.enumerated() { payloads[i] = try payload(x, "\(p).payloads[\(i)]") }
            }
            var points: [UpsertPoint] = []
            points.reserveCapacity(ids.count)
            for i in 0..<ids.count {
                points.append(UpsertPoint(id: ids[i], vectors: try PointFields.pointVectors(vs[i], "\(p).vectors[\(i)]"), payload: payloads[i]))
            }
            return UpsertRequest(points: points, batchForm: true)
        case (nil, nil): throw .format("body", "expected 'points' (a list of points) or 'batch'")
        case (.some, .some): throw .format("body", "give either 'points' or 'batch', not both")
        }
    }

    private static func payload(_ v: JSONValue?, _ path: String) throws(QdrantError) -> [String: JSONValue]? {
        guard let v else { return nil }
        switch v {
        case .null: return nil
        case .object(let o): return o
        default: throw .format(path, "expected a payload object, got \(v.kindName)")
        }
    }
}

/// POST /collections/{c}/points/delete: by ids or by filter.
package enum DeleteRequest: Sendable, Equatable {
    /// Delete these ids.
    case ids([UInt64])
    /// Delete every point the filter admits.
    case filter(QdrantFilter)

    /// Parses `{"points": [ids]}` or `{"filter": {...}}`.
    package static func parse(_ body: JSONValue, limits: ServerLimits) throws(QdrantError) -> DeleteRequest {
        let o = try RequestBody.object(body, "body", allowed: ["points", "filter", "shard_key"])
        try RequestBody.refuse(o, "shard_key", "body", "shards are chosen by id hash")
        switch (RequestBody.value(o, "points"), RequestBody.value(o, "filter")) {
        case (let ids?, nil): return .ids(try PointFields.ids(ids, "body.points", limit: limits.maxPointsPerRequest))
        case (nil, let f?): return .filter(try QdrantFilter.parse(f, "body.filter", limits: limits))
        case (nil, nil): throw .format("body", "expected 'points' (a list of ids) or 'filter'")
        case (.some, .some): throw .format("body", "give either 'points' or 'filter', not both")
        }
    }
}

/// POST /collections/{c}/points: retrieve by ids.
package struct RetrieveRequest: Sendable, Equatable {
    /// The ids, in request order.
    package var ids: [UInt64]
    /// The payload to return (default: all).
    package var withPayload: PayloadSelection
    /// Whether to return vectors (default: no).
    package var withVector: Bool

    /// Parses `{"ids": [...], "with_payload": ..., "with_vector": ...}`.
    package static func parse(_ body: JSONValue, limits: ServerLimits) throws(QdrantError) -> RetrieveRequest {
        let o = try RequestBody.object(body, "body", allowed: ["ids", "with_payload", "with_vector", "with_vectors", "shard_key"])
        try RequestBody.refuse(o, "shard_key", "body", "shards are chosen by id hash")
        guard let ids = RequestBody.value(o, "ids") else { throw .format("body", "missing field 'ids'") }
        return RetrieveRequest(ids: try PointFields.ids(ids, "body.ids", limit: limits.maxPointsPerRequest),
                               withPayload: try PointFields.withPayload(o["with_payload"], "body.with_payload", default: .all),
                               withVector: try PointFields.withVector(o["with_vector"] ?? o["with_vectors"], "body.with_vector"))
    }
}

/// POST /collections/{c}/points/scroll: points in id order from `offset`.
package struct ScrollRequest: Sendable, Equatable {
    /// The filter (nil: every point).
    package var filter: QdrantFilter?
    /// The page size (default 10).
    package var limit: Int
    /// The first id of the page (inclusive), nil for the start.
    package var offset: UInt64?
    /// The payload to return (default: all).
    package var withPayload: PayloadSelection
    /// Whether to return vectors (default: no).
    package var withVector: Bool

    /// Parses the body (`order_by` is refused: pages are in id order).
    package static func parse(_ body: JSONValue, limits: ServerLimits) throws(QdrantError) -> ScrollRequest {
        let o = try RequestBody.object(body, "body", allowed: ["filter", "limit", "offset", "with_payload", "with_vector", "with_vectors", "order_by", "shard_key"])
        try RequestBody.refuse(o, "shard_key", "body", "shards are chosen by id hash")
        try RequestBody.refuse(o, "order_by", "body", "scroll returns points in id order")
        return ScrollRequest(filter: try RequestBody.value(o, "filter").map { f throws(QdrantError) in try QdrantFilter.parse(f, "body.filter", limits: limits) },
                             limit: try RequestBody.int(o, "limit", "body", in: 1...Int64(limits.maxLimit)) ?? 10,
                             offset: try RequestBody.value(o, "offset").map { v throws(QdrantError) in try PointFields.id(v, "body.offset") },
                             withPayload: try PointFields.withPayload(o["with_payload"], "body.with_payload", default: .all),
                             withVector: try PointFields.withVector(o["with_vector"] ?? o["with_vectors"], "body.with_vector"))
    }
}

/// POST /collections/{c}/points/count.
package struct CountRequest: Sendable, Equatable {
    /// The filter (nil: every point).
    package var filter: QdrantFilter?
    /// `exact` (default true); Strata counts exactly either way.
    package var exact: Bool

    /// Parses the body (empty is fine).
    package static func parse(_ body: JSONValue, limits: ServerLimits) throws(QdrantError) -> CountRequest {
        let o = try RequestBody.object(body, "body", allowed: ["filter", "exact", "shard_key"])
        try RequestBody.refuse(o, "shard_key", "body", "shards are chosen by id hash")
        return CountRequest(filter: try RequestBody.value(o, "filter").map { f throws(QdrantError) in try QdrantFilter.parse(f, "body.filter", limits: limits) },
                            exact: try RequestBody.bool(o, "exact", "body") ?? true)
    }
}
