// Where a serving cluster keeps its state: etcd keys for nodes and collections, and the object
// store prefix of every shard (docs/SERVE.md, "Keys and objects").
//
// In etcd, under /strata/serve/v1/<bucket>/<prefix>/:
//   nodes/<node id>         a live node: {"id", "url"}, attached to the node's lease
//   collections/<name>      a collection: ServedCollection as JSON (changed by compare-and-swap)
// In the bucket, shard i of a collection is a remote collection (docs/REMOTE-FORMAT.md) at
//   <prefix>/collections/<name>-<uid>/shard-<i, 4 digits>
// The uid, random per creation, keeps a collection created again under an old name away from
// the old one's objects.
import StrataRemote

/// The etcd keys and store prefixes of one cluster (one bucket and prefix).
package struct ServeKeys: Sendable, Equatable {
    /// The bucket.
    package let bucket: String
    /// The cluster's prefix in the bucket (no leading or trailing slash).
    package let prefix: String

    package init(bucket: String, prefix: String) {
        self.bucket = bucket
        self.prefix = prefix
    }

    /// `/strata/serve/v1/<bucket>/<prefix>/`.
    package var root: String { "/strata/serve/v1/\(bucket)/\(prefix)/" }
    package var nodesPrefix: String { root + "nodes/" }
    package func nodeKey(_ id: String) -> String { nodesPrefix + id }
    package var collectionsPrefix: String { root + "collections/" }
    package func collectionKey(_ name: String) -> String { collectionsPrefix + name }

    /// The remote collection that holds shard `shard` of `collection`.
    package func shardLayout(_ collection: ServedCollection, shard: Int) -> RemoteLayout {
        let n = String(shard)
        let padded = String(repeating: "0", count: max(0, 4 - n.count)) + n
        return RemoteLayout(bucket: bucket, prefix: "\(prefix)/collections/\(collection.name)-\(collection.uid)/shard-\(padded)")
    }

    /// The store prefix every object of `collection` starts with.
    package func collectionRoot(_ collection: ServedCollection) -> String {
        "\(prefix)/collections/\(collection.name)-\(collection.uid)/"
    }
}
