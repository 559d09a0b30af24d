// What `strata dump s3://...` and `strata stats s3://...` show beyond a snapshot: the head this
// handle read from etcd, the WAL objects after it, and one segment fetched through the cache
// (`dump --segment NAME`).
import Strata
import StrataFormat

/// The head a remote collection handle loaded: the value of its etcd key, and that key's revision.
package struct RemoteHeadSummary: Sendable, Equatable {
    /// The etcd key (`/strata/v1/<bucket>/<prefix>/head`).
    package var key: String
    /// The manifest's generation.
    package var generation: UInt64
    /// The manifest object's key in the bucket.
    package var manifest: String
    /// XXH3-64 of the manifest object, 16 hex digits.
    package var checksum: String
    /// The manifest object's size.
    package var bytes: UInt64
    /// The first WAL object sequence the manifest's segments do not hold.
    package var walSequence: UInt64
    /// The head key's etcd mod_revision when it was read.
    package var modRevision: Int64
}

extension RemoteCollection {
    /// The head this handle's view comes from.
    package var headSummary: RemoteHeadSummary {
        state.withLock { s in
            RemoteHeadSummary(key: layout.headKey, generation: s.head.generation, manifest: s.head.manifest, checksum: s.head.checksum,
                              bytes: s.head.bytes, walSequence: s.head.walSequence, modRevision: s.headRevision)
        }
    }

    /// `s3://bucket/key` of an object key.
    package func address(of key: String) -> String { store.address(of: key) }

    /// The WAL objects from the head's sequence on (the acknowledged writes no segment holds yet),
    /// in sequence order.
    package func walObjectsAfterHead() async throws(StrataError) -> [ObjectInfo] {
        let sequence = state.withLock { $0.head.walSequence }
        let after = sequence > 0 ? layout.walObject(sequence - 1) : nil
        return try await store.list(prefix: layout.walPrefix, startAfter: after).filter { layout.walSequence(ofKey: $0.key) != nil }
    }

    /// The local path of segment `name` of the current view, fetched into the cache (and checked)
    /// when it is not there. Throws `.notFound` when the view has no such segment.
    package func cachedSegment(named name: String) async throws(StrataError) -> String {
        let manifest = try await snapshot().snapshot.manifest
        guard let entry = manifest.segments.first(where: { $0.name == name }) else {
            let names = manifest.segments.map(\.name)
            throw StrataError(.notFound, "generation \(manifest.generation) has no segment \(name) (segments: "
                              + (names.isEmpty ? "none" : names.joined(separator: ", ")) + ")", path: layout.address)
        }
        try await cache.ensure([(entry.name, entry.fileBytes)])
        return cache.path(entry.name)
    }
}
