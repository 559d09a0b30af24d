// Request bodies of the collection endpoints: PUT /collections/{c} and PUT /collections/{c}/index.

import Strata
import StrataFormat

/// PUT /collections/{c}: one unnamed dense vector per point, a distance, a shard count.
package struct CreateCollectionRequest: Sendable, Equatable {
    /// The vector dimension (`vectors.size`), 1...4096.
    package var dimension: Int
    /// The distance (`vectors.distance`).
    package var distance: QdrantDistance
    /// `shard_number`; nil when absent (the server picks its default).
    package var shardNumber: Int?

    /// Options that tune Qdrant's storage or indexing only, never results: accepted and ignored.
    static let tuningOnly: Set<String> = ["hnsw_config", "wal_config", "optimizers_config", "on_disk_payload",
                                          "replication_factor", "write_consistency_factor"]

    /// Parses the body. Named vectors, sparse vectors, quantization, custom sharding, non-float32
    /// datatypes, multivectors and the other options that would change results are refused (400).
    package static func parse(_ body: JSONValue, limits: ServerLimits) throws(QdrantError) -> CreateCollectionRequest {
        let all: Set<String> = tuningOnly.union(["vectors", "shard_number", "sharding_method", "quantization_config",
                                                 "sparse_vectors", "strict_mode_config", "metadata", "payload",
                                                 "id_tracker", "init_from"])
        let o = try RequestBody.object(body, "body", allowed: all)
        try RequestBody.refuse(o, "sparse_vectors", "body", "collections hold one dense vector")
        try RequestBody.refuse(o, "quantization_config", "body", "Strata chooses its own compression")
        try RequestBody.refuse(o, "strict_mode_config", "body", "use the server's limits")
        try RequestBody.refuse(o, "metadata", "body", "collections carry no metadata")
        try RequestBody.refuse(o, "payload", "body", "payload storage is not configurable")
        try RequestBody.refuse(o, "id_tracker", "body", "the id tracker is not configurable")
        try RequestBody.refuse(o, "init_from", "body", "collections start empty")
        if let m = try RequestBody.string(o, "sharding_method", "body"), m != "auto" {
            throw .wrongInput("body.sharding_method '\(m)' is not supported (shards are chosen by id hash)")
        }
        // Replicas are the object store's business (every node reads every shard): checked, ignored.
        _ = try RequestBody.int(o, "replication_factor", "body", in: 1...Int64(Int32.max))
        _ = try RequestBody.int(o, "write_consistency_factor", "body", in: 1...Int64(Int32.max))
        guard let v = RequestBody.value(o, "vectors") else { throw .format("body", "missing field 'vectors'") }
        guard case .object(let vo) = v, vo["size"] != nil || vo["distance"] != nil else {
            if case .object = v { throw .wrongInput("body.vectors: named vectors are not supported (give {\"size\": n, \"distance\": d})") }
            throw .format("body.vectors", "expected an object with size and distance, got \(v.kindName)")
        }
        let p = "body.vectors"
        let vp = try RequestBody.object(v, p, allowed: ["size", "distance", "hnsw_config", "on_disk", "memory",
                                                        "quantization_config", "datatype", "multivector_config"])
        try RequestBody.refuse(vp, "quantization_config", p, "Strata chooses its own compression")
        try RequestBody.refuse(vp, "multivector_config", p, "one vector per point")
        if let dt = try RequestBody.string(vp, "datatype", p), dt != "float32" {
            throw .wrongInput("\(p).datatype '\(dt)' is not supported (float32 only)")
        }
        guard let size = try RequestBody.int(vp, "size", p, in: 1...Int64(SegmentSchema.maximumDimension)) else {
            throw .format(p, "missing field 'size'")
        }
        guard let dn = try RequestBody.string(vp, "distance", p) else { throw .format(p, "missing field 'distance'") }
        let distance = try QdrantDistance.parse(dn, "\(p).distance")
        let shards = try RequestBody.int(o, "shard_number", "body", in: 1...Int64(limits.maxShardNumber))
        return CreateCollectionRequest(dimension: size, distance: distance, shardNumber: shards)
    }
}

/// A payload index type (Qdrant's PayloadSchemaType), limited to what maps onto Strata columns.
package enum PayloadIndexType: String, Sendable, CaseIterable {
    /// Exact string matches (string or string-list column).
    case keyword
    /// Integers.
    case integer
    /// Floats.
    case float
    /// Booleans.
    case bool
    /// Full-text (Strata indexes the string column; text match conditions are refused).
    case text

    /// The column type an index of this type expects (keyword and text: string; a string-list
    /// column fits keyword too, see ``fits(_:)``).
    package var columnType: ColumnType {
        switch self {
        case .keyword, .text: return .string
        case .integer: return .int64
        case .float: return .float64
        case .bool: return .bool
        }
    }

    /// Whether an existing column of type `t` can carry this index.
    package func fits(_ t: ColumnType) -> Bool {
        switch self {
        case .keyword, .text: return t == .string || t == .stringList
        case .integer: return t == .int64
        case .float: return t == .float64 || t == .int64
        case .bool: return t == .bool
        }
    }
}

/// PUT /collections/{c}/index.
package struct CreateIndexRequest: Sendable, Equatable {
    /// The payload key (`field_name`).
    package var field: String
    /// The index type (`field_schema`).
    package var type: PayloadIndexType

    /// Parses the body: `field_schema` is a type name or `{"type": name, ...params}` (params that
    /// only tune Qdrant's index are ignored; geo, datetime and uuid are refused).
    package static func parse(_ body: JSONValue) throws(QdrantError) -> CreateIndexRequest {
        let o = try RequestBody.object(body, "body", allowed: ["field_name", "field_schema"])
        guard let field = try RequestBody.string(o, "field_name", "body") else { throw .format("body", "missing field 'field_name'") }
        guard (1...255).contains(field.utf8.count) else { throw .wrongInput("body.field_name must be 1...255 bytes of UTF-8") }
        guard let schema = RequestBody.value(o, "field_schema") else {
            throw .wrongInput("body.field_schema is required (keyword, integer, float, bool or text)")
        }
        let name: String
        switch schema {
        case .string(let s): name = s
        case .object(let so):
            guard let s = try RequestBody.string(so, "type", "body.field_schema") else { throw .format("body.field_schema", "missing field 'type'") }
            name = s
        default: throw .format("body.field_schema", "expected a type name or an object with 'type', got \(schema.kindName)")
        }
        guard let t = PayloadIndexType(rawValue: name) else {
            if ["geo", "datetime", "uuid"].contains(name) { throw .wrongInput("body.field_schema: '\(name)' indexes are not supported (keyword, integer, float, bool, text)") }
            throw .format("body.field_schema", "unknown index type '\(name)' (keyword, integer, float, bool, text)")
        }
        return CreateIndexRequest(field: field, type: t)
    }
}
