// `strata verify s3://...`: a remote collection checked without changing it. The head against its
// manifest object (size and checksum), collection.json, every segment and bitmap the manifest
// names (downloaded fresh into a private cache directory, so that the store's bytes are checked,
// not an older cached copy: the cache rejects a corrupt or truncated object, then the engine's
// segment verification and bitmap checks run as for a local collection), and the WAL objects
// after the head (contiguous, every record's checksum). Problems name the object.
import Foundation
import Strata
import StrataFormat

/// What ``RemoteCollection/verify(layout:store:metadata:options:)`` found.
package struct RemoteVerifyReport: Sendable {
    /// Problems, segments and bytes checked, live rows, as for a local collection (problems name
    /// objects, `s3://bucket/key`, or the head's etcd key).
    package var report: CollectionVerifyReport
    /// The generation the head named (nil when the head could not be read).
    package var generation: UInt64?
    /// Objects fetched and checked (manifest, collection.json, segments, bitmaps, WAL objects).
    package var objectsChecked = 0
    /// WAL objects after the head that were checked.
    package var walObjectsChecked = 0
}

extension RemoteCollection {
    /// Checks the collection at `layout` and changes nothing in it: reads the head, pins its
    /// manifest while it checks (so that gc keeps what it reads), and downloads every object it
    /// names into a temporary directory under the cache directory, removed at the end. Throws
    /// `.notFound` when there is no collection and `.io` when etcd or the store cannot be reached;
    /// damage is reported, not thrown.
    package static func verify(layout: RemoteLayout, store: any ObjectStore, metadata: any MetadataStore,
                               options: RemoteOptions) async throws(StrataError) -> RemoteVerifyReport {
        var out = RemoteVerifyReport(report: CollectionVerifyReport())
        guard let kv = try await metadata.get(layout.headKey) else {
            throw StrataError(.notFound, "no collection here (no head in etcd at \(metadata.endpoint))", path: layout.address)
        }
        let head: RemoteHead
        do { head = try RemoteHead.decode(kv.value, key: layout.headKey) } catch {
            out.report.problems.append(error)
            return out
        }
        out.generation = head.generation
        let lease = try await LeaseKeeper.start(store: metadata, ttlSeconds: options.pinLeaseSeconds)
        let root = options.cache.directory + "/verify-" + RemoteLayout.randomHex()
        do throws(StrataError) {
            try await metadata.put(layout.pinKey(options.nodeName + "-verify-" + RemoteLayout.randomHex()),
                                   value: Array(head.manifest.utf8), lease: lease.lease)
            let cache = try SegmentCache(options: SegmentCacheOptions(directory: root, capacityBytes: .max,
                                                                      parallelDownloads: options.cache.parallelDownloads),
                                         store: store, layout: layout)
            try await check(head: head, into: &out, cache: cache, layout: layout, store: store, options: options)
        } catch {
            try? await lease.revoke()
            try? FileManager.default.removeItem(atPath: root)
            throw error
        }
        try? await lease.revoke()
        try? FileManager.default.removeItem(atPath: root)
        return out
    }

    private static func check(head: RemoteHead, into out: inout RemoteVerifyReport, cache: SegmentCache, layout: RemoteLayout,
                              store: any ObjectStore, options: RemoteOptions) async throws(StrataError) {
        // A finding is recorded; an unreachable store (.io) ends the check.
        func finding(_ error: StrataError) throws(StrataError) {
            if error.code == .io { throw error }
            out.report.problems.append(error)
        }
        let manifest: Manifest
        do {
            manifest = try await RemoteLoader.manifest(of: head, store: store)
            out.objectsChecked += 1
        } catch {
            var e = error
            if e.code == .notFound { e.message = "the manifest object the head names is missing: " + e.message }
            try finding(e)
            return
        }
        do {
            try checkDescription(try await store.get(layout.collectionObject), schema: manifest.schema,
                                 address: store.address(of: layout.collectionObject))
            out.objectsChecked += 1
        } catch {
            try finding(error)
        }

        // Segments and bitmaps: all at once, then one by one to name every bad object.
        var files: [(name: String, bytes: UInt64?)] = []
        for s in manifest.segments {
            files.append((s.name, s.fileBytes))
            if let d = s.deleteFile { files.append((d, nil)) }
        }
        var bad = Set<String>()
        do {
            try await cache.ensure(files)
        } catch where error.code != .io {
            for f in files {
                do { try await cache.ensure([f]) } catch {
                    try finding(error)
                    bad.insert(f.name)
                }
            }
        }
        out.objectsChecked += files.count - bad.count
        var sound = manifest
        sound.segments = manifest.segments.filter { !bad.contains($0.name) && !bad.contains($0.deleteFile ?? "") }
        // The engine's segment and bitmap checks over the downloaded files, naming objects.
        StrataCollection.verifyFiles(of: sound, in: cache.directory, address: { store.address(of: layout.object(forFile: $0)) },
                                     report: &out.report)

        // The WAL objects after the head: contiguous, every record sound.
        var records: [WALRecord] = []
        let after = head.walSequence > 0 ? layout.walObject(head.walSequence - 1) : nil
        var expected = head.walSequence
        for info in try await store.list(prefix: layout.walPrefix, startAfter: after) {
            guard let sequence = layout.walSequence(ofKey: info.key) else { continue }
            if sequence != expected {
                out.report.problems.append(StrataError(.corrupt, "WAL object \(expected) is missing (the next one is \(sequence)): "
                                                       + "acknowledged writes may be lost", path: store.address(of: layout.walObject(expected)),
                                                       section: "wal"))
            }
            expected = sequence + 1
            do {
                let bytes = try await store.get(info.key)
                records += try WALFormat.decodeLog(bytes, sequence: sequence, schema: manifest.schema, path: store.address(of: info.key))
                out.report.bytesChecked += UInt64(bytes.count)
                out.walObjectsChecked += 1
                out.objectsChecked += 1
            } catch {
                try finding(error)
            }
        }

        // Live rows and unique live ids, when everything above is sound.
        guard out.report.problems.isEmpty else { return }
        do {
            let version = try Version.open(directory: cache.directory, manifest: manifest, reusing: nil,
                                           options: options.collection.segmentOpenOptions)
            var mem = MemTable()
            for r in records { mem.apply(r, version: version, schema: manifest.schema) }
            let snapshot = CollectionSnapshot(version: version, mem: mem, schema: manifest.schema)
            if let problem = snapshot.duplicateLiveIds(path: layout.address) { out.report.problems.append(problem) }
            out.report.liveRows = snapshot.count
        } catch {
            try finding(error)
        }
    }

    /// `collection.json` must say it is a Strata collection of the manifest's shape. It keeps the
    /// schema the collection was created with: the manifest's columns may extend its columns
    /// (columns added since; the manifest is authoritative).
    private static func checkDescription(_ bytes: [UInt8], schema: SegmentSchema, address: String) throws(StrataError) {
        let expected = RemoteCollectionDescription(schema: schema)
        guard bytes.count < 1 << 20, let found = try? JSONDecoder().decode(RemoteCollectionDescription.self, from: Data(bytes)),
              found.format == expected.format else {
            throw StrataError(.corrupt, "not a Strata collection description", path: address)
        }
        guard found.dimension == expected.dimension, found.metric == expected.metric, found.elementType == expected.elementType,
              expected.columns.starts(with: found.columns) else {
            throw StrataError(.corrupt, "describes \(found.dimension) dims \(found.elementType) \(found.metric) [\(found.columns.joined(separator: ", "))]; "
                              + "the manifest holds \(expected.dimension) dims \(expected.elementType) \(expected.metric) "
                              + "[\(expected.columns.joined(separator: ", "))]", path: address)
        }
    }
}
