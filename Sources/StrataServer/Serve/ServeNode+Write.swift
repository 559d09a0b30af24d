// Writes through any node: points are split by shard (hash of the id) and each part goes to its
// shard's writer; the request is acknowledged when every part's WAL object is in the store.
// New payload keys become columns first (compare-and-swap on the collection's definition), so
// every node maps a key to the same column and type.
import Strata
import StrataFormat

extension ServeNode {
    /// Upserts points (Qdrant's `PUT /collections/{c}/points`). A point id given twice keeps its
    /// last occurrence, as Qdrant does.
    package func upsert(_ name: String, _ original: UpsertRequest) async throws(QdrantError) {
        var c = try collection(name)
        let request = original.deduplicated()
        for (i, p) in request.points.enumerated() {
            guard p.vector.count == c.dimension else {
                throw .wrongInput("Vector dimension error: expected dim: \(c.dimension), got \(p.vector.count) (body.points[\(i)].vector)")
            }
            try c.checkVectorName(p.vectorName, sparse: false, "body.points[\(i)].vector")
            if p.sparse != nil { try c.checkVectorName(p.sparseName, sparse: true, "body.points[\(i)].vector") }
        }
        // Columns for new keys (their type is the first value's), stored before any row uses them.
        let mapped = try request.mapPayloads(columns: c.columnSpecs, limits: limits)
        if !mapped.newColumns.isEmpty { c = try await appendColumns(c, mapped.newColumns) }
        var byShard: [Int: [UpsertPoint]] = [:]
        for p in request.points {
            byShard[ShardPlacement.shard(of: p.id, shardCount: c.shards), default: []].append(p)
        }
        let parts = byShard
        _ = try await fanOut(c, shards: parts.keys.sorted()) { s in parts[s].map { .upsert($0) } }
    }

    /// Deletes points by id or filter (`POST /collections/{c}/points/delete`); returns how many.
    package func delete(_ name: String, _ request: DeleteRequest) async throws(QdrantError) -> Int {
        let c = try collection(name)
        let results: [ShardResult]
        switch request {
        case .ids(let ids):
            var byShard: [Int: [UInt64]] = [:]
            for id in Set(ids) { byShard[ShardPlacement.shard(of: id, shardCount: c.shards), default: []].append(id) }
            let parts = byShard
            results = try await fanOut(c, shards: parts.keys.sorted()) { s in parts[s].map { .delete(.ids($0)) } }.0
        case .filter:
            results = try await fanOut(c, shards: Array(0..<c.shards)) { _ in .delete(request) }.0
        }
        return results.reduce(0) { $0 + $1.count }
    }

    /// Appends columns to the definition (compare-and-swap; a key another node added meanwhile
    /// with another type makes the mapping fail with 400 naming it).
    private func appendColumns(_ c: ServedCollection, _ columns: [ColumnSpec]) async throws(QdrantError) -> ServedCollection {
        let stored: (ServedCollection, Int64)?
        do throws(StrataError) {
            stored = try await catalog.update(c.name) { (current: ServedCollection) throws(StrataError) -> ServedCollection? in
                guard current.uid == c.uid else { throw StrataError(.notFound, "collection \(c.name) was deleted") }
                var next = current
                for col in columns {
                    if let existing = current.columns.first(where: { $0.name == col.name }) {
                        // An integer first seen here goes into a float column another node made.
                        let widens = existing.type == ColumnType.float64.description && col.type == .int64
                        guard existing.type == col.type.description || widens else {
                            throw StrataError(.typeMismatch, "payload key '\(col.name)' holds \(existing.type) values; got \(col.type)")
                        }
                    } else {
                        next.columns.append(.init(name: col.name, type: col.type.description))
                    }
                }
                return next.columns == current.columns ? nil : next
            }
        } catch { throw QdrantError(error) }
        guard let (stored, revision) = stored, stored.uid == c.uid else { throw .collectionNotFound(c.name) }
        view.noteStored(stored, revision: revision)
        return stored
    }
}
