// Requests run against one shard on the node that holds it: search, retrieve, scroll, count,
// upsert and delete over a remote collection handle (the shard's writer here, or a read-only
// handle when the owner cannot be reached). The coordinating node runs these directly for its own
// shards and through the internal API (InternalRoutes.swift) for the others'.
import Strata
import StrataFormat
import StrataRemote

/// One shard's side of every request.
package struct ShardOperations: Sendable {
    package let limits: ServerLimits

    package init(limits: ServerLimits) { self.limits = limits }

    /// The `k` best points of `search` in the shard (before offset; the coordinator applies it
    /// after merging), with their payload and vector when asked.
    package func search(_ handle: RemoteCollection, _ c: ServedCollection, _ search: VectorSearch, k: Int) async throws(QdrantError) -> ShardResult {
        let view = try await snapshot(handle)
        if let sparse = search.sparse { return try sparseSearch(view, sparse, search, k: k) }
        let schema = view.schema
        guard search.vector.count == schema.dimension else {
            throw .wrongInput("Vector dimension error: expected dim: \(schema.dimension), got \(search.vector.count)")
        }
        let bound = try search.filter?.bind(columns: schema.columns, limits: limits) ?? .all
        let distance = QdrantDistance(schema.metric)
        var hits: [CollectionHit]
        do throws(StrataError) {
            if let ids = bound.ids {
                hits = try exactAmong(ids: ids, view: view, bound: bound, query: search.vector, k: k)
            } else {
                let fetch = k + bound.excludedIds.count
                let listSize = max(search.params.hnswEf ?? 64, fetch)
                let filter: Filter? = bound.filter.isEmpty ? nil : bound.filter
                hits = try view.search(query: search.vector, filter: filter,
                                       options: SearchOptions(k: fetch, listSize: listSize, exact: search.params.exact))
                if !bound.excludedIds.isEmpty { hits = hits.filter { !bound.excludedIds.contains($0.id) } }
                hits = Array(hits.prefix(k))
            }
        } catch { throw QdrantError(error) }
        var result = ShardResult(generation: view.generation)
        result.points.reserveCapacity(hits.count)
        for h in hits {
            let score = distance.score(distance: h.distance)
            if let t = search.scoreThreshold, !distance.passes(score: score, threshold: t) { continue }
            result.points.append(try point(h.id, score: score, view: view, payload: search.withPayload != .none, vector: search.withVector))
            result.distances.append(h.distance)
        }
        return result
    }

    /// The `k` best points of a sparse search: score = the dot product with the query (Qdrant's),
    /// higher first, ties by id; a row without a sparse vector, or sharing no index, never matches.
    /// Exact: the engine scores every posting of the query's terms (block-max pruning only skips
    /// what cannot enter the top k).
    private func sparseSearch(_ view: CollectionSnapshot, _ query: SparseVector, _ search: VectorSearch, k: Int) throws(QdrantError) -> ShardResult {
        let bound = try search.filter?.bind(columns: view.schema.columns, limits: limits) ?? .all
        let filter: Filter? = bound.filter.isEmpty ? nil : bound.filter
        var hits: [CollectionHit]
        do throws(StrataError) {
            if let ids = bound.ids {
                // has_id: every match, then those ids (the engine has no id filter for sparse search).
                let all = view.count
                hits = all == 0 ? [] : try view.sparseSearch(query: query, k: all, filter: filter).filter { ids.contains($0.id) }
            } else {
                hits = try view.sparseSearch(query: query, k: k + bound.excludedIds.count, filter: filter)
            }
        } catch { throw QdrantError(error) }
        if !bound.excludedIds.isEmpty { hits = hits.filter { !bound.excludedIds.contains($0.id) } }
        var result = ShardResult(generation: view.generation)
        for h in hits.prefix(k) {
            let score = -h.distance
            if let t = search.scoreThreshold, score < t { continue }
            result.points.append(try point(h.id, score: score, view: view, payload: search.withPayload != .none, vector: search.withVector))
            result.distances.append(h.distance)
        }
        return result
    }

    /// Exact nearest among explicit ids (a top-level has_id).
    private func exactAmong(ids: Set<UInt64>, view: CollectionSnapshot, bound: BoundFilter, query: [Float], k: Int) throws(StrataError) -> [CollectionHit] {
        let d = Distance(view.schema)
        let q = try d.prepareQuery(query)
        var hits: [CollectionHit] = []
        for id in ids where !bound.excludedIds.contains(id) {
            guard let r = try view.get(id: id) else { continue }
            if !bound.filter.isEmpty, !bound.filter.matches(r.payload, schema: view.schema) { continue }
            hits.append(CollectionHit(id: id, distance: d(q, r.vector)))
        }
        hits.sort()
        return Array(hits.prefix(k))
    }

    /// The points with these ids that exist in the shard.
    package func retrieve(_ handle: RemoteCollection, ids: [UInt64], payload: Bool, vector: Bool) async throws(QdrantError) -> ShardResult {
        let view = try await snapshot(handle)
        return ShardResult(generation: view.generation, points: try records(ids, view, payload: payload, vector: vector))
    }

    /// Up to `limit` points admitted by `filter` with id >= `offset`, by id.
    package func scroll(_ handle: RemoteCollection, filter: QdrantFilter?, offset: UInt64?, limit: Int,
                        payload: Bool, vector: Bool) async throws(QdrantError) -> ShardResult {
        let view = try await snapshot(handle)
        let page = try matchingIDs(view, filter: filter, from: offset ?? 0).sorted().prefix(limit)
        return ShardResult(generation: view.generation, points: try records(page, view, payload: payload, vector: vector))
    }

    /// The live rows among `ids`, in that order, with what was asked of them.
    private func records(_ ids: some Sequence<UInt64>, _ view: CollectionSnapshot, payload: Bool, vector: Bool) throws(QdrantError) -> [PointOut] {
        var out: [PointOut] = []
        do throws(StrataError) {
            for id in ids {
                guard let r = try view.get(id: id) else { continue }
                out.append(PointOut(id: id, payload: payload ? r.payload : nil, vector: vector ? r.vector : nil))
            }
        } catch { throw QdrantError(error) }
        return out
    }

    /// How many points `filter` admits.
    package func count(_ handle: RemoteCollection, filter: QdrantFilter?) async throws(QdrantError) -> ShardResult {
        let view = try await snapshot(handle)
        let n = filter == nil ? view.count : try matchingIDs(view, filter: filter, from: 0).count
        return ShardResult(generation: view.generation, count: n, segments: view.version.segments.count)
    }

    /// Ids of live rows admitted by `filter` with id >= `from`.
    private func matchingIDs(_ view: CollectionSnapshot, filter: QdrantFilter?, from: UInt64) throws(QdrantError) -> [UInt64] {
        let bound = try filter?.bind(columns: view.schema.columns, limits: limits) ?? .all
        var ids: [UInt64] = []
        let schema = view.schema
        do throws(StrataError) {
            if let only = bound.ids {
                for id in only where id >= from && !bound.excludedIds.contains(id) {
                    guard let r = try view.get(id: id) else { continue }
                    if bound.filter.isEmpty || bound.filter.matches(r.payload, schema: schema) { ids.append(id) }
                }
                return ids
            }
            try view.forEachRow { r in
                guard r.id >= from, !bound.excludedIds.contains(r.id) else { return }
                if bound.filter.isEmpty || bound.filter.matches(r.payload, schema: schema) { ids.append(r.id) }
            }
        } catch { throw QdrantError(error) }
        return ids
    }

    /// Writes points to the shard (its writer): the shard first gets every column of `columns` it
    /// lacks, then the rows; acknowledged once their WAL object is in the store.
    package func upsert(_ writer: RemoteCollection, points: [UpsertPoint], columns: [ColumnSpec]) async throws(QdrantError) {
        let mapped = try PayloadMapper.map(points.map(\.payload), columns: columns, maxColumns: limits.maxPayloadKeys,
                                           path: { "body.points[\($0)].payload" })
        guard mapped.newColumns.isEmpty else {
            throw QdrantError(status: 500, "shard write with payload keys the collection does not define: \(mapped.newColumns.map(\.name))")
        }
        try await ensureColumns(writer, columns)
        var rows: [SegmentRow] = []
        rows.reserveCapacity(points.count)
        for (p, values) in zip(points, mapped.rows) {
            var payload: [String: PayloadValue] = [:]
            for (col, v) in zip(columns, values) where v != .null { payload[col.name] = v }
            rows.append(SegmentRow(id: p.id, vector: p.vector, payload: payload, sparse: p.sparse))
        }
        do throws(StrataError) { try await writer.upsert(rows) } catch { throw QdrantError(error) }
    }

    /// Deletes by ids or by filter; returns how many rows were deleted.
    package func delete(_ writer: RemoteCollection, _ request: DeleteRequest) async throws(QdrantError) -> Int {
        let ids: [UInt64]
        switch request {
        case .ids(let list): ids = list
        case .filter(let f): ids = try matchingIDs(try await snapshot(writer), filter: f, from: 0)
        }
        guard !ids.isEmpty else { return 0 }
        do throws(StrataError) { return try await writer.delete(ids: ids) } catch { throw QdrantError(error) }
    }

    /// Appends to the shard the collection's columns it does not have yet (they are a prefix).
    package func ensureColumns(_ writer: RemoteCollection, _ columns: [ColumnSpec]) async throws(QdrantError) {
        let have = writer.schema.columns.count
        guard columns.count > have else { return }
        do throws(StrataError) { try await writer.addColumns(Array(columns[have...])) } catch { throw QdrantError(error) }
    }

    private func snapshot(_ handle: RemoteCollection) async throws(QdrantError) -> CollectionSnapshot {
        do throws(StrataError) { return try await handle.snapshot().snapshot } catch { throw QdrantError(error) }
    }

    private func point(_ id: UInt64, score: Float, view: CollectionSnapshot, payload: Bool, vector: Bool) throws(QdrantError) -> PointOut {
        guard payload || vector else { return PointOut(id: id, score: score) }
        do throws(StrataError) {
            let r = try view.get(id: id)
            return PointOut(id: id, score: score, payload: payload ? (r?.payload ?? []) : nil, vector: vector ? r?.vector : nil)
        } catch { throw QdrantError(error) }
    }
}
