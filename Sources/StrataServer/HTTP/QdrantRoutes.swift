// Qdrant's REST API (the subset in docs/SERVE.md), on Hummingbird. Each handler parses with the
// Qdrant model layer, runs on the node (which fans out to the shards) and answers Qdrant's JSON.
// `?allow_partial=true` (a Strata extension) lets a read answer without shards that failed; the
// `strata-shards` response header says which node answered each shard, at which generation.
import Hummingbird
import NIOCore
import Strata
import StrataFormat
import Synchronization

/// The node the handlers use; set once the node has joined the cluster (requests before that
/// get 503).
package final class NodeHolder: Sendable {
    private let node = Mutex<ServeNode?>(nil)
    package init() {}
    package func set(_ n: ServeNode) { node.withLock { $0 = n } }
    package func get() throws(QdrantError) -> ServeNode {
        guard let n = node.withLock({ $0 }) else { throw QdrantError(status: 503, "Service unavailable: the node is starting") }
        return n
    }
}

/// Adds Qdrant's routes to `router`.
package func addQdrantRoutes(to router: Router<BasicRequestContext>, holder: NodeHolder, limits: ServerLimits, maxBodyBytes: Int) {
    router.get("/") { _, _ in Respond.bytes(QdrantResponse.versionInfo()) }
    router.get("/healthz") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/plain"], body: ResponseBody(byteBuffer: ByteBuffer(string: "healthz check passed")))
    }
    router.get("/collections") { _, _ in
        await Respond.run { elapsed throws(QdrantError) in
            Respond.bytes(QdrantResponse.collections(try holder.get().collectionNames, time: elapsed()))
        }
    }
    router.get("/collections/:name") { request, context in
        await Respond.run { elapsed throws(QdrantError) in
            let name = try parameter(context, "name")
            let (summary, report) = try await holder.get().collectionSummary(name, allowPartial: try Respond.flag(request, "allow_partial", default: false))
            return Respond.bytes(QdrantResponse.collectionInfo(summary, time: elapsed()), shards: report)
        }
    }
    router.get("/collections/:name/exists") { _, context in
        await Respond.run { elapsed throws(QdrantError) in
            let name = try parameter(context, "name")
            return Respond.bytes(QdrantResponse.exists(try holder.get().view.collection(name) != nil, time: elapsed()))
        }
    }
    router.put("/collections/:name") { request, context in
        await Respond.run { elapsed throws(QdrantError) in
            let name = try parameter(context, "name")
            let r = try CreateCollectionRequest.parse(try await Respond.body(request, limits: limits, limit: maxBodyBytes), limits: limits)
            try await holder.get().createCollection(name, r)
            return Respond.bytes(QdrantResponse.boolean(true, time: elapsed()))
        }
    }
    router.delete("/collections/:name") { _, context in
        await Respond.run { elapsed throws(QdrantError) in
            let deleted = try await holder.get().deleteCollection(try parameter(context, "name"))
            return Respond.bytes(QdrantResponse.boolean(deleted, time: elapsed()))
        }
    }
    router.put("/collections/:name/index") { request, context in
        await Respond.run { elapsed throws(QdrantError) in
            let name = try parameter(context, "name")
            let r = try CreateIndexRequest.parse(try await Respond.body(request, limits: limits, limit: maxBodyBytes))
            try await holder.get().createIndex(name, r)
            return Respond.bytes(QdrantResponse.updateResult(operationId: 0, completed: true, time: elapsed()))
        }
    }
    router.put("/collections/:name/points") { request, context in
        await Respond.run { elapsed throws(QdrantError) in
            let name = try parameter(context, "name")
            _ = try Respond.flag(request, "wait", default: false)
            let r = try UpsertRequest.parse(try await Respond.body(request, limits: limits, limit: maxBodyBytes), limits: limits)
            try await holder.get().upsert(name, r)
            // Always applied before answering: "completed" whether or not `wait` was set.
            return Respond.bytes(QdrantResponse.updateResult(operationId: 0, completed: true, time: elapsed()))
        }
    }
    router.post("/collections/:name/points/delete") { request, context in
        await Respond.run { elapsed throws(QdrantError) in
            let name = try parameter(context, "name")
            _ = try Respond.flag(request, "wait", default: false)
            let r = try DeleteRequest.parse(try await Respond.body(request, limits: limits, limit: maxBodyBytes), limits: limits)
            _ = try await holder.get().delete(name, r)
            return Respond.bytes(QdrantResponse.updateResult(operationId: 0, completed: true, time: elapsed()))
        }
    }
    router.post("/collections/:name/points") { request, context in
        await Respond.run { elapsed throws(QdrantError) in
            let name = try parameter(context, "name")
            let r = try RetrieveRequest.parse(try await Respond.body(request, limits: limits, limit: maxBodyBytes), limits: limits)
            let a = try await holder.get().retrieve(name, r, allowPartial: try Respond.flag(request, "allow_partial", default: false))
            return Respond.bytes(QdrantResponse.records(a.points, columns: a.columns, withPayload: r.withPayload, time: elapsed()), shards: a.report)
        }
    }
    router.post("/collections/:name/points/scroll") { request, context in
        await Respond.run { elapsed throws(QdrantError) in
            let name = try parameter(context, "name")
            let r = try ScrollRequest.parse(try await Respond.body(request, limits: limits, limit: maxBodyBytes), limits: limits)
            let a = try await holder.get().scroll(name, r, allowPartial: try Respond.flag(request, "allow_partial", default: false))
            return Respond.bytes(QdrantResponse.scroll(a.points, nextPageOffset: a.nextPageOffset, columns: a.columns, withPayload: r.withPayload,
                                                       time: elapsed()), shards: a.report)
        }
    }
    router.post("/collections/:name/points/count") { request, context in
        await Respond.run { elapsed throws(QdrantError) in
            let name = try parameter(context, "name")
            let r = try CountRequest.parse(try await Respond.body(request, limits: limits, limit: maxBodyBytes), limits: limits)
            let (n, report) = try await holder.get().count(name, r, allowPartial: try Respond.flag(request, "allow_partial", default: false))
            return Respond.bytes(QdrantResponse.count(n, time: elapsed()), shards: report)
        }
    }
    router.post("/collections/:name/points/search") { request, context in
        await Respond.run { elapsed throws(QdrantError) in
            let name = try parameter(context, "name")
            let s = try SearchRequests.parseSearch(try await Respond.body(request, limits: limits, limit: maxBodyBytes), limits: limits)
            let a = try await holder.get().search(name, s, allowPartial: try Respond.flag(request, "allow_partial", default: false))
            return Respond.bytes(QdrantResponse.searchResult(a.points, columns: a.columns, withPayload: s.withPayload, time: elapsed()), shards: a.report)
        }
    }
    router.post("/collections/:name/points/search/batch") { request, context in
        await batch(request, context, holder: holder, limits: limits, maxBodyBytes: maxBodyBytes,
                    parse: SearchRequests.parseSearchBatch, run: { node, name, s, partial throws(QdrantError) in
                        (try await node.search(name, s, allowPartial: partial), s.withPayload)
                    }, encode: QdrantResponse.searchBatchResult)
    }
    router.post("/collections/:name/points/query") { request, context in
        await Respond.run { elapsed throws(QdrantError) in
            let name = try parameter(context, "name")
            let plan = try SearchRequests.parseQuery(try await Respond.body(request, limits: limits, limit: maxBodyBytes), limits: limits)
            let a = try await holder.get().query(name, plan, allowPartial: try Respond.flag(request, "allow_partial", default: false))
            return Respond.bytes(QdrantResponse.queryResult(a.points, columns: a.columns, withPayload: plan.withPayload, time: elapsed()), shards: a.report)
        }
    }
    router.post("/collections/:name/points/query/batch") { request, context in
        await batch(request, context, holder: holder, limits: limits, maxBodyBytes: maxBodyBytes,
                    parse: SearchRequests.parseQueryBatch, run: { node, name, p, partial throws(QdrantError) in
                        (try await node.query(name, p, allowPartial: partial), p.withPayload)
                    }, encode: QdrantResponse.queryBatchResult)
    }
}

/// A batch endpoint: every request of the body in turn, one answer list each.
private func batch<R>(_ request: Request, _ context: BasicRequestContext, holder: NodeHolder, limits: ServerLimits, maxBodyBytes: Int,
                      parse: (JSONValue, ServerLimits) throws(QdrantError) -> [R],
                      run: (ServeNode, String, R, Bool) async throws(QdrantError) -> (PointsAnswer, PayloadSelection),
                      encode: ([(points: [PointOut], withPayload: PayloadSelection)], [ColumnSpec], Double) -> [UInt8]) async -> Response {
    await Respond.run { elapsed throws(QdrantError) in
        let name = try parameter(context, "name")
        let requests = try parse(try await Respond.body(request, limits: limits, limit: maxBodyBytes), limits)
        let node = try holder.get()
        let partial = try Respond.flag(request, "allow_partial", default: false)
        var results: [(points: [PointOut], withPayload: PayloadSelection)] = []
        var columns: [ColumnSpec] = []
        for r in requests {
            let (answer, selection) = try await run(node, name, r, partial)
            results.append((answer.points, selection))
            columns = answer.columns
        }
        return Respond.bytes(encode(results, columns, elapsed()))
    }
}

/// A path parameter (always present when the route matched).
func parameter(_ context: BasicRequestContext, _ name: String) throws(QdrantError) -> String {
    guard let v = context.parameters.get(name) else { throw .format("path", "missing \(name)") }
    return v
}

extension QueryPlan {
    /// The payload the plan returns.
    var withPayload: PayloadSelection {
        switch self {
        case .search(let s): return s.withPayload
        case .fusion(let f): return f.withPayload
        case .scroll(let r): return r.withPayload
        }
    }
}
