// A collection as the commands see it, local (a directory) or remote (`s3://BUCKET/PATH`): the
// operations `insert`, `delete`, `flush`, `stats`, `search` and `dump` share, so that each command
// has one body and one printer for both. `CollectionHandles.with` opens the one an argument names
// and closes it (and, for a remote one, its clients) at the end, however the command ends.
import Foundation
import Strata
import StrataFormat
import StrataRemote
import StrataTools

/// A batch write that failed, and whether the batch is in the collection anyway (nil: unknown).
struct BatchFailure: Error {
    var error: StrataError
    var committed: Bool?
}

/// An open collection, local or remote.
protocol CollectionHandle: AnyObject {
    /// The collection as the user named it.
    var location: String { get }
    /// Vector shape, metric and payload columns.
    var schema: SegmentSchema { get }
    /// How each batch is made durable, for messages.
    var durability: String { get }
    /// The current view.
    func snapshot() async throws(StrataError) -> CollectionSnapshot
    /// Inserts (or upserts) one batch, durable when this returns.
    func put(_ rows: [SegmentRow], upsert: Bool) async throws(BatchFailure)
    /// Deletes rows by id; returns how many were live.
    func delete(ids: [UInt64]) async throws(StrataError) -> Int
    /// Seals the buffer into a segment and pending deletes into bitmaps.
    func flush() async throws(StrataError) -> StrataCollection.FlushSummary?
    /// Segments, rows, deletes and bytes.
    func stats() async throws(StrataError) -> CollectionStats
    /// The local file of segment `name` of the current view (for a remote collection, fetched
    /// through the cache) and how to name it; `.notFound` when the view has no such segment.
    func segmentFile(named name: String) async throws(StrataError) -> (path: String, shownAs: String)
    /// Builds the job's segments and publishes them in one manifest edit (`strata import`).
    func importSegments(_ job: BulkImportJob) async throws(StrataError) -> StrataCollection.ImportSummary
    /// Releases the collection (locks, leases, clients).
    func close() async
}

/// A collection directory.
final class LocalCollectionHandle: CollectionHandle {
    let collection: StrataCollection
    let location: String
    var schema: SegmentSchema { collection.schema }
    var durability: String { "fsync per batch" }

    init(_ collection: StrataCollection, location: String) {
        self.collection = collection
        self.location = location
    }

    func snapshot() async throws(StrataError) -> CollectionSnapshot { try collection.snapshot() }

    func put(_ rows: [SegmentRow], upsert: Bool) async throws(BatchFailure) {
        let mark: CollectionStats
        do { mark = try collection.stats() } catch { throw BatchFailure(error: error, committed: false) }
        do {
            if upsert { try collection.upsert(rows) } else { try collection.insert(rows) }
        } catch {
            // A failure after the WAL append (an automatic flush) leaves the batch committed.
            guard let after = try? collection.stats() else { throw BatchFailure(error: error, committed: nil) }
            throw BatchFailure(error: error, committed: after.walSequence != mark.walSequence || after.walBytes > mark.walBytes)
        }
    }

    func delete(ids: [UInt64]) async throws(StrataError) -> Int { try collection.delete(ids: ids) }
    func flush() async throws(StrataError) -> StrataCollection.FlushSummary? { try collection.flush() }
    func stats() async throws(StrataError) -> CollectionStats { try collection.stats() }

    func segmentFile(named name: String) async throws(StrataError) -> (path: String, shownAs: String) {
        let manifest = try collection.snapshot().manifest
        guard manifest.segments.contains(where: { $0.name == name }) else {
            throw StrataError(.notFound, "generation \(manifest.generation) has no segment \(name) (segments: "
                              + (manifest.segments.isEmpty ? "none" : manifest.segments.map(\.name).joined(separator: ", ")) + ")", path: location)
        }
        return (location + "/" + name, location + "/" + name)
    }

    func importSegments(_ job: BulkImportJob) async throws(StrataError) -> StrataCollection.ImportSummary {
        try collection.importSegments(count: job.count, threads: job.threads, writerOptions: job.writerOptions, describe: job.describe, fill: job.fill)
    }

    func close() async { collection.close() }
}

/// A collection in an object store, with its head in etcd.
final class RemoteCollectionHandle: CollectionHandle {
    let collection: RemoteCollection
    let target: RemoteTarget
    var location: String { target.address.description }
    var schema: SegmentSchema { collection.schema }
    var durability: String { "one WAL object per batch" }

    init(_ collection: RemoteCollection, target: RemoteTarget) {
        self.collection = collection
        self.target = target
    }

    /// The current view; when etcd or the store could not be reached, the last one loaded, with a
    /// note on stderr.
    func snapshot() async throws(StrataError) -> CollectionSnapshot {
        let s = try await collection.snapshot()
        if let stale = s.stale { FileHandle.standardError.write(Data("strata: note: \(location): \(stale)\n".utf8)) }
        return s.snapshot
    }

    func put(_ rows: [SegmentRow], upsert: Bool) async throws(BatchFailure) {
        do {
            if upsert { try await collection.upsert(rows) } else { try await collection.insert(rows) }
        } catch {
            // An I/O failure may or may not have stored the batch's WAL object (its answer was lost).
            throw BatchFailure(error: error, committed: error.code == .io ? nil : false)
        }
    }

    func delete(ids: [UInt64]) async throws(StrataError) -> Int { try await collection.delete(ids: ids) }
    func flush() async throws(StrataError) -> StrataCollection.FlushSummary? { try await collection.flush() }

    /// As for a local collection; the WAL bytes are those of the WAL objects after the head.
    func stats() async throws(StrataError) -> CollectionStats {
        var s = CollectionStats(snapshot: try await snapshot(), walSideFiles: [])
        s.walBytes = try await collection.walObjectsAfterHead().reduce(0) { $0 + $1.size }
        return s
    }

    func segmentFile(named name: String) async throws(StrataError) -> (path: String, shownAs: String) {
        (try await collection.cachedSegment(named: name), location + "/seg/" + name)
    }

    func importSegments(_ job: BulkImportJob) async throws(StrataError) -> StrataCollection.ImportSummary {
        try await collection.importSegments(count: job.count, threads: job.threads, writerOptions: job.writerOptions,
                                            describe: job.describe, fill: job.fill)
    }

    func close() async { await collection.close() }
}

/// Opening the collection an argument names.
enum CollectionHandles {
    /// Opens the collection `text` names (a directory or `s3://BUCKET/PATH`), runs `body`, and
    /// closes it, and for a remote one shuts its clients down, however `body` ends. A local one
    /// opened for writing says on stderr when its open moved a torn WAL tail aside.
    static func with<T>(_ text: String, access: CollectionAccess, options: CollectionOptions = CollectionOptions(), remote: RemoteFlags,
                        _ body: (any CollectionHandle) async throws -> T) async throws -> T {
        switch try CollectionLocation(text) {
        case .local(let path):
            // A command exits once its write returns: its flushes build their indexes themselves
            // (a background build would be abandoned at the exit).
            var options = options
            options.backgroundIndex = false
            let c = access == .readWrite ? try openCollectionForWriting(path, options: options)
                                         : try StrataCollection.open(path: path, access: .readOnly, options: options)
            return try await run(LocalCollectionHandle(c, location: path), body)
        case .remote(let address):
            return try await RemoteTarget.with(address, flags: remote, collection: options) { target in
                try await run(RemoteCollectionHandle(try await target.open(access), target: target), body)
            }
        }
    }

    private static func run<T>(_ handle: any CollectionHandle, _ body: (any CollectionHandle) async throws -> T) async throws -> T {
        let result: T
        do {
            result = try await body(handle)
        } catch {
            await handle.close()
            throw error
        }
        await handle.close()
        return result
    }
}
