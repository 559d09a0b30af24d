// The commit point of every change to a remote collection: write the new manifest object (unique
// name, If-None-Match: *), then one etcd transaction "if the head's mod_revision is still r (and,
// for a writer, the writer key still holds my token), put the new head". Objects the change needs
// are uploaded before, so a crash at any step leaves either the old head (the new objects are
// orphans that gc removes after its grace period) or the new one (everything it names is stored).
import Strata
import StrataFormat

struct RemoteCommit: Sendable {
    let store: any ObjectStore
    let metadata: any MetadataStore
    let layout: RemoteLayout
    let nodeName: String

    /// How a publish ended.
    enum Outcome {
        /// The head now names the new manifest (at this mod_revision).
        case committed(RemoteHead, revision: Int64)
        /// Another commit got there first (or the writer key no longer holds the token): the head
        /// and its mod_revision as they are now (nil: no head), and whether the writer key still
        /// holds the token.
        case lost(current: (RemoteHead, Int64)?, writerHeld: Bool)
    }

    /// Writes `manifest` as a new object and makes it the head if the head is still
    /// `replacing` (head and mod_revision; nil: only if there is no head yet) and, when
    /// `writerToken` is given, the writer key holds it. When etcd's answer is lost, the head is
    /// read back to learn whether the transaction applied.
    func publish(_ manifest: Manifest, replacing: (RemoteHead, Int64)?, writerToken: String?) async throws(StrataError) -> Outcome {
        let bytes = manifest.encoded()
        let key = layout.manifestObject(generation: manifest.generation, writer: nodeName)
        _ = try await store.put(key, body: bytes, condition: .ifAbsent)
        FaultPoint.afterManifestPut.reach()
        let head = RemoteHead(manifest: manifest, key: key, bytes: bytes)
        var compare: [TxnCompare] = [.modRevision(layout.headKey, equals: replacing?.1 ?? 0)]
        if let writerToken { compare.append(.value(layout.writerKey, equals: Array(writerToken.utf8))) }
        let result: TxnResult
        do throws(StrataError) {
            result = try await metadata.txn(compare: compare, success: [.put(layout.headKey, head.encoded(), lease: 0)],
                                            failure: [.get(layout.headKey), .get(layout.writerKey)])
        } catch where error.code == .io {
            // The transaction may have applied before the answer was lost: the head says.
            guard let now = try? await RemoteLoader.readHead(metadata: metadata, layout: layout) else { throw error }
            if now.0.manifest == key { return .committed(now.0, revision: now.1) }
            throw error
        }
        if result.succeeded {
            FaultPoint.afterCommit.reach()
            return .committed(head, revision: result.revision)
        }
        var current: (RemoteHead, Int64)? = nil
        if let kv = result.reads.first ?? nil { current = (try RemoteHead.decode(kv.value, key: layout.headKey), kv.modRevision) }
        let holder = result.reads.count > 1 ? result.reads[1] : nil
        let held = writerToken.map { holder?.value == Array($0.utf8) } ?? true
        return .lost(current: current, writerHeld: held)
    }
}
