// `strata pull s3://… DIR`: writes a consistent local copy of one generation of a remote
// collection. The generation is pinned (a leased key under `pins/`, as a reader's) for as long as
// the copy runs, so that gc keeps its objects. Segments and bitmaps are downloaded under temporary
// names, checked, renamed; the records of the WAL objects after the head become the local WAL
// (`wal-<sequence>.log`); MANIFEST is written last, so that a pull that dies leaves a directory
// that `open` refuses (collection files without a MANIFEST), never a partial collection.
import Strata
import StrataFormat

extension RemoteTransfer {
    /// Copies the current generation of the collection at `layout` (and the writes acknowledged
    /// after it) into `directory`, which must be empty or absent, as a local collection that
    /// `StrataCollection.open` opens. Throws `.alreadyExists` for a non-empty directory,
    /// `.notFound` when there is no collection, `.checksumMismatch` / `.corrupt` / `.truncated`
    /// naming a damaged object (what was written is removed again), `.io` when the store or etcd
    /// cannot be reached.
    public func pull(from layout: RemoteLayout, to directory: String) async throws(StrataError) -> TransferSummary {
        let start = monotonicSeconds()
        if FileSystem.exists(directory) {
            guard FileSystem.isDirectory(directory) else { throw StrataError(.io, "not a directory", path: directory) }
            let present = try FileSystem.list(directory)
            guard present.isEmpty else {
                throw StrataError(.alreadyExists, "the directory is not empty (\(present.count) entries); pull writes only into an empty one", path: directory)
            }
        }
        try FileSystem.makeDirectory(directory)
        let lease = try await LeaseKeeper.start(store: metadata, ttlSeconds: options.pinLeaseSeconds)
        let token = options.nodeName + "-" + RemoteLayout.randomHex()
        var written: [String] = []
        do throws(StrataError) {
            let (head, manifest) = try await pinnedCurrent(layout: layout, pinKey: layout.pinKey(token), lease: lease.lease)
            var files: [(name: String, bytes: UInt64?)] = []
            for s in manifest.segments {
                files.append((s.name, s.fileBytes))
                if let d = s.deleteFile { files.append((d, nil)) }
            }
            written = files.map(\.name)
            let store = self.store
            try await Self.forEach(files, limit: parallelFiles) { (file) throws(StrataError) in
                let key = layout.object(forFile: file.name)
                let path = "\(directory)/\(file.name)"
                let temp = FileSystem.temporaryPath(for: path)
                do throws(StrataError) {
                    _ = try await store.download(key, toFile: temp)
                    try Self.verify(name: file.name, path: temp, bytes: file.bytes, context: "damaged object \(store.address(of: key))")
                    try FileSystem.rename(temp, to: path)
                } catch {
                    FileSystem.removeIfPresent(temp)
                    throw error
                }
            }
            var bytes = files.reduce(UInt64(0)) { $0 + ($1.bytes ?? ((try? FileSystem.fileSize("\(directory)/\($1.name)")) ?? 0)) }

            // The writes acknowledged after the head: one local WAL at the head's sequence.
            let (batches, next) = try await RemoteLoader.walRecords(store: store, layout: layout, from: manifest.walSequence,
                                                                    schema: manifest.schema)
            let records = batches.flatMap { $0 }
            let walName = CollectionFiles.walName(manifest.walSequence)
            let log = WALFormat.encodeLog(records, sequence: manifest.walSequence, schema: manifest.schema)
            written.append(walName)
            try publishAtomically(log, to: "\(directory)/\(walName)")
            bytes += UInt64(log.count)

            var local = manifest
            local.obsolete = []
            let manifestBytes = local.encoded()
            written.append("MANIFEST")
            try publishAtomically(manifestBytes, to: "\(directory)/MANIFEST")
            try FileSystem.syncParentDirectory(of: directory + "/MANIFEST")
            bytes += UInt64(manifestBytes.count)
            try? await lease.revoke()
            return TransferSummary(generation: head.generation, segments: manifest.segments.count,
                                   bitmaps: manifest.segments.filter { $0.deleteFile != nil }.count,
                                   segmentRows: manifest.segments.reduce(0) { $0 + $1.rowCount }, walRecords: records.count,
                                   walObjects: Int(next - manifest.walSequence), bytes: bytes, seconds: monotonicSeconds() - start)
        } catch {
            try? await lease.revoke()
            for name in written { FileSystem.removeIfPresent("\(directory)/\(name)") }
            throw error
        }
    }

    /// Reads the head, pins its manifest under `pinKey` (attached to `lease`), then fetches the
    /// manifest checked against the head. A manifest gone by then (the head moved on and gc
    /// removed it) starts again from a fresh head.
    private func pinnedCurrent(layout: RemoteLayout, pinKey: String, lease: Int64) async throws(StrataError) -> (RemoteHead, Manifest) {
        var attempt = 0
        while true {
            guard let (head, _) = try await RemoteLoader.readHead(metadata: metadata, layout: layout) else {
                throw StrataError(.notFound, "no collection here (no head in etcd at \(metadata.endpoint))", path: layout.address)
            }
            try await metadata.put(pinKey, value: Array(head.manifest.utf8), lease: lease)
            do {
                return (head, try await RemoteLoader.manifest(of: head, store: store))
            } catch where error.code == .notFound && attempt < 5 {
                attempt += 1
            }
        }
    }
}
