// Response bodies, shaped as qdrant-client 1.20's pydantic models require (checked by
// Tests/StrataTests/Server/qdrant_shapes.py): `{"result": ..., "status": "ok", "time": t}` around
// every result but the root's VersionInfo, and `{"status": {"error": "..."}, "time": t}` for errors.

import Strata
import StrataFormat

/// A point to return: Record (retrieve, scroll) or ScoredPoint (search, query) when `score` is set.
package struct PointOut: Sendable, Equatable {
    /// The id.
    package var id: UInt64
    /// The Qdrant score (ScoredPoint), nil for a Record.
    package var score: Float?
    /// The row's payload values in column order; nil writes `{}` when payload was asked for.
    package var payload: [PayloadValue]?
    /// The vector, when asked for.
    package var vector: [Float]?
    /// The dense vector's name in a collection that named it: the vector is written as
    /// `{name: [...]}` (sparse vectors are not returned).
    package var vectorName: String? = nil

    /// Creates a point.
    package init(id: UInt64, score: Float? = nil, payload: [PayloadValue]? = nil, vector: [Float]? = nil) {
        self.id = id; self.score = score; self.payload = payload; self.vector = vector
    }
}

/// What GET /collections/{c} reports.
package struct CollectionSummary: Sendable, Equatable {
    /// Vector dimension.
    package var dimension: Int
    /// Distance.
    package var distance: QdrantDistance
    /// Shards.
    package var shardNumber: Int
    /// Live points.
    package var pointsCount: Int
    /// Segments over all shards.
    package var segmentsCount: Int
    /// Points in indexed (sealed) segments, when known.
    package var indexedVectorsCount: Int?
    /// The dense vector's name, nil when unnamed.
    package var vectorName: String? = nil
    /// The sparse vector's name, nil when none.
    package var sparseName: String? = nil
    /// Payload indexes: field, type, points holding a value.
    package var payloadIndexes: [(field: String, type: PayloadIndexType, points: Int)]
    /// The graph's out-degree (reported as hnsw_config.m).
    package var graphDegree: Int
    /// The build list size (reported as hnsw_config.ef_construct).
    package var buildListSize: Int

    /// Creates a summary.
    package init(dimension: Int, distance: QdrantDistance, shardNumber: Int, pointsCount: Int, segmentsCount: Int,
                 indexedVectorsCount: Int? = nil, payloadIndexes: [(field: String, type: PayloadIndexType, points: Int)] = [],
                 graphDegree: Int = 64, buildListSize: Int = 100) {
        self.dimension = dimension; self.distance = distance; self.shardNumber = shardNumber
        self.pointsCount = pointsCount; self.segmentsCount = segmentsCount; self.indexedVectorsCount = indexedVectorsCount
        self.payloadIndexes = payloadIndexes; self.graphDegree = graphDegree; self.buildListSize = buildListSize
    }

    package static func == (a: CollectionSummary, b: CollectionSummary) -> Bool {
        a.dimension == b.dimension && a.distance == b.distance && a.shardNumber == b.shardNumber && a.pointsCount == b.pointsCount
            && a.segmentsCount == b.segmentsCount && a.indexedVectorsCount == b.indexedVectorsCount
            && a.payloadIndexes.map(\.field) == b.payloadIndexes.map(\.field) && a.payloadIndexes.map(\.type) == b.payloadIndexes.map(\.type)
            && a.payloadIndexes.map(\.points) == b.payloadIndexes.map(\.points) && a.graphDegree == b.graphDegree && a.buildListSize == b.buildListSize
            && a.vectorName == b.vectorName && a.sparseName == b.sparseName
    }
}

/// Encoders of response bodies.
package enum QdrantResponse {
    /// The version GET / reports. qdrant-client warns unless the server's major version equals its
    /// own and the minor versions differ by at most 1 (common/version_check.py); the REST shapes
    /// here are qdrant-client 1.20's, so the server says 1.20.0.
    package static let apiVersion = "1.20.0"

    /// GET /: VersionInfo, not wrapped in `result`.
    package static func versionInfo(commit: String? = nil) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.key("title"); w.string("strata - vector search engine (Qdrant REST API)")
        w.key("version"); w.string(apiVersion)
        if let commit { w.key("commit"); w.string(commit) }
        w.endObject()
        return w.bytes
    }

    /// `{"result": <written by body>, "status": "ok", "time": seconds}`.
    package static func ok(time: Double, _ body: (inout JSONWriter) -> Void) -> [UInt8] {
        var w = JSONWriter(capacity: 1024)
        w.beginObject()
        w.key("result"); body(&w)
        w.key("status"); w.string("ok")
        w.key("time"); w.double(time)
        w.endObject()
        return w.bytes
    }

    /// `{"status": {"error": message}, "time": seconds}`.
    package static func error(_ e: QdrantError, time: Double) -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.key("status"); w.beginObject(); w.key("error"); w.string(e.message); w.endObject()
        w.key("time"); w.double(time)
        w.endObject()
        return w.bytes
    }

    /// `result: true` (create / delete collection).
    package static func boolean(_ value: Bool, time: Double) -> [UInt8] { ok(time: time) { $0.bool(value) } }

    /// GET /collections/{c}/exists.
    package static func exists(_ value: Bool, time: Double) -> [UInt8] {
        ok(time: time) { w in w.beginObject(); w.key("exists"); w.bool(value); w.endObject() }
    }

    /// GET /collections.
    package static func collections(_ names: [String], time: Double) -> [UInt8] {
        ok(time: time) { w in
            w.beginObject(); w.key("collections"); w.beginArray()
            for n in names { w.beginObject(); w.key("name"); w.string(n); w.endObject() }
            w.endArray(); w.endObject()
        }
    }

    /// Upsert, delete, create index: UpdateResult; `completed` for wait=true, else `acknowledged`.
    package static func updateResult(operationId: UInt64?, completed: Bool, time: Double) -> [UInt8] {
        ok(time: time) { w in
            w.beginObject()
            if let operationId { w.key("operation_id"); w.uint(operationId) }
            w.key("status"); w.string(completed ? "completed" : "acknowledged")
            w.endObject()
        }
    }

    /// POST points/count.
    package static func count(_ n: Int, time: Double) -> [UInt8] {
        ok(time: time) { w in w.beginObject(); w.key("count"); w.int(Int64(n)); w.endObject() }
    }

    /// POST points (retrieve): a list of Records.
    package static func records(_ points: [PointOut], columns: [ColumnSpec], withPayload: PayloadSelection, time: Double) -> [UInt8] {
        ok(time: time) { w in writePoints(points, columns: columns, withPayload: withPayload, into: &w) }
    }

    /// GET /collections/{c}/points/{id}: one Record.
    package static func record(_ point: PointOut, columns: [ColumnSpec], withPayload: PayloadSelection, time: Double) -> [UInt8] {
        ok(time: time) { w in writePoint(point, columns: columns, withPayload: withPayload, into: &w) }
    }

    /// POST points/scroll: `{"points": [...], "next_page_offset": id or null}`.
    package static func scroll(_ points: [PointOut], nextPageOffset: UInt64?, columns: [ColumnSpec], withPayload: PayloadSelection, time: Double) -> [UInt8] {
        ok(time: time) { w in
            w.beginObject()
            w.key("points"); writePoints(points, columns: columns, withPayload: withPayload, into: &w)
            w.key("next_page_offset"); if let nextPageOffset { w.uint(nextPageOffset) } else { w.null() }
            w.endObject()
        }
    }

    /// POST points/search: a list of ScoredPoints.
    package static func searchResult(_ points: [PointOut], columns: [ColumnSpec], withPayload: PayloadSelection, time: Double) -> [UInt8] {
        ok(time: time) { w in writePoints(points, columns: columns, withPayload: withPayload, into: &w) }
    }

    /// POST points/search/batch: one list of ScoredPoints per search.
    package static func searchBatchResult(_ results: [(points: [PointOut], withPayload: PayloadSelection)], columns: [ColumnSpec], time: Double) -> [UInt8] {
        ok(time: time) { w in
            w.beginArray()
            for r in results { writePoints(r.points, columns: columns, withPayload: r.withPayload, into: &w) }
            w.endArray()
        }
    }

    /// POST points/query: QueryResponse `{"points": [...]}`.
    package static func queryResult(_ points: [PointOut], columns: [ColumnSpec], withPayload: PayloadSelection, time: Double) -> [UInt8] {
        ok(time: time) { w in writeQueryResponse(points, columns: columns, withPayload: withPayload, into: &w) }
    }

    /// POST points/query/batch: one QueryResponse per query.
    package static func queryBatchResult(_ results: [(points: [PointOut], withPayload: PayloadSelection)], columns: [ColumnSpec], time: Double) -> [UInt8] {
        ok(time: time) { w in
            w.beginArray()
            for r in results { writeQueryResponse(r.points, columns: columns, withPayload: r.withPayload, into: &w) }
            w.endArray()
        }
    }

    /// GET /collections/{c}: CollectionInfo.
    package static func collectionInfo(_ c: CollectionSummary, time: Double) -> [UInt8] {
        ok(time: time) { w in
            w.beginObject()
            w.key("status"); w.string("green")
            w.key("optimizer_status"); w.string("ok")
            if let n = c.indexedVectorsCount { w.key("indexed_vectors_count"); w.int(Int64(n)) }
            w.key("points_count"); w.int(Int64(c.pointsCount))
            w.key("segments_count"); w.int(Int64(c.segmentsCount))
            w.key("config"); w.beginObject()
            w.key("params"); w.beginObject()
            w.key("vectors"); w.beginObject()
            if let name = c.vectorName { w.key(name); w.beginObject() }
            w.key("size"); w.int(Int64(c.dimension))
            w.key("distance"); w.string(c.distance.rawValue)
            if c.vectorName != nil { w.endObject() }
            w.endObject()
            if let name = c.sparseName {
                w.key("sparse_vectors"); w.beginObject()
                w.key(name); w.beginObject(); w.endObject()
                w.endObject()
            }
            w.key("shard_number"); w.int(Int64(c.shardNumber))
            w.key("replication_factor"); w.int(1)
            w.key("write_consistency_factor"); w.int(1)
            w.key("on_disk_payload"); w.bool(true)
            w.endObject()
            w.key("hnsw_config"); w.beginObject()
            w.key("m"); w.int(Int64(c.graphDegree))
            w.key("ef_construct"); w.int(Int64(c.buildListSize))
            w.key("full_scan_threshold"); w.int(10_000)
            w.key("on_disk"); w.bool(true)
            w.endObject()
            w.key("optimizer_config"); w.beginObject()
            w.key("default_segment_number"); w.int(0)
            w.key("flush_interval_sec"); w.int(0)
            w.endObject()
            w.endObject()
            w.key("payload_schema"); w.beginObject()
            for idx in c.payloadIndexes {
                w.key(idx.field); w.beginObject()
                w.key("data_type"); w.string(idx.type.rawValue)
                w.key("points"); w.int(Int64(idx.points))
                w.endObject()
            }
            w.endObject()
            w.endObject()
        }
    }

    // MARK: points

    static func writeQueryResponse(_ points: [PointOut], columns: [ColumnSpec], withPayload: PayloadSelection, into w: inout JSONWriter) {
        w.beginObject()
        w.key("points"); writePoints(points, columns: columns, withPayload: withPayload, into: &w)
        w.endObject()
    }

    /// A JSON list of points (see ``writePoint(_:columns:withPayload:into:)``).
    package static func writePoints(_ points: [PointOut], columns: [ColumnSpec], withPayload: PayloadSelection, into w: inout JSONWriter) {
        w.beginArray()
        for p in points { writePoint(p, columns: columns, withPayload: withPayload, into: &w) }
        w.endArray()
    }

    /// One point: `id`, then `version` and `score` for a scored point, `payload` unless
    /// `withPayload` is `.none`, `vector` when present.
    package static func writePoint(_ p: PointOut, columns: [ColumnSpec], withPayload: PayloadSelection, into w: inout JSONWriter) {
        w.beginObject()
        w.key("id"); w.uint(p.id)
        if let s = p.score {
            w.key("version"); w.int(0)     // Qdrant's per-point operation number; Strata keeps none
            w.key("score"); w.float(s)
        }
        if withPayload != .none {
            w.key("payload")
            if let values = p.payload {
                PayloadMapper.writePayload(values, columns: columns, selection: withPayload, into: &w)
            } else {
                w.beginObject(); w.endObject()
            }
        }
        if let v = p.vector {
            w.key("vector")
            if let name = p.vectorName {
                w.beginObject(); w.key(name); w.floats(v); w.endObject()
            } else {
                w.floats(v)
            }
        }
        w.endObject()
    }
}
