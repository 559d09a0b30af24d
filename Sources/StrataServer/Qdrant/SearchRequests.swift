// Request bodies of the search endpoints: points/search, points/search/batch, points/query,
// points/query/batch, normalised into one ``VectorSearch`` the server runs per shard, and a
// ``QueryPlan`` for the query API (a search, a reciprocal-rank fusion of prefetches, or a scroll).
//
// What qdrant-client 1.20 sends (REST): query_points puts the top-level vector in
// {"query": {"nearest": [...]}}, prefetch queries as plain lists, {"fusion": "rrf"} or
// {"rrf": {"k": k}} for fusion, and always with_payload / with_vector. A sparse query is
// {"indices": [...], "values": [...]} (plain or under "nearest") with `using` naming the sparse
// vector; the search API names a vector with {"name": n, "vector": v}. Unsupported query kinds
// (recommend, discover, context, order_by, formula, sample, mmr, a point id as the query, nested
// prefetches, re-scoring prefetches with a vector) are a 400 naming them.

import Strata
import StrataFormat

/// Search parameters (`params`).
package struct SearchParams: Sendable, Equatable {
    /// `hnsw_ef`: the search list size, when given.
    package var hnswEf: Int?
    /// `exact`: scan exactly instead of using the graph.
    package var exact: Bool

    /// No parameters.
    package init(hnswEf: Int? = nil, exact: Bool = false) { self.hnswEf = hnswEf; self.exact = exact }

    static func parse(_ v: JSONValue?, _ path: String) throws(QdrantError) -> SearchParams {
        guard let v, v != .null else { return SearchParams() }
        // quantization, indexed_only and acorn tune Qdrant's own index: accepted, ignored.
        let o = try RequestBody.object(v, path, allowed: ["hnsw_ef", "exact", "quantization", "indexed_only", "acorn", "idf"])
        try RequestBody.refuse(o, "idf", path, "sparse scores are plain dot products (no IDF modifier)")
        return SearchParams(hnswEf: try RequestBody.int(o, "hnsw_ef", path, in: 1...65_535),
                            exact: try RequestBody.bool(o, "exact", path) ?? false)
    }
}

/// One search, dense or sparse, as every search form reduces to.
package struct VectorSearch: Sendable, Equatable {
    /// The dense query vector (the collection's dimension is the caller's check); empty for a
    /// sparse search.
    package var vector: [Float]
    /// The filter, nil for none.
    package var filter: QdrantFilter?
    /// Results to return after skipping `offset` (1...maxLimit).
    package var limit: Int
    /// Results to skip (limit + offset <= maxLimit).
    package var offset: Int
    /// `score_threshold` in Qdrant's score (see ``QdrantDistance/passes(score:threshold:)``).
    package var scoreThreshold: Float?
    /// hnsw_ef and exact.
    package var params: SearchParams
    /// The payload to return.
    package var withPayload: PayloadSelection
    /// Whether to return vectors.
    package var withVector: Bool
    /// The vector searched (`using`, or the search API's named vector): nil for the collection's
    /// dense vector; the server checks the name against the collection.
    package var using: String? = nil
    /// The sparse query, for a search of the collection's sparse vector (score: dot product).
    package var sparse: SparseVector? = nil
}

/// A query-API request, planned.
package enum QueryPlan: Sendable, Equatable {
    /// A nearest-neighbour search.
    case search(VectorSearch)
    /// Run every prefetch, fuse by reciprocal rank (``RRF``), apply limit / offset / threshold.
    case fusion(FusionQuery)
    /// No query and no prefetch: points in id order (Qdrant's behaviour), as a scroll.
    case scroll(ScrollRequest)
}

/// `prefetch` + `{"fusion": "rrf"}` or `{"rrf": {...}}`.
package struct FusionQuery: Sendable, Equatable {
    /// The prefetches; each one's `filter` is its own, to be combined with ``filter`` (use
    /// ``prefetchFilter(_:columns:limits:)``). Their payload / vector selections are unused.
    package var prefetches: [VectorSearch]
    /// The query's top-level filter, which applies to every prefetch (as in Qdrant).
    package var filter: QdrantFilter?
    /// RRF's k (default 2).
    package var k: Int
    /// One weight per prefetch, when given.
    package var weights: [Double]?
    /// Fused results to return after `offset`.
    package var limit: Int
    /// Fused results to skip.
    package var offset: Int
    /// A threshold on the fused score (>=).
    package var scoreThreshold: Double?
    /// The payload to return.
    package var withPayload: PayloadSelection
    /// Whether to return vectors.
    package var withVector: Bool

    /// Prefetch `i`'s filter and the query's, bound to `columns`.
    package func prefetchFilter(_ i: Int, columns: [ColumnSpec], limits: ServerLimits) throws(QdrantError) -> BoundFilter {
        let outer = try filter?.bind(columns: columns, limits: limits) ?? .all
        let inner = try prefetches[i].filter?.bind(columns: columns, limits: limits) ?? .all
        return outer.and(inner)
    }
}

/// Parsers for the search endpoints.
package enum SearchRequests {
    /// POST points/search: `{"vector": [...], "filter", "limit", "offset", "with_payload",
    /// "with_vector", "score_threshold", "params"}` (payload not returned unless asked, as in Qdrant).
    package static func parseSearch(_ body: JSONValue, limits: ServerLimits, path: String = "body") throws(QdrantError) -> VectorSearch {
        let o = try RequestBody.object(body, path, allowed: ["vector", "filter", "params", "limit", "offset", "with_payload",
                                                          "with_vector", "with_vectors", "score_threshold", "shard_key"])
        try RequestBody.refuse(o, "shard_key", path, "shards are chosen by id hash")
        guard let v = RequestBody.value(o, "vector") else { throw .format(path, "missing field 'vector'") }
        let (limit, offset) = try limitOffset(o, path, limits: limits, defaultLimit: nil)
        // {"name": n, "vector": dense or sparse} names the vector searched.
        var using: String? = nil
        var query = v
        if case .object(let vo) = v, vo["name"] != nil {
            let no = try RequestBody.object(v, "\(path).vector", allowed: ["name", "vector"])
            using = try RequestBody.string(no, "name", "\(path).vector")
            guard let inner = RequestBody.value(no, "vector") else { throw .format("\(path).vector", "missing field 'vector'") }
            query = inner
        }
        var search = VectorSearch(vector: [], filter: try filter(o, path, limits: limits), limit: limit, offset: offset,
                                  scoreThreshold: try threshold(o, path), params: try SearchParams.parse(o["params"], "\(path).params"),
                                  withPayload: try PointFields.withPayload(o["with_payload"], "\(path).with_payload", default: .none),
                                  withVector: try PointFields.withVector(o["with_vector"] ?? o["with_vectors"], "\(path).with_vector"),
                                  using: using)
        if case .object(let qo) = query, qo["indices"] != nil || qo["values"] != nil {
            guard using != nil else { throw .wrongInput("\(path).vector: a sparse query needs its vector's name ({\"name\": ..., \"vector\": ...})") }
            search.sparse = try PointFields.sparseVector(query, using == nil ? "\(path).vector" : "\(path).vector.vector")
        } else {
            search.vector = try PointFields.vector(query, using == nil ? "\(path).vector" : "\(path).vector.vector")
        }
        return search
    }

    /// POST points/search/batch: `{"searches": [search, ...]}`, at most `maxBatchSearches`.
    package static func parseSearchBatch(_ body: JSONValue, limits: ServerLimits) throws(QdrantError) -> [VectorSearch] {
        try batch(body, limits: limits) { v, p throws(QdrantError) in try parseSearch(v, limits: limits, path: p) }
    }

    /// POST points/query/batch: `{"searches": [query, ...]}`, at most `maxBatchSearches`.
    package static func parseQueryBatch(_ body: JSONValue, limits: ServerLimits) throws(QdrantError) -> [QueryPlan] {
        try batch(body, limits: limits) { v, p throws(QdrantError) in try parseQuery(v, limits: limits, path: p) }
    }

    private static func batch<T>(_ body: JSONValue, limits: ServerLimits, _ one: (JSONValue, String) throws(QdrantError) -> T) throws(QdrantError) -> [T] {
        let o = try RequestBody.object(body, "body", allowed: ["searches"])
        guard let a = try RequestBody.array(o, "searches", "body") else { throw .format("body", "missing field 'searches'") }
        guard a.count <= limits.maxBatchSearches else {
            throw .format("body.searches", "\(a.count) searches exceed the limit of \(limits.maxBatchSearches) per batch")
        }
        var out: [T] = []
        for (i, x) in a.enumerated() { out.append(try one(x, "body.searches[\(i)]")) }
        return out
    }

    /// POST points/query.
    package static func parseQuery(_ body: JSONValue, limits: ServerLimits, path: String = "body") throws(QdrantError) -> QueryPlan {
        let o = try RequestBody.object(body, path, allowed: ["prefetch", "query", "using", "filter", "params", "score_threshold", "limit",
                                                          "offset", "with_vector", "with_payload", "lookup_from", "shard_key"])
        try RequestBody.refuse(o, "shard_key", path, "shards are chosen by id hash")
        try RequestBody.refuse(o, "lookup_from", path, "queries read their own collection")
        let using = try RequestBody.string(o, "using", path)
        let withPayload = try PointFields.withPayload(o["with_payload"], "\(path).with_payload", default: .none)
        let withVector = try PointFields.withVector(o["with_vector"], "\(path).with_vector")
        let (limit, offset) = try limitOffset(o, path, limits: limits, defaultLimit: 10)
        let topFilter = try filter(o, path, limits: limits)
        let query = try RequestBody.value(o, "query").map { q throws(QdrantError) in try parseQueryField(q, "\(path).query") }
        var prefetches: [VectorSearch] = []
        if let pv = RequestBody.value(o, "prefetch") {
            let list: [JSONValue]
            switch pv {
            case .array(let a): list = a
            case .object: list = [pv]
            default: throw .format("\(path).prefetch", "expected a prefetch or a list of them, got \(pv.kindName)")
            }
            guard list.count <= limits.maxBatchSearches else {
                throw .format("\(path).prefetch", "\(list.count) prefetches exceed the limit of \(limits.maxBatchSearches)")
            }
            for (i, x) in list.enumerated() { prefetches.append(try prefetch(x, "\(path).prefetch[\(i)]", limits: limits)) }
        }
        switch query {
        case .nearest(let vector)?, .sparse(let vector)?:
            guard prefetches.isEmpty else {
                throw .wrongInput("\(path): re-scoring prefetch results with a vector query is not supported (use {\"fusion\": \"rrf\"})")
            }
            let threshold = try threshold(o, path)
            return .search(try search(vector, using: using, path: path,
                                      VectorSearch(vector: [], filter: topFilter, limit: limit, offset: offset, scoreThreshold: threshold,
                                                   params: try SearchParams.parse(o["params"], "\(path).params"),
                                                   withPayload: withPayload, withVector: withVector)))
        case .rrf(let k, let weights)?:
            guard !prefetches.isEmpty else { throw .format(path, "a fusion query needs at least one prefetch") }
            if let weights, weights.count != prefetches.count {
                throw .format("\(path).query.rrf.weights", "\(weights.count) weights for \(prefetches.count) prefetches")
            }
            return .fusion(FusionQuery(prefetches: prefetches, filter: topFilter, k: k, weights: weights, limit: limit, offset: offset,
                                       scoreThreshold: try RequestBody.number(o, "score_threshold", path),
                                       withPayload: withPayload, withVector: withVector))
        case nil:
            guard prefetches.isEmpty else { throw .format(path, "prefetch needs a fusion query ({\"fusion\": \"rrf\"})") }
            guard offset == 0 else { throw .wrongInput("\(path).offset: a query without a vector lists points in id order; page with scroll's offset") }
            return .scroll(ScrollRequest(filter: topFilter, limit: limit, offset: nil, withPayload: withPayload, withVector: withVector))
        }
    }

    private enum QueryField { case nearest(QueryVector), sparse(QueryVector), rrf(k: Int, weights: [Double]?) }

    /// A query's vector: dense or sparse.
    private enum QueryVector { case dense([Float]), sparse(SparseVector) }

    /// `base` searching `vector` in the vector named `using`; a sparse query needs the name.
    private static func search(_ vector: QueryVector, using: String?, path: String, _ base: VectorSearch) throws(QdrantError) -> VectorSearch {
        var s = base
        s.using = using
        switch vector {
        case .dense(let v): s.vector = v
        case .sparse(let v):
            guard using != nil else { throw .wrongInput("\(path).using: a sparse query needs 'using' (the sparse vector's name)") }
            s.sparse = v
        }
        return s
    }

    /// A dense list or a sparse `{"indices", "values"}` object.
    private static func queryVector(_ v: JSONValue, _ path: String) throws(QdrantError) -> QueryVector {
        if case .object(let o) = v, o["indices"] != nil || o["values"] != nil { return .sparse(try PointFields.sparseVector(v, path)) }
        return .dense(try PointFields.vector(v, path))
    }

    private static func parseQueryField(_ v: JSONValue, _ path: String) throws(QdrantError) -> QueryField {
        switch v {
        case .array: return .nearest(.dense(try PointFields.vector(v, path)))
        case .int, .string: throw .wrongInput("\(path): a point id as the query (search by an existing point's vector) is not supported")
        case .object(let o):
            if let n = o["nearest"] {
                let no = try RequestBody.object(v, path, allowed: ["nearest", "mmr"])
                try RequestBody.refuse(no, "mmr", path, "MMR re-ranking is not implemented")
                if case .int = n { throw .wrongInput("\(path).nearest: a point id as the query is not supported") }
                if case .string = n { throw .wrongInput("\(path).nearest: a point id as the query is not supported") }
                return .nearest(try queryVector(n, "\(path).nearest"))
            }
            if let f = o["fusion"] {
                _ = try RequestBody.object(v, path, allowed: ["fusion"])
                guard case .string(let name) = f else { throw .format("\(path).fusion", "expected \"rrf\", got \(f.kindName)") }
                if name == "rrf" { return .rrf(k: RRF.defaultK, weights: nil) }
                if name == "dbsf" { throw .wrongInput("\(path).fusion: 'dbsf' is not supported (rrf only)") }
                throw .format("\(path).fusion", "unknown fusion '\(name)' (rrf)")
            }
            if let r = o["rrf"] {
                _ = try RequestBody.object(v, path, allowed: ["rrf"])
                let ro = try RequestBody.object(r, "\(path).rrf", allowed: ["k", "weights"])
                let k = try RequestBody.int(ro, "k", "\(path).rrf", in: 1...1_000_000) ?? RRF.defaultK
                var weights: [Double]? = nil
                if let ws = try RequestBody.array(ro, "weights", "\(path).rrf") {
                    weights = []
                    for (i, w) in ws.enumerated() {
                        switch w {
                        case .int(let n): weights?.append(Double(n))
                        case .double(let d): weights?.append(d)
                        default: throw .format("\(path).rrf.weights[\(i)]", "expected a number, got \(w.kindName)")
                        }
                    }
                }
                return .rrf(k: k, weights: weights)
            }
            for kind in ["recommend", "discover", "context", "order_by", "formula", "sample", "relevance_feedback"] where o[kind] != nil {
                throw .wrongInput("\(path): '\(kind)' queries are not supported (nearest and rrf fusion only)")
            }
            if o["indices"] != nil || o["values"] != nil { return .sparse(.sparse(try PointFields.sparseVector(v, path))) }
            return .nearest(.dense(try PointFields.vector(v, path)))     // inference objects: its own message
        default:
            throw .format(path, "expected a vector, {\"nearest\": vector} or a fusion, got \(v.kindName)")
        }
    }

    private static func prefetch(_ v: JSONValue, _ path: String, limits: ServerLimits) throws(QdrantError) -> VectorSearch {
        let o = try RequestBody.object(v, path, allowed: ["prefetch", "query", "using", "filter", "params", "score_threshold", "limit", "lookup_from"])
        try RequestBody.refuse(o, "prefetch", path, "prefetches may not nest")
        try RequestBody.refuse(o, "lookup_from", path, "queries read their own collection")
        let using = try RequestBody.string(o, "using", path)
        guard let q = RequestBody.value(o, "query") else { throw .format(path, "a prefetch needs a query vector") }
        let vector: QueryVector
        switch try parseQueryField(q, "\(path).query") {
        case .nearest(let v), .sparse(let v): vector = v
        case .rrf: throw .wrongInput("\(path).query: a prefetch's query must be a vector (fusion goes in the top-level query)")
        }
        let (limit, _) = try limitOffset(o, path, limits: limits, defaultLimit: 10)
        return try search(vector, using: using, path: path,
                          VectorSearch(vector: [], filter: try filter(o, path, limits: limits), limit: limit, offset: 0,
                                       scoreThreshold: try threshold(o, path), params: try SearchParams.parse(o["params"], "\(path).params"),
                                       withPayload: .none, withVector: false))
    }

    private static func filter(_ o: [String: JSONValue], _ path: String, limits: ServerLimits) throws(QdrantError) -> QdrantFilter? {
        guard let f = RequestBody.value(o, "filter") else { return nil }
        return try QdrantFilter.parse(f, "\(path).filter", limits: limits)
    }

    private static func threshold(_ o: [String: JSONValue], _ path: String) throws(QdrantError) -> Float? {
        guard let t = try RequestBody.number(o, "score_threshold", path) else { return nil }
        guard Float(t).isFinite else { throw .format("\(path).score_threshold", "\(t) is out of the range of a 32-bit float") }
        return Float(t)
    }

    /// `limit` (required when `defaultLimit` is nil, as in the search API) and `offset`.
    private static func limitOffset(_ o: [String: JSONValue], _ path: String, limits: ServerLimits, defaultLimit: Int?) throws(QdrantError) -> (Int, Int) {
        let max = Int64(limits.maxLimit)
        guard let limit = try RequestBody.int(o, "limit", path, in: 1...max) ?? defaultLimit else { throw .format(path, "missing field 'limit'") }
        let offset = try RequestBody.int(o, "offset", path, in: 0...max) ?? 0
        guard limit + offset <= limits.maxLimit else {
            throw .format("\(path).offset", "limit + offset = \(limit + offset) exceeds the limit of \(limits.maxLimit)")
        }
        return (limit, offset)
    }
}
