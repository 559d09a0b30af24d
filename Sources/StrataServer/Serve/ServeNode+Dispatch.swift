// Where a shard's part of a request runs. Writes go to the shard's writer: this node when it owns
// the shard, else the owner (over the internal API), retrying while ownership moves (a dead
// owner's lease expiring, the next owner replaying the shard) until the write deadline. Reads go
// to the owner too, which has every acknowledged write; when the owner cannot be reached, this
// node reads the shard itself through its cache (the data is in the store), so queries keep
// being answered while a node is down.
import Strata
import StrataFormat
import StrataRemote

/// Which node answered each shard, at which generation, or why it could not.
package struct ShardReport: Sendable {
    package var entries: [Int: String] = [:]
    package var failures: [Int: String] = [:]

    /// `0:node-a@12,1:node-b@7` (the `strata-shards` response header).
    package var header: String {
        (entries.map { ($0.key, $0.value) } + failures.map { ($0.key, "failed") })
            .sorted { $0.0 < $1.0 }.map { "\($0.0):\($0.1)" }.joined(separator: ",")
    }
}

extension ServeNode {
    /// Runs `request(shard)` on each shard in `shards` concurrently. A shard that fails makes the
    /// whole request fail, unless `allowPartial` (reads only): then its error is in the report.
    package func fanOut(_ c: ServedCollection, shards: [Int], allowPartial: Bool = false,
                        _ request: @escaping @Sendable (Int) -> InternalRequest?) async throws(QdrantError) -> ([ShardResult], ShardReport) {
        let outcomes = await withTaskGroup(of: (Int, Result<(ShardResult, String), QdrantError>)?.self) { group in
            for s in shards {
                guard let r = request(s) else { continue }
                group.addTask { [self] in
                    do throws(QdrantError) {
                        return (s, .success(try await onShard(c, s, r)))
                    } catch {
                        return (s, .failure(error))
                    }
                }
            }
            var all: [(Int, Result<(ShardResult, String), QdrantError>)] = []
            for await o in group { if let o { all.append(o) } }
            return all
        }
        var results: [ShardResult] = []
        var report = ShardReport()
        var firstFailure: QdrantError?
        for (s, outcome) in outcomes.sorted(by: { $0.0 < $1.0 }) {
            switch outcome {
            case .success(let (r, who)):
                results.append(r)
                report.entries[s] = "\(who)@\(r.generation)"
            case .failure(let e):
                report.failures[s] = e.message
                if firstFailure == nil { firstFailure = e }
            }
        }
        if let firstFailure, !allowPartial || firstFailure.status < 500 { throw firstFailure }
        return (results, report)
    }

    /// Runs one shard's part; returns its answer and the node that gave it.
    package func onShard(_ c: ServedCollection, _ shard: Int, _ request: InternalRequest) async throws(QdrantError) -> (ShardResult, String) {
        let me = view.me.id
        if request.isWrite {
            let deadline = monotonicSeconds() + writeDeadlineSeconds
            var lastProblem = "no live node owns the shard"
            while true {
                if let owner = view.owner(of: c, shard: shard) {
                    if owner == me {
                        let writer: RemoteCollection?
                        do throws(StrataError) {
                            writer = try await host.writer(c, shard: shard, waitSeconds: max(0.5, deadline - monotonicSeconds()))
                        } catch where error.code == .busy {
                            writer = nil
                            lastProblem = error.message
                        } catch { throw QdrantError(error) }
                        if let writer {
                            do throws(QdrantError) {
                                return (try await runLocally(request, on: writer, c), me)
                            } catch {
                                // Still this node's writer: the error is the request's. Else the
                                // shard moved (the handle was closed under the write): try again.
                                if host.isCurrentWriter(writer, of: c, shard: shard), writer.writeFailure == nil { throw error }
                                lastProblem = "the shard moved while writing: \(error.message)"
                            }
                        }
                    } else if let node = view.node(owner) {
                        do {
                            let answer = try await peers.post(node, Self.internalPath(c, shard, request), body: request.encoded(uid: c.uid),
                                                              timeoutSeconds: max(1, deadline - monotonicSeconds()))
                            if answer.status == 200 {
                                return (try ShardWire.decode(answer.body, columns: c.columnSpecs, peer: owner), owner)
                            }
                            let e = QdrantError(status: answer.status, body: answer.body)
                            // 503: the owner has no writer yet (a lease to expire, a replay).
                            guard answer.status == 503 else { throw e }
                            lastProblem = "\(owner): \(e.message)"
                        } catch let error as QdrantError {
                            throw error
                        } catch let error as StrataError {
                            lastProblem = error.message
                        } catch { lastProblem = "\(error)" }
                    }
                }
                if monotonicSeconds() >= deadline {
                    throw QdrantError(status: 503, "Service unavailable: shard \(shard) of \(c.name) has no reachable writer after "
                                      + "\(Int(writeDeadlineSeconds)) s: \(lastProblem)")
                }
                try? await Task.sleep(nanoseconds: 200_000_000)
            }
        }
        // Reads: the owner, else this node through its cache.
        if let owner = view.owner(of: c, shard: shard), owner != me, let node = view.node(owner) {
            do {
                let answer = try await peers.post(node, Self.internalPath(c, shard, request), body: request.encoded(uid: c.uid), timeoutSeconds: 10)
                if answer.status == 200 {
                    let r = try ShardWire.decode(answer.body, columns: c.columnSpecs, peer: owner)
                    return (r, owner + (r.fromCache ? "(cache)" : ""))
                }
                let e = QdrantError(status: answer.status, body: answer.body)
                if answer.status < 500 { throw e }
                logger.debug("owner failed a read; reading the shard here", metadata: ["owner": "\(owner)", "error": "\(e.message)"])
            } catch let error as QdrantError {
                throw error
            } catch let error as StrataError where error.code == .corrupt {
                // A peer that answers what this node cannot decode (another version?) is worth a warning.
                logger.warning("owner's answer could not be decoded; reading the shard here", metadata: ["owner": "\(owner)", "error": "\(error.message)"])
            } catch {
                logger.debug("owner unreachable; reading the shard here", metadata: ["owner": "\(owner)", "error": "\(error)"])
            }
        }
        let handle: RemoteCollection
        do throws(StrataError) { handle = try await host.reader(c, shard: shard) } catch { throw QdrantError(error) }
        return (try await runLocally(request, on: handle, c), me + (host.isLiveWriter(handle, of: c, shard: shard) ? "" : "(cache)"))
    }

    /// `/strata/internal/v1/collections/{c}/shards/{s}/{operation}`.
    static func internalPath(_ c: ServedCollection, _ shard: Int, _ request: InternalRequest) -> String {
        "/strata/internal/v1/collections/\(c.name)/shards/\(shard)/\(request.operation)"
    }

    /// Runs a shard's part on a handle this node holds.
    package func runLocally(_ request: InternalRequest, on handle: RemoteCollection, _ c: ServedCollection) async throws(QdrantError) -> ShardResult {
        switch request {
        case .search(let s, let k):
            return try await metrics.timeShardSearch { () async throws(QdrantError) -> ShardResult in try await ops.search(handle, c, s, k: k) }
        case .retrieve(let ids, let payload, let vector):
            return try await ops.retrieve(handle, ids: ids, payload: payload, vector: vector)
        case .scroll(let filter, let offset, let limit, let payload, let vector):
            return try await ops.scroll(handle, filter: filter, offset: offset, limit: limit, payload: payload, vector: vector)
        case .count(let filter):
            return try await ops.count(handle, filter: filter)
        case .upsert(let points):
            let columns = try await columnsCovering(points, c)
            try await metrics.timeCommit { () async throws(QdrantError) in try await ops.upsert(handle, points: points, columns: columns) }
            return ShardResult(generation: 0, count: points.count)
        case .delete(let d):
            let n = try await metrics.timeCommit { () async throws(QdrantError) -> Int in try await ops.delete(handle, d) }
            return ShardResult(generation: 0, count: n)
        }
    }

    /// The collection's columns, read again from etcd when `points` carry a key this node has not
    /// seen yet (the coordinating node appended it just before forwarding).
    func columnsCovering(_ points: [UpsertPoint], _ c: ServedCollection) async throws(QdrantError) -> [ColumnSpec] {
        let known = Set(c.columns.map(\.name))
        let missing = points.contains { p in p.payload?.keys.contains { !known.contains($0) } ?? false }
        guard missing else { return c.columnSpecs }
        let found: (ServedCollection, Int64)?
        do throws(StrataError) { found = try await catalog.get(c.name) } catch { throw QdrantError(error) }
        guard let (fresh, revision) = found, fresh.uid == c.uid else { throw .collectionNotFound(c.name) }
        view.noteStored(fresh, revision: revision)
        return fresh.columnSpecs
    }
}

extension QdrantError {
    /// The error a peer answered (Qdrant's error body), or its status with the raw text.
    init(status: Int, body: [UInt8]) {
        if let root = try? JSONValue.parse(bytes: body, what: "answer", maximumDepth: 4), case .object(let o) = root,
           case .object(let st)? = o["status"], case .string(let m)? = st["error"] {
            self.init(status: status, m)
        } else {
            self.init(status: status, String(decoding: body.prefix(300), as: UTF8.self))
        }
    }
}
