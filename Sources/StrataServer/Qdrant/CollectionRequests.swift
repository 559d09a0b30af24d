// Request bodies of the collection endpoints: PUT /collections/{c} and PUT /collections/{c}/index.

import Strata
import StrataFormat

/// PUT /collections/{c}: one dense vector per point (unnamed or named), a distance, at most one
/// named sparse vector, a shard count.
package struct CreateCollectionRequest: Sendable, Equatable {
    /// The vector dimension (`vectors.size`), 1...4096.
    package var dimension: Int
    /// The distance (`vectors.distance`).
    package var distance: QdrantDistance
    /// `shard_number`; nil when absent (the server picks its default).
    package var shardNumber: Int?
    /// The dense vector's name when `vectors` named it, nil for the unnamed form.
    package var vectorName: String? = nil
    /// The sparse vector's name (`sparse_vectors`), nil when none.
    package var sparseName: String? = nil

    /// Options that tune Qdrant's storage or indexing only, never results: accepted and ignored.
    static let tuningOnly: Set<String> = ["hnsw_config", "wal_config", "optimizers_config", "on_disk_payload",
                                          "replication_factor", "write_consistency_factor"]

    /// Parses the body. More than one dense or sparse vector, quantization, custom sharding,
    /// non-float32 datatypes, multivectors, an IDF modifier and the other options that would change
    /// results are refused (400).
    package static func parse(_ body: JSONValue, limits: ServerLimits) throws(QdrantError) -> CreateCollectionRequest {
        let all: Set<String> = tuningOnly.union(["vectors", "shard_number", "sharding_method", "quantization_config",
                                                 "sparse_vectors", "strict_mode_config", "metadata", "payload",
                                                 "id_tracker", "init_from"])
        let o = try RequestBody.object(body, "body", allowed: all)
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
        guard var v = RequestBody.value(o, "vectors") else { throw .format("body", "missing field 'vectors'") }
        guard case .object(let vo) = v else { throw .format("body.vectors", "expected an object with size and distance, got \(v.kindName)") }
        var p = "body.vectors"
        var vectorName: String? = nil
        if vo["size"] == nil && vo["distance"] == nil {
            // Named: {"name": {"size", "distance"}}, one of them.
            guard vo.count == 1, let (name, params) = vo.first else {
                throw .wrongInput("body.vectors: \(vo.count) named dense vectors; Strata stores one dense vector per point")
            }
            guard (1...255).contains(name.utf8.count) else { throw .wrongInput("body.vectors: a vector name must be 1...255 bytes of UTF-8") }
            vectorName = name
            v = params
            p = "body.vectors.\(name)"
        }
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
        var sparseName: String? = nil
        if let sv = RequestBody.value(o, "sparse_vectors") {
            guard case .object(let so) = sv else { throw .format("body.sparse_vectors", "expected an object of named sparse vectors, got \(sv.kindName)") }
            guard so.count <= 1 else { throw .wrongInput("body.sparse_vectors: \(so.count) sparse vectors; Strata stores at most one per point") }
            if let (name, params) = so.first {
                let sp = "body.sparse_vectors.\(name)"
                guard (1...255).contains(name.utf8.count) else { throw .wrongInput("body.sparse_vectors: a vector name must be 1...255 bytes of UTF-8") }
                guard name != (vectorName ?? "") else { throw .wrongInput("\(sp): the dense vector already has this name") }
                if params != .null {
                    let po = try RequestBody.object(params, sp, allowed: ["index", "modifier"])
                    if let m = try RequestBody.string(po, "modifier", sp), m != "none" {
                        throw .wrongInput("\(sp).modifier '\(m)' is not supported (sparse scores are plain dot products)")
                    }
                    // index (full_scan_threshold, on_disk, datatype) tunes Qdrant's sparse index only.
                    if let index = RequestBody.value(po, "index"), index != .null {
                        let io = try RequestBody.object(index, "\(sp).index", allowed: ["full_scan_threshold", "on_disk", "datatype"])
                        if let dt = try RequestBody.string(io, "datatype", "\(sp).index"), dt != "float32" {
                            throw .wrongInput("\(sp).index.datatype '\(dt)' is not supported (float32 only)")
                        }
                    }
                }
                sparseName = name
            }
        }
        return CreateCollectionRequest(dimension: size, distance: distance, shardNumber: shards, vectorName: vectorName, sparseName: sparseName)
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
