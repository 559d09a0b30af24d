// The head and its manifest as the maintenance jobs read them (compaction, gc, pull): no cache and
// no version, only the commit point and what it names.
import Strata
import StrataFormat

extension RemoteLoader {
    /// The head, its mod_revision and its manifest (checked against the head). Throws `.notFound`
    /// when there is no collection. A manifest that vanished between the head read and its fetch
    /// (the head moved on and gc removed the old one) is retried from a fresh head.
    static func current(store: any ObjectStore, metadata: any MetadataStore,
                        layout: RemoteLayout) async throws(StrataError) -> (head: (RemoteHead, Int64), manifest: Manifest) {
        var attempt = 0
        while true {
            guard let head = try await readHead(metadata: metadata, layout: layout) else {
                throw StrataError(.notFound, "no collection here (no head in etcd at \(metadata.endpoint))", path: layout.address)
            }
            do {
                return (head, try await manifest(of: head.0, store: store))
            } catch where error.code == .notFound && attempt < 5 {
                attempt += 1
            }
        }
    }
}
