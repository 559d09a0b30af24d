// The write path of a remote collection: a write is acknowledged once its WAL object is in the
// store, so no acknowledged row depends on one machine's disk.
//
// Group commit: writes and flushes queue up; one committer task at a time takes every write
// waiting (up to a flush, and up to `groupBytes`), checks each against the state the ones before
// it leave (an insert of a live id is refused alone), and stores their records as ONE WAL object
// `wal/<sequence>.log` written with If-None-Match: *. The sequence is the fencing token: when the
// PUT finds the sequence taken, another writer has replaced this one, which stops.
//
// A PUT that fails without an answer (the store went away mid-request) leaves the object's
// existence unknown: the writes are reported failed, and before the next write the committer reads
// that sequence back. If the object is there, its records are durable and are applied (a failed
// write that in fact happened, as with a local WAL whose fsync answer is lost); if not, the
// sequence is reused.
import Strata
import StrataFormat

/// Writes waiting for the committer.
struct WriteQueue {
    var pending: [PendingWrite] = []
    var running = false
}

/// One queued write or flush and where its caller waits.
struct PendingWrite {
    enum Kind {
        case put([BufferedInput], upsert: Bool)
        case delete([UInt64])
        case flush
        /// A flush that also appends these columns to the schema (RemoteCollection+Schema.swift).
        case addColumns([ColumnSpec])
        /// A bulk import (RemoteCollection+Import.swift).
        case importSegments(RemoteImportJob)
    }
    enum Done {
        case written(Int)
        case flushed(StrataCollection.FlushSummary?)
        case imported(StrataCollection.ImportSummary)
    }
    var kind: Kind
    var done: CheckedContinuation<Result<Done, StrataError>, Never>

    /// Whether the committer runs it alone (a flush, with or without a schema change, or an import).
    var isFlush: Bool {
        switch kind {
        case .flush, .addColumns, .importSegments: return true
        case .put, .delete: return false
        }
    }

    /// About how many bytes the write's WAL record takes.
    var approximateBytes: Int {
        switch kind {
        case .put(let rows, _):
            var n = 0
            for r in rows {
                n += 16 + 4 * r.vector.count + 32 * r.values.count
                if let s = r.sparse { n += 4 + 8 * s.indices.count }
            }
            return n
        case .delete(let ids): return 8 * ids.count
        case .flush, .addColumns, .importSegments: return 0
        }
    }
}

extension RemoteCollection {
    /// The most bytes of records one WAL object gathers from waiting writes (one write larger than
    /// this goes alone).
    static let groupBytes = 64 << 20

    /// Inserts rows; acknowledged (durable in the store) when this returns. Throws
    /// `.duplicateId` when an id repeats in the batch or is live (use ``upsert(_:)``), the
    /// validation errors of a local collection, `.io` when the store cannot be reached (the write
    /// may or may not have happened; a later write or reopen settles which), `.busy` when this
    /// writer was fenced out. May flush when the buffer passes its threshold.
    public func insert(_ rows: [SegmentRow]) async throws(StrataError) { try await put(rows, upsert: false) }

    /// Inserts rows, replacing live rows with the same ids; acknowledged when this returns.
    public func upsert(_ rows: [SegmentRow]) async throws(StrataError) { try await put(rows, upsert: true) }

    /// Deletes rows by id; acknowledged when this returns. Ids that are not live are ignored;
    /// returns how many rows were deleted.
    @discardableResult
    public func delete(ids: [UInt64]) async throws(StrataError) -> Int {
        try checkWritable()
        guard !ids.isEmpty else { return 0 }
        try WALFormat.checkSize(.delete(ids: ids), path: layout.address)
        guard case .written(let n) = try await submit(.delete(ids)) else { return 0 }
        return n
    }

    /// Seals the buffered rows into a segment in the store, turns pending deletes into bitmaps and
    /// commits a new head. Returns nil when there was nothing to flush.
    @discardableResult
    public func flush() async throws(StrataError) -> StrataCollection.FlushSummary? {
        try checkWritable()
        guard case .flushed(let s) = try await submit(.flush) else { return nil }
        return s
    }

    private func put(_ rows: [SegmentRow], upsert: Bool) async throws(StrataError) {
        try checkWritable()
        let inputs = try StrataCollection.validate(rows, schema: schema, path: layout.address)
        guard !inputs.isEmpty else { return }
        try WALFormat.checkSize(.put(rows: inputs, upsert: upsert), path: layout.address)
        _ = try await submit(.put(inputs, upsert: upsert))
        options.collection.observer.inserted(rows: inputs.count)
    }

    func checkWritable() throws(StrataError) {
        guard access == .readWrite else { throw StrataError(.invalidArgument, "collection is open read-only", path: layout.address) }
        if let failed = state.withLock({ $0.failed }) { throw failed }
    }

    /// Queues a write and waits for the committer's answer.
    func submit(_ kind: PendingWrite.Kind) async throws(StrataError) -> PendingWrite.Done {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<PendingWrite.Done, StrataError>, Never>) in
            let start = queue.withLock { q -> Bool in
                q.pending.append(PendingWrite(kind: kind, done: c))
                if q.running { return false }
                q.running = true
                return true
            }
            if start { Task { await self.runCommitter() } }
        }
        return try result.get()
    }

    /// Takes groups off the queue until it is empty.
    private func runCommitter() async {
        while true {
            let batch: [PendingWrite] = queue.withLock { q in
                guard !q.pending.isEmpty else {
                    q.running = false
                    return []
                }
                if q.pending[0].isFlush { return [q.pending.removeFirst()] }
                var n = 0, bytes = 0
                while n < q.pending.count, !q.pending[n].isFlush, n == 0 || bytes + q.pending[n].approximateBytes <= Self.groupBytes {
                    bytes += q.pending[n].approximateBytes
                    n += 1
                }
                let group = Array(q.pending[..<n])
                q.pending.removeFirst(n)
                return group
            }
            guard !batch.isEmpty else { return }
            if batch[0].isFlush {
                do {
                    if case .importSegments(let job) = batch[0].kind {
                        batch[0].done.resume(returning: .success(.imported(try await importNow(job))))
                        continue
                    }
                    var columns: [ColumnSpec]? = nil
                    if case .addColumns(let c) = batch[0].kind { columns = c }
                    batch[0].done.resume(returning: .success(.flushed(try await flushNow(growing: columns))))
                } catch {
                    batch[0].done.resume(returning: .failure(error))
                }
                continue
            }
            await commitGroup(batch)
        }
    }

    /// Checks a group of writes, stores their records as one WAL object, applies them, answers.
    private func commitGroup(_ batch: [PendingWrite]) async {
        func answerAll(_ e: StrataError) { for p in batch { p.done.resume(returning: .failure(e)) } }
        do {
            try checkWritable()
            try checkLease()
            try await resolveUncertain()
        } catch {
            return answerAll(error)
        }
        var (mem, version, sequence) = state.withLock { ($0.mem, $0.version, $0.nextSequence) }
        // The schema of the WAL objects after the head. A write checked before columns were added
        // (it queued behind the change) has fewer values: the new columns are nullable, so it
        // gets nulls there.
        let schema = version.manifest.schema
        var answers: [Result<PendingWrite.Done, StrataError>] = []
        var records: [WALRecord] = []
        for p in batch {
            switch p.kind {
            case .put(var rows, let upsert):
                for i in rows.indices where rows[i].values.count < schema.columns.count {
                    rows[i].values = rows[i].values.padded(to: schema.columns.count)
                }
                if !upsert, let dup = rows.first(where: { mem.isLive($0.id, in: version) }) {
                    answers.append(.failure(StrataError(.duplicateId, "id \(dup.id) already exists (use upsert to replace it)", path: layout.address)))
                    continue
                }
                let r = WALRecord.put(rows: rows, upsert: upsert)
                mem.apply(r, version: version, schema: schema)
                records.append(r)
                answers.append(.success(.written(rows.count)))
            case .delete(let ids):
                var seen = Set<UInt64>()
                let live = ids.filter { seen.insert($0).inserted && mem.isLive($0, in: version) }
                if !live.isEmpty {
                    let r = WALRecord.delete(ids: live)
                    mem.apply(r, version: version, schema: schema)
                    records.append(r)
                }
                answers.append(.success(.written(live.count)))
            case .flush, .addColumns, .importSegments:
                // Never in a group: the committer runs these alone.
                answers.append(.success(.flushed(nil)))
            }
        }
        if !records.isEmpty {
            let key = layout.walObject(sequence)
            let bytes = WALFormat.encodeLog(records, sequence: sequence, schema: schema)
            do throws(StrataError) {
                try await storeWALObject(key, bytes)
                FaultPoint.afterWALPut.reach()
                // A PUT that landed after this writer's lease ran out (a long stall) is durable, but
                // a new writer may be past it: not acknowledged; the next write settles it.
                guard lease.isAlive else {
                    throw StrataError(.io, "the writer lease expired while the WAL object was being stored", path: store.address(of: key))
                }
                sequence += 1
                state.withLock { s in
                    s.mem = mem
                    s.nextSequence = sequence
                }
            } catch {
                if error.code == .io { state.withLock { $0.uncertain = (sequence, bytes) } }
                let e = error.code == .io
                    ? StrataError(.io, "write not acknowledged (its WAL object may or may not be stored; the next write or a reopen settles it): \(error.message)",
                                  path: error.path ?? layout.address)
                    : error
                return answerAll(e)
            }
        }
        for (p, a) in zip(batch, answers) { p.done.resume(returning: a) }
        let full = mem.index.count >= options.collection.flushThresholdRows || mem.bytes >= options.collection.flushThresholdBytes
        if full { _ = try? await flushNow() }
    }

    /// PUTs a WAL object with If-None-Match: *. A 412 is ours when the object holds our bytes (a
    /// retried PUT whose first attempt landed); otherwise another writer took the sequence.
    private func storeWALObject(_ key: String, _ bytes: [UInt8]) async throws(StrataError) {
        do {
            _ = try await store.put(key, body: bytes, condition: .ifAbsent)
        } catch where error.code == .alreadyExists {
            let there: [UInt8]
            do throws(StrataError) {
                there = try await store.get(key)
            } catch {
                // Cannot tell whose object it is yet: unsettled, like a PUT without an answer.
                throw StrataError(.io, "WAL object exists but could not be read back: \(error.message)", path: store.address(of: key))
            }
            if there == bytes { return }
            let e = Self.fenced(layout, "another writer wrote WAL object \(store.address(of: key))")
            state.withLock { if $0.failed == nil { $0.failed = e } }
            throw e
        }
    }

    /// Settles a WAL object whose PUT got no answer: applies it when it is in the store, frees its
    /// sequence when not. Throws (and stays unsettled) while the store cannot be reached.
    func resolveUncertain() async throws(StrataError) {
        guard let u = state.withLock({ $0.uncertain }) else { return }
        let key = layout.walObject(u.sequence)
        let there: [UInt8]
        do {
            there = try await store.get(key)
        } catch where error.code == .notFound {
            state.withLock { $0.uncertain = nil }
            return
        }
        guard there == u.bytes else {
            let e = Self.fenced(layout, "another writer wrote WAL object \(store.address(of: key))")
            state.withLock { $0.failed = e; $0.uncertain = nil }
            throw e
        }
        // Written against the schema of the state it was made in, which only a flush changes, and
        // flushes settle this first.
        let schema = state.withLock { $0.version.manifest.schema }
        let records = try WALFormat.decodeLog(there, sequence: u.sequence, schema: schema, path: store.address(of: key))
        state.withLock { s in
            for r in records { s.mem.apply(r, version: s.version, schema: schema) }
            s.nextSequence = u.sequence + 1
            s.uncertain = nil
        }
    }

    /// Throws (and stops this writer) once its lease is lost.
    func checkLease() throws(StrataError) {
        guard lease.isAlive else {
            let e = Self.fenced(layout, "its writer lease in etcd expired")
            state.withLock { if $0.failed == nil { $0.failed = e } }
            throw e
        }
    }
}
