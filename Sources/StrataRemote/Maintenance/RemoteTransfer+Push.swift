// `strata push DIR s3://…`: publishes a local collection as a new remote collection. One manifest
// version of the directory is read (with its WAL, as a read-only open does, changing nothing);
// its segments and bitmaps are checked and uploaded, several at a time; the WAL's records become
// one WAL object at the manifest's WAL sequence; then the manifest object, and the head is created
// by a transaction that holds only while there is none. A push that dies before that transaction
// leaves orphans only; run again, it reuses the objects it already uploaded.
import Strata
import StrataFormat

extension RemoteTransfer {
    /// Publishes the collection in `localDirectory` as a new remote collection at `layout`.
    /// Throws `.alreadyExists` when a collection exists there (or its prefix holds WAL objects of
    /// another one), `.checksumMismatch` / `.corrupt` / `.truncated` naming a damaged local file
    /// (nothing is committed then), `.io` when the store or etcd cannot be reached, and what a
    /// read-only open of the directory throws.
    public func push(localDirectory: String, to layout: RemoteLayout) async throws(StrataError) -> TransferSummary {
        let start = monotonicSeconds()
        let image = try CollectionImage.read(path: localDirectory)
        let manifest = image.manifest
        if try await metadata.get(layout.headKey) != nil {
            throw StrataError(.alreadyExists, "a collection already exists here (its head is in etcd at \(metadata.endpoint)); push refuses to replace it",
                              path: layout.address)
        }
        let walKey = layout.walObject(manifest.walSequence)
        let foreign = try await store.list(prefix: layout.walPrefix).filter { $0.key != walKey }
        guard foreign.isEmpty else {
            throw StrataError(.alreadyExists, "the prefix holds WAL objects of another collection (\(foreign[0].key), \(foreign.count) in all); "
                              + "push needs a fresh prefix", path: layout.address)
        }
        _ = try await putOnce(layout.collectionObject, RemoteCollectionDescription(schema: manifest.schema).encoded(), layout: layout, sameBytes: false)

        // Segments and bitmaps, each checked before it is uploaded.
        var files: [(name: String, bytes: UInt64?)] = []
        for s in manifest.segments {
            files.append((s.name, s.fileBytes))
            if let d = s.deleteFile { files.append((d, nil)) }
        }
        let store = self.store
        try await Self.forEach(files, limit: parallelFiles) { (file) throws(StrataError) in
            let path = "\(localDirectory)/\(file.name)"
            try Self.verify(name: file.name, path: path, bytes: file.bytes, context: "refusing to push a damaged file")
            let key = layout.object(forFile: file.name)
            do throws(StrataError) {
                _ = try await store.upload(key, fromFile: path, condition: .ifAbsent)
            } catch where error.code == .alreadyExists {
                // Uploaded by an earlier push of this collection that died before its commit.
                let size = try FileSystem.fileSize(path)
                guard let there = try await store.head(key), there.size == size else {
                    throw StrataError(.alreadyExists, "another object of this name exists with a different size", path: store.address(of: key))
                }
            }
        }
        var bytes = files.reduce(UInt64(0)) { $0 + ($1.bytes ?? ((try? FileSystem.fileSize("\(localDirectory)/\($1.name)")) ?? 0)) }

        // The WAL's records, as one WAL object at the manifest's sequence.
        var walObjects = 0
        if !image.records.isEmpty {
            let log = WALFormat.encodeLog(image.records, sequence: manifest.walSequence, schema: manifest.schema)
            bytes += try await putOnce(walKey, log, layout: layout, sameBytes: true)
            walObjects = 1
        }

        var published = manifest
        published.obsolete = []
        let commit = RemoteCommit(store: store, metadata: metadata, layout: layout, nodeName: options.nodeName)
        guard case .committed = try await commit.publish(published, replacing: nil, writerToken: nil) else {
            throw StrataError(.alreadyExists, "another process created a collection here during the push", path: layout.address)
        }
        bytes += UInt64(published.encoded().count)
        return TransferSummary(generation: manifest.generation, segments: manifest.segments.count,
                               bitmaps: manifest.segments.filter { $0.deleteFile != nil }.count,
                               segmentRows: manifest.segments.reduce(0) { $0 + $1.rowCount }, walRecords: image.records.count,
                               walObjects: walObjects, bytes: bytes, seconds: monotonicSeconds() - start)
    }

    /// PUTs `body` under `key` if absent; when present, accepts it if `sameBytes` is false or it
    /// holds these bytes (an earlier push that died), else throws `.alreadyExists`. Returns the size.
    private func putOnce(_ key: String, _ body: [UInt8], layout: RemoteLayout, sameBytes: Bool) async throws(StrataError) -> UInt64 {
        do {
            _ = try await store.put(key, body: body, condition: .ifAbsent)
        } catch where error.code == .alreadyExists {
            if sameBytes, try await store.get(key) != body {
                throw StrataError(.alreadyExists, "another object of this name exists with other contents", path: store.address(of: key))
            }
        }
        return UInt64(body.count)
    }
}
