// The internal API, node to node (docs/SERVE.md "Internal API"): one shard's part of a request,
// run on this node (its writer for writes: 503 when this node does not hold it, and the sender
// retries on the owner it finds next).
import Hummingbird
import NIOCore
import StrataFormat
import StrataRemote

/// Adds `/strata/internal/v1/collections/{c}/shards/{s}/{operation}`.
package func addInternalRoutes(to router: Router<BasicRequestContext>, holder: NodeHolder, limits: ServerLimits, maxBodyBytes: Int) {
    router.post("/strata/internal/v1/collections/:name/shards/:shard/:operation") { request, context in
        await Respond.run { _ throws(QdrantError) in
            let node = try holder.get()
            let name = try parameter(context, "name")
            guard let shard = Int(try parameter(context, "shard")) else { throw .format("path", "shard is a number") }
            let operation = try parameter(context, "operation")
            let (uid, r) = try InternalRequest.decode(try await Respond.rawBody(request, limit: maxBodyBytes), operation: operation, limits: limits)
            var c = node.view.collection(name) ?? ServedCollection.placeholder
            if c.uid != uid {
                // This node's view may lag a create or a column change: ask etcd.
                let fresh: (ServedCollection, Int64)?
                do throws(StrataError) { fresh = try await node.catalog.get(name) } catch { throw QdrantError(error) }
                guard let (f, revision) = fresh, f.uid == uid else { throw .collectionNotFound(name) }
                node.view.noteStored(f, revision: revision)
                c = f
            }
            guard (0..<c.shards).contains(shard) else { throw .wrongInput("shard \(shard) is outside 0..<\(c.shards)") }
            let result: ShardResult
            if r.isWrite {
                let writer: RemoteCollection
                do throws(StrataError) { writer = try await node.host.writer(c, shard: shard, waitSeconds: 2) } catch {
                    throw QdrantError(status: error.code == .busy ? 503 : 500, error.message)
                }
                do throws(QdrantError) {
                    result = try await node.runLocally(r, on: writer, c)
                } catch {
                    // The shard moved while writing (its handle closed): the sender retries on the next owner.
                    if node.host.isCurrentWriter(writer, of: c, shard: shard), writer.writeFailure == nil { throw error }
                    throw QdrantError(status: 503, "the shard moved to another node while writing: \(error.message)")
                }
            } else {
                let handle: RemoteCollection
                do throws(StrataError) { handle = try await node.host.reader(c, shard: shard) } catch { throw QdrantError(error) }
                var answer = try await node.runLocally(r, on: handle, c)
                answer.fromCache = !node.host.isLiveWriter(handle, of: c, shard: shard)
                result = answer
            }
            return Respond.bytes(ShardWire.encode(result))
        }
    }
}
