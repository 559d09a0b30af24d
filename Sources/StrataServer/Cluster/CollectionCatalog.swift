// The cluster's collections in etcd: create (if absent), read, list, change by compare-and-swap,
// delete. Every node reads the same keys; a change made through one node is seen by the others
// through their watch (ClusterView.swift).
import StrataFormat
import StrataRemote

/// The collections of one cluster, in etcd.
package struct CollectionCatalog: Sendable {
    package let metadata: any MetadataStore
    package let keys: ServeKeys

    package init(metadata: any MetadataStore, keys: ServeKeys) {
        self.metadata = metadata
        self.keys = keys
    }

    /// Every collection, by name.
    package func list() async throws(StrataError) -> [ServedCollection] {
        var out: [ServedCollection] = []
        for kv in try await metadata.range(prefix: keys.collectionsPrefix) {
            out.append(try ServedCollection.decode(kv.value, key: kv.key))
        }
        return out
    }

    /// The collection called `name` and its key's mod revision, or nil.
    package func get(_ name: String) async throws(StrataError) -> (ServedCollection, Int64)? {
        let key = keys.collectionKey(name)
        guard let kv = try await metadata.get(key) else { return nil }
        return (try ServedCollection.decode(kv.value, key: key), kv.modRevision)
    }

    /// Stores `collection` when no collection of its name exists and returns the key's revision;
    /// nil when one does.
    package func createIfAbsent(_ collection: ServedCollection) async throws(StrataError) -> Int64? {
        let key = keys.collectionKey(collection.name)
        let r = try await metadata.txn(compare: [.createRevision(key, equals: 0)],
                                       success: [.put(key, collection.encoded(), lease: 0)], failure: [])
        return r.succeeded ? r.revision : nil
    }

    /// Applies `change` to the collection by compare-and-swap, re-reading and retrying when another
    /// node changed it first. Returns the stored result and its revision; nil when the collection
    /// does not exist. `change` returns nil to leave the definition as it is.
    package func update(_ name: String,
                        _ change: (ServedCollection) throws(StrataError) -> ServedCollection?) async throws(StrataError) -> (ServedCollection, Int64)? {
        let key = keys.collectionKey(name)
        for _ in 0..<50 {
            guard let (current, revision) = try await get(name) else { return nil }
            guard let next = try change(current) else { return (current, revision) }
            let r = try await metadata.txn(compare: [.modRevision(key, equals: revision)],
                                           success: [.put(key, next.encoded(), lease: 0)], failure: [])
            if r.succeeded { return (next, r.revision) }
        }
        throw StrataError(.busy, "the collection's definition changed 50 times while this change was being made", path: key)
    }

    /// Deletes the definition of `name` if it is still `uid`'s and returns the deletion's
    /// revision; nil when it was not there.
    package func delete(_ name: String, uid: String) async throws(StrataError) -> Int64? {
        let key = keys.collectionKey(name)
        guard let (current, revision) = try await get(name), current.uid == uid else { return nil }
        let r = try await metadata.txn(compare: [.modRevision(key, equals: revision)], success: [.delete(key)], failure: [])
        return r.succeeded ? r.revision : nil
    }
}
