// `strata gc s3://…`: removes what a remote collection no longer needs (RemoteGCPlan.swift says
// what), aborts multipart uploads left behind longer than the grace period, then commits a
// manifest whose obsolete list no longer names what was removed (one etcd transaction on the head
// as read; when it loses to another commit the entries stay, and the next run drops them, finding
// their objects gone).
//
// Safe beside writers, readers and compactors: nothing a committed head or a live pin names is
// removed, and everything else waits out the grace period, which must be longer than any commit
// takes from its first upload to its etcd transaction (default one hour).
import Strata
import StrataFormat

/// What a gc pass found and did.
public struct RemoteGCSummary: Sendable {
    /// Whether this was a dry run (nothing deleted, aborted or committed).
    public var dryRun: Bool
    /// The grace period, seconds.
    public var graceSeconds: Double
    /// The head's generation when the pass read it.
    public var generation: UInt64
    /// Generations that live pins hold (besides the head's).
    public var pinnedGenerations: [UInt64]
    /// Pins that name a manifest the store no longer has (skipped).
    public var missingPins: [String]
    /// The lowest WAL sequence kept for the head and the pins.
    public var minimumWALSequence: UInt64
    /// Objects kept, by kind.
    public var kept: [RemoteObjectKind: ObjectTally]
    /// Objects deleted (or, in a dry run, that would be), by kind.
    public var deleted: [RemoteObjectKind: ObjectTally]
    /// Objects deleted, by why.
    public var deletedBy: [RemoteGCReason: ObjectTally]
    /// Keys of the deleted objects, in key order.
    public var deletedKeys: [String]
    /// Multipart uploads aborted (or that would be).
    public var uploadsAborted: Int
    /// Obsolete-list entries the committed manifest dropped (or would drop).
    public var obsoleteEntriesRemoved: Int
    /// The generation gc committed (nil: nothing to commit, a dry run, or it lost to another commit).
    public var committedGeneration: UInt64?
    /// Why the commit was skipped, when it was.
    public var commitSkipped: String?
    /// Wall-clock seconds.
    public var seconds: Double

    /// Objects deleted, all kinds.
    public var deletedTotal: ObjectTally { deleted.values.reduce(into: ObjectTally()) { $0.objects += $1.objects; $0.bytes += $1.bytes } }
    /// Objects kept, all kinds.
    public var keptTotal: ObjectTally { kept.values.reduce(into: ObjectTally()) { $0.objects += $1.objects; $0.bytes += $1.bytes } }
}

/// Garbage collection of a remote collection (library form of `strata gc`).
public struct RemoteGarbageCollector: Sendable {
    /// Where the collection lives.
    public let layout: RemoteLayout
    let store: any ObjectStore
    let metadata: any MetadataStore
    /// Objects are removed only this long after they were dropped (or, for orphans, written).
    /// Default 3,600.
    public var graceSeconds: Double = 3600
    /// Decide and report only.
    public var dryRun = false
    /// Deletes in flight at once. Default 16.
    public var parallelDeletes = 16
    /// A name for this process in the manifest object key it commits.
    public var nodeName: String = RemoteOptions.defaultNodeName()

    /// A collector for the collection at `layout`.
    public init(layout: RemoteLayout, store: any ObjectStore, metadata: any MetadataStore) {
        self.layout = layout
        self.store = store
        self.metadata = metadata
    }

    /// One pass. Throws `.notFound` when there is no collection, `.io` when the store or etcd
    /// cannot be reached, `.corrupt` / `.checksumMismatch` when the head's manifest or a pinned
    /// one is damaged (nothing is deleted then: what they reference is unknown).
    public func run() async throws(StrataError) -> RemoteGCSummary {
        let start = monotonicSeconds()
        let (current, manifest) = try await RemoteLoader.current(store: store, metadata: metadata, layout: layout)
        let (pinned, missing) = try await pinnedManifests(except: current.0.manifest)
        // Listed after the head and pins were read: whatever a commit adds meanwhile is younger
        // than the grace period, and whatever it drops is still named by the head read above.
        let objects = try await store.list(prefix: layout.root)
        let now = WallClock.milliseconds()
        // At most 1e12 s (a value past that would overflow milliseconds); NaN counts as 0.
        let grace = UInt64(min(max(0, graceSeconds.isNaN ? 0 : graceSeconds), 1e12) * 1000)
        let plan = RemoteGCPlan.make(layout: layout, objects: objects, headKey: current.0.manifest, head: manifest,
                                     pinned: pinned, now: now, graceMilliseconds: grace)
        var summary = RemoteGCSummary(dryRun: dryRun, graceSeconds: graceSeconds, generation: manifest.generation,
                                      pinnedGenerations: pinned.values.map(\.generation).sorted(), missingPins: missing,
                                      minimumWALSequence: plan.minimumWALSequence, kept: [:], deleted: [:], deletedBy: [:],
                                      deletedKeys: plan.delete.map(\.object.key).sorted(), uploadsAborted: 0,
                                      obsoleteEntriesRemoved: manifest.obsolete.count - plan.remainingObsolete.count,
                                      committedGeneration: nil, commitSkipped: nil, seconds: 0)
        for k in plan.keep { summary.kept[k.kind, default: ObjectTally()].add(k.object.size) }
        for d in plan.delete {
            summary.deleted[d.kind, default: ObjectTally()].add(d.object.size)
            summary.deletedBy[d.reason, default: ObjectTally()].add(d.object.size)
        }
        let stale = try await store.pendingUploads(prefix: layout.root).filter {
            now >= $0.initiatedMilliseconds && now - $0.initiatedMilliseconds >= grace
        }
        summary.uploadsAborted = stale.count
        if !dryRun {
            try await deleteAll(plan.delete.map(\.object.key))
            for upload in stale { try await store.abortUpload(upload) }
            if plan.remainingObsolete.count != manifest.obsolete.count {
                var next = manifest
                next.generation += 1
                next.createdMilliseconds = now
                next.obsolete = plan.remainingObsolete
                let commit = RemoteCommit(store: store, metadata: metadata, layout: layout, nodeName: nodeName)
                switch try await commit.publish(next, replacing: current, writerToken: nil) {
                case .committed: summary.committedGeneration = next.generation
                case .lost: summary.commitSkipped = "another commit moved the head; the next run drops the obsolete entries"
                }
            }
        }
        summary.seconds = monotonicSeconds() - start
        return summary
    }

    /// The largest manifest object a pin may name (a manifest of a million segments is about 70 MB).
    static let largestManifest: UInt64 = 256 << 20

    /// The manifests live pins name (other than `headKey`), by key, and the pins whose manifest
    /// is gone. A pin whose value is not a manifest key of this collection is ignored.
    private func pinnedManifests(except headKey: String) async throws(StrataError) -> ([String: Manifest], [String]) {
        var pinned: [String: Manifest] = [:]
        var missing: [String] = []
        for kv in try await metadata.range(prefix: layout.pinPrefix) {
            let key = String(decoding: kv.value, as: UTF8.self)
            guard key != headKey, pinned[key] == nil, layout.manifestGeneration(ofKey: key) != nil else { continue }
            // A pin is a few bytes anyone with etcd access can write: look at the size before reading.
            guard let info = try await store.head(key) else {
                missing.append(kv.key)
                continue
            }
            guard info.size <= Self.largestManifest else {
                throw StrataError(.corrupt, "pin \(kv.key) names an object of \(info.size) bytes, too large for a manifest",
                                  path: store.address(of: key), section: "manifest")
            }
            let bytes: [UInt8]
            do {
                bytes = try await store.get(key)
            } catch where error.code == .notFound {
                missing.append(kv.key)
                continue
            }
            pinned[key] = try bytes.withBytes { (raw) throws(StrataError) -> Manifest in
                try Manifest.decode(raw, path: store.address(of: key))
            }
        }
        return (pinned, missing)
    }

    /// Deletes the objects, `parallelDeletes` at a time.
    private func deleteAll(_ keys: [String]) async throws(StrataError) {
        guard !keys.isEmpty else { return }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var next = 0
                func add() {
                    let key = keys[next]
                    next += 1
                    group.addTask { try await store.delete(key) }
                }
                for _ in 0..<min(max(1, parallelDeletes), keys.count) { add() }
                while try await group.next() != nil {
                    if next < keys.count { add() }
                }
            }
        } catch let e as StrataError {
            throw e
        } catch {
            throw StrataError(.io, "deleting objects failed: \(error)", path: layout.address)
        }
    }
}
