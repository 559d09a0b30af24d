// Which shard a point belongs to, and which live node owns a shard (docs/SERVE.md, "Placement").
// Both are pure functions of stable inputs, so every node computes the same answer from the same
// membership without talking to the others.
import StrataFormat

/// Shard and owner placement.
package enum ShardPlacement {
    /// The shard of point `id` in a collection of `shardCount` shards: XXH3-64 (seed 0) of the id's
    /// 8 little-endian bytes, modulo `shardCount`. Fixed forever: a row never moves between shards.
    package static func shard(of id: UInt64, shardCount: Int) -> Int {
        precondition(shardCount >= 1)
        var le = id.littleEndian
        let h = withUnsafeBytes(of: &le) { Checksum.xxh3($0) }
        return Int(h % UInt64(shardCount))
    }

    /// The owner (writer) of shard `shard` of the collection whose unique id is `collectionUID`:
    /// rendezvous hashing, the node whose XXH3-64 of the UTF-8 bytes `<node id> 0x00 <collection
    /// uid> 0x00 <shard in decimal>` is the highest (ties by the smaller node id). When a node
    /// leaves, only its shards move; when one joins, it takes about 1/N of them.
    package static func owner(collectionUID: String, shard: Int, nodes: [String]) -> String? {
        var best: (score: UInt64, node: String)? = nil
        for node in nodes {
            let s = score(node: node, collectionUID: collectionUID, shard: shard)
            if let b = best, b.score > s || (b.score == s && b.node < node) { continue }
            best = (s, node)
        }
        return best?.node
    }

    /// The rendezvous score of `node` for a shard.
    package static func score(node: String, collectionUID: String, shard: Int) -> UInt64 {
        var bytes = Array(node.utf8)
        bytes.append(0)
        bytes += Array(collectionUID.utf8)
        bytes.append(0)
        bytes += Array(String(shard).utf8)
        return bytes.withUnsafeBytes { Checksum.xxh3($0) }
    }
}
