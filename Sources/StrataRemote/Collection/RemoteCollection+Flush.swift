// Flush of a remote collection: the buffered rows become a segment in the store, pending deletes of
// sealed rows become delete bitmaps, and one commit moves the head to a manifest that names them
// and whose WAL sequence is past every WAL object the buffer holds. Those WAL objects then hold
// nothing the head needs (gc removes them after its grace period).
//
// A schema change (RemoteCollection+Schema.swift) is a flush whose manifest also carries the grown
// schema: the WAL objects from its sequence on are the first encoded against it.
//
// Racing a compactor: the commit loses, the flush re-reads the head and, when only segments
// changed (a compaction: same WAL sequence), makes its bitmaps again against the new version and
// retries; the segment it uploaded stays valid. Any other change to the head means another
// writer: this one is fenced out.
import Strata
import StrataFormat

extension RemoteCollection {
    /// The flush itself; run by the committer, never alongside a write. With `columns`, the commit
    /// also appends them to the schema (and happens even with nothing buffered); nil is returned
    /// when there is nothing to flush and no column is new.
    func flushNow(growing columns: [ColumnSpec]? = nil) async throws(StrataError) -> StrataCollection.FlushSummary? {
        try checkWritable()
        try checkLease()
        try await resolveUncertain()
        let start = monotonicSeconds()
        let (m, base, baseHead, baseRevision, next) = state.withLock { ($0.mem, $0.version, $0.head, $0.headRevision, $0.nextSequence) }
        let schema = base.manifest.schema
        var grown: SegmentSchema? = nil
        if let columns {
            do throws(StrataError) { grown = try schema.adding(columns) } catch {
                var e = error
                e.path = layout.address
                throw e
            }
            if grown == nil { return nil }
        }
        guard !m.isEmpty || grown != nil else { return nil }
        // Files this flush writes into the cache: held (FileReferences) so that no eviction removes
        // them between their creation and the Version that references them; removed on failure.
        var localFiles: [String] = []
        var held: [String] = []
        defer { FileReferences.shared.release(held) }
        func hold(_ name: String) {
            localFiles.append(name)
            held.append(cache.path(name))
            FileReferences.shared.retain([cache.path(name)])
        }
        do throws(StrataError) {
            var entry: ManifestSegment? = nil
            if !m.index.isEmpty {
                let name = CollectionFiles.newSegmentName(.writer)
                hold(name)
                let (path, writerOptions) = (cache.path(name), options.collection.segmentWriterOptions.sealing(schema, growingTo: grown))
                let e = try await offPool("strata-flush") { () throws(StrataError) in
                    try m.sealSegment(path: path, name: name, schema: schema, options: writerOptions)
                }
                _ = try await store.upload(layout.segmentObject(name), fromFile: cache.path(name), condition: .ifAbsent)
                FaultPoint.afterSegmentUpload.reach()
                entry = e
            }
            var bitmapsWritten = 0, deletesApplied = 0
            let committed = try await commitRebasing("flush", base: base, current: (baseHead, baseRevision)) { (fresh) throws(StrataError) in
                // Against each version tried: a rebase makes the bitmaps again (the ones made for
                // the old version are orphans then; gc removes them from the store).
                let (changed, applied) = try fresh.deleteBitmaps(applying: m.sealedDeletes)
                var edit = ManifestEdit(walSequence: next, schema: grown)
                for (s, bitmap) in changed.sorted(by: { $0.key < $1.key }) {
                    let name = CollectionFiles.newBitmapName(.writer)
                    hold(name)
                    try bitmap.write(to: cache.path(name))
                    _ = try await store.upload(layout.bitmapObject(name), fromFile: cache.path(name), condition: .ifAbsent)
                    edit.bitmaps.append(ManifestEdit.BitmapChange(segment: fresh.segments[s].entry.name, file: name,
                                                                  deletedCount: UInt64(bitmap.deletedCount)))
                }
                edit.addedSegment = entry
                (bitmapsWritten, deletesApplied) = (changed.count, applied)
                return try edit.applied(to: fresh.manifest, now: WallClock.milliseconds())
            }
            // Committed: the buffer's rows are in the head now, whatever happens below.
            localFiles = []
            try await install(committed, what: "flush", clearBuffer: true)
            return options.collection.observer.flushed(indexed: entry?.indexed ?? false, StrataCollection.FlushSummary(
                segment: entry?.name, rows: entry.map { Int($0.rowCount) } ?? 0, bytes: entry?.fileBytes ?? 0, bitmapsWritten: bitmapsWritten,
                deletesApplied: deletesApplied, generation: committed.manifest.generation, seconds: monotonicSeconds() - start))
        } catch {
            for name in localFiles { cache.discard(name) }
            throw error
        }
    }
}
