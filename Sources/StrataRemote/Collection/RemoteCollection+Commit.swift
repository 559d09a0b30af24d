// The commit loop a writer's flush and import share: publish a manifest built on the version this
// writer holds; when a compactor committed first (the head moved, its WAL sequence did not, and the
// writer key still holds this writer's token), build the manifest again on the compacted version and
// retry; any other loss means another writer, and this one is fenced out. Then install what was
// committed as the writer's state.
import Strata
import StrataFormat

extension RemoteCollection {
    /// A manifest this writer committed, the head that names it, and the version it was built on.
    struct WriterCommit {
        var manifest: Manifest
        var head: RemoteHead
        var revision: Int64
        var base: Version
    }

    /// Commits the manifest `make(version)` builds, starting from `base` at head `current`,
    /// rebasing over compactions as the file comment says. `what` names the operation in errors.
    /// - Throws: what `make` throws, the commit's errors, `.busy` when fenced out (the writer is
    ///   marked failed) or after `options.commitAttempts` lost races.
    func commitRebasing(_ what: String, base: Version, current: (RemoteHead, Int64),
                        make: (Version) async throws(StrataError) -> Manifest) async throws(StrataError) -> WriterCommit {
        let loader = RemoteLoader(store: store, metadata: metadata, layout: layout, cache: cache, options: options)
        let commit = RemoteCommit(store: store, metadata: metadata, layout: layout, nodeName: options.nodeName)
        var fresh = base
        var current = current
        for _ in 0..<max(1, options.commitAttempts) {
            let manifest = try await make(fresh)
            switch try await commit.publish(manifest, replacing: current, writerToken: token) {
            case .committed(let head, let revision):
                return WriterCommit(manifest: manifest, head: head, revision: revision, base: fresh)
            case .lost(let now, let writerHeld):
                guard writerHeld, let now, now.0.walSequence == current.0.walSequence else {
                    let why = !writerHeld ? "the writer key no longer holds this writer's token"
                        : now == nil ? "the collection's head is gone" : "the head moved to another WAL sequence"
                    let e = Self.fenced(layout, why)
                    state.withLock { if $0.failed == nil { $0.failed = e } }
                    throw e
                }
                // A compaction committed: rebase onto it.
                fresh = try await loader.load(now.0, revision: now.1, reusing: fresh).version
                current = now
            }
        }
        throw StrataError(.busy, "\(what) lost the commit race \(options.commitAttempts) times in a row; try again", path: layout.address)
    }

    /// Makes a committed manifest this writer's state: its version (opened reusing the one it was
    /// built on; a file missing from the cache is fetched back), the head, an empty buffer when
    /// `clearBuffer`; then re-pins the head and evicts. The commit stands whatever happens here:
    /// when the version cannot be opened, the writer is marked failed ("reopen the collection")
    /// and that error is thrown.
    func install(_ c: WriterCommit, what: String, clearBuffer: Bool) async throws(StrataError) {
        let loader = RemoteLoader(store: store, metadata: metadata, layout: layout, cache: cache, options: options)
        let version: Version
        do throws(StrataError) {
            version = try await loader.open(c.manifest, reusing: c.base)
        } catch {
            let e = StrataError(error.code, "\(what) committed generation \(c.manifest.generation) but could not open it: \(error.message); "
                                + "reopen the collection", path: error.path ?? layout.address)
            state.withLock { s in
                s.head = c.head
                s.headRevision = c.revision
                if clearBuffer { s.mem = MemTable() }
                if s.failed == nil { s.failed = e }
            }
            throw e
        }
        state.withLock { s in
            s.head = c.head
            s.headRevision = c.revision
            s.version = version
            if clearBuffer { s.mem = MemTable() }
        }
        _ = try? await metadata.put(layout.pinKey(token), value: Array(c.head.manifest.utf8), lease: lease.lease)
        cache.evict()
    }
}
