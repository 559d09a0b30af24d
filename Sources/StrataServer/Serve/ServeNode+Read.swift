// Reads through any node: a search asks every shard for its best offset + limit points and
// merges them exactly (by distance, then id: distances travel bit for bit); scroll merges pages by id; count sums; retrieve asks only the shards of the ids.
import Strata
import StrataFormat

/// Points and the columns their payload values follow.
package struct PointsAnswer: Sendable {
    package var points: [PointOut]
    package var columns: [ColumnSpec]
    package var report: ShardReport
    package var nextPageOffset: UInt64? = nil
}

extension ServeNode {
    /// A nearest-neighbour search over every shard.
    package func search(_ name: String, _ s: VectorSearch, allowPartial: Bool) async throws(QdrantError) -> PointsAnswer {
        let c = try collection(name)
        try c.checkVectorName(s.using, sparse: s.sparse != nil, "using")
        guard s.sparse != nil || s.vector.count == c.dimension else {
            throw .wrongInput("Vector dimension error: expected dim: \(c.dimension), got \(s.vector.count)")
        }
        let k = s.offset + s.limit
        let (results, report) = try await metrics.timeFanOut { () async throws(QdrantError) in
            try await fanOut(c, shards: Array(0..<c.shards), allowPartial: allowPartial) { _ in .search(s, k: k) }
        }
        // By (distance, id), as one exact search over all the rows would order them (a sparse
        // search's distance is minus its score).
        var all: [(point: PointOut, distance: Float)] = []
        for r in results {
            guard r.distances.count == r.points.count else {
                throw QdrantError(status: 500, "a shard answered a search without distances")
            }
            all += zip(r.padded(to: c.columns.count), r.distances).map { ($0, $1) }
        }
        all.sort { $0.distance != $1.distance ? $0.distance < $1.distance : $0.point.id < $1.point.id }
        let page = all.dropFirst(s.offset).prefix(s.limit).map(\.point)
        return PointsAnswer(points: c.naming(page), columns: c.columnSpecs, report: report)
    }

    /// The query API: a search, a reciprocal-rank fusion of prefetch searches, or a scroll.
    package func query(_ name: String, _ plan: QueryPlan, allowPartial: Bool) async throws(QdrantError) -> PointsAnswer {
        switch plan {
        case .search(let s):
            return try await search(name, s, allowPartial: allowPartial)
        case .scroll(let r):
            return try await scroll(name, r, allowPartial: allowPartial)
        case .fusion(let f):
            let c = try collection(name)
            var lists: [[UInt64]] = []
            var report = ShardReport()
            for p in f.prefetches {
                var s = p
                s.filter = try Self.both(f.filter, p.filter, limits: limits)
                s.offset = 0
                s.withPayload = .none
                s.withVector = false
                let answer = try await search(name, s, allowPartial: allowPartial)
                lists.append(answer.points.map(\.id))
                report.entries.merge(answer.report.entries) { a, _ in a }
                report.failures.merge(answer.report.failures) { a, _ in a }
            }
            var fused = RRF.fuse(lists, k: f.k, weights: f.weights, limit: f.offset + f.limit).dropFirst(f.offset).map { $0 }
            if let t = f.scoreThreshold { fused = fused.filter { $0.score >= t } }
            var points = fused.map { PointOut(id: $0.id, score: Float($0.score)) }
            if f.withPayload != .none || f.withVector {
                let found = try await retrieve(name, RetrieveRequest(ids: points.map(\.id), withPayload: f.withPayload, withVector: f.withVector),
                                               allowPartial: allowPartial)
                var byID: [UInt64: PointOut] = [:]
                for p in found.points { byID[p.id] = p }
                points = points.map { p in
                    var q = p
                    q.payload = byID[p.id]?.payload
                    q.vector = byID[p.id]?.vector
                    q.vectorName = byID[p.id]?.vectorName
                    return q
                }
            }
            return PointsAnswer(points: points, columns: c.columnSpecs, report: report)
        }
    }

    /// The points with these ids (request order, each once; missing ids left out).
    package func retrieve(_ name: String, _ r: RetrieveRequest, allowPartial: Bool) async throws(QdrantError) -> PointsAnswer {
        let c = try collection(name)
        var byShard: [Int: [UInt64]] = [:]
        var seen = Set<UInt64>()
        for id in r.ids where seen.insert(id).inserted {
            byShard[ShardPlacement.shard(of: id, shardCount: c.shards), default: []].append(id)
        }
        let parts = byShard
        let payload = r.withPayload != .none
        let (results, report) = try await fanOut(c, shards: parts.keys.sorted(), allowPartial: allowPartial) { s in
            parts[s].map { .retrieve(ids: $0, payload: payload, vector: r.withVector) }
        }
        var byID: [UInt64: PointOut] = [:]
        for res in results { for p in res.padded(to: c.columns.count) { byID[p.id] = p } }
        var ordered: [PointOut] = []
        var emitted = Set<UInt64>()
        for id in r.ids where emitted.insert(id).inserted { if let p = byID[id] { ordered.append(p) } }
        return PointsAnswer(points: c.naming(ordered), columns: c.columnSpecs, report: report)
    }

    /// A page of points in id order from `offset`, and the id the next page starts at.
    package func scroll(_ name: String, _ r: ScrollRequest, allowPartial: Bool) async throws(QdrantError) -> PointsAnswer {
        let c = try collection(name)
        let payload = r.withPayload != .none
        let (results, report) = try await fanOut(c, shards: Array(0..<c.shards), allowPartial: allowPartial) { _ in
            .scroll(filter: r.filter, offset: r.offset, limit: r.limit + 1, payload: payload, vector: r.withVector)
        }
        let all = results.flatMap { $0.padded(to: c.columns.count) }.sorted { $0.id < $1.id }
        let page = Array(all.prefix(r.limit))
        let next = all.count > r.limit ? all[r.limit].id : nil
        return PointsAnswer(points: c.naming(page), columns: c.columnSpecs, report: report, nextPageOffset: next)
    }

    /// How many points the filter admits (every count is exact).
    package func count(_ name: String, _ r: CountRequest, allowPartial: Bool) async throws(QdrantError) -> (Int, ShardReport) {
        let c = try collection(name)
        let (results, report) = try await fanOut(c, shards: Array(0..<c.shards), allowPartial: allowPartial) { _ in .count(filter: r.filter) }
        return (results.reduce(0) { $0 + $1.count }, report)
    }

    /// Both filters (nil when neither), merged at the top level: the `must` and `must_not` lists
    /// joined (so a top-level has_id stays top-level), each side's `should` (with its
    /// `min_should`) kept as one nested condition of `must`.
    static func both(_ a: QdrantFilter?, _ b: QdrantFilter?, limits: ServerLimits) throws(QdrantError) -> QdrantFilter? {
        guard let a else { return b }
        guard let b else { return a }
        var must: [JSONValue] = []
        var mustNot: [JSONValue] = []
        for f in [a, b] {
            guard case .object(let o) = f.source else { continue }
            func list(_ key: String) -> [JSONValue] {
                switch o[key] {
                case .array(let l)?: return l
                case nil, .null?: return []
                case let one?: return [one]
                }
            }
            must += list("must")
            mustNot += list("must_not")
            var alternatives: [String: JSONValue] = [:]
            if let should = o["should"], should != .null { alternatives["should"] = should }
            if let min = o["min_should"], min != .null { alternatives["min_should"] = min }
            if !alternatives.isEmpty { must.append(.object(alternatives)) }
        }
        return try QdrantFilter.parse(.object(["must": .array(must), "must_not": .array(mustNot)]), "filter", limits: limits)
    }
}
