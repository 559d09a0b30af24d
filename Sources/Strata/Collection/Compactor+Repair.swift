// Repair of derived data (`strata verify --repair DIR`): a segment whose index or search sections
// (pq_codebook, pq_codes, graph, payload_index, text_index) fail their checksums or do not parse is
// rewritten from its primary sections by a one-input compaction task: its live rows are copied
// (every primary section checked as it is read), the derived sections rebuilt with the options read
// from the segment itself, and the output published by the compactor's manifest edit.
//
// Primary data (header, directory, schema, ids, id_index, vectors, payload columns, sparse_index,
// the delete bitmap) is never rebuilt: a segment with damage there is reported and left as it is.
// In a format 2.0 indexed segment the graph is primary too: its records are the only copy of the
// vectors (a damaged graph there is reported, not rebuilt).
// In a collection, sparse_index is primary: a row's sparse vector is stored nowhere else.
import StrataFormat
import StrataIndex

/// What ``Compactor/repair()`` found and did.
public struct RepairResult: Sendable {
    /// A segment rebuilt from its primary sections.
    public struct Repaired: Sendable {
        /// The damaged segment (now obsolete).
        public var segment: String
        /// The damage found in its derived sections (each names the file, section and offset).
        public var damage: [StrataError]
        /// The finished rewrite task.
        public var done: CompactionResult.Done
        /// How the rebuild options were found (e.g. a parameter not readable from the damaged section).
        public var notes: [String]
    }
    /// True when another compaction held COMPACT.lock: nothing was checked or changed.
    public var lockBusy: Bool
    /// Segments checked.
    public var segmentsChecked: Int
    /// Segments rebuilt and published.
    public var repaired: [Repaired]
    /// Damage that repair must not touch (primary data), or a segment it could not rebuild; each
    /// names the file, the section and the offset where known. Nothing was changed for these.
    public var unrepaired: [StrataError]
    /// Wall-clock seconds.
    public var seconds: Double
}

extension Compactor {
    /// Section labels of the derived sections (what ``Segment/verify(progress:)`` and open name them).
    static let derivedSectionLabels: Set<String> = ["pq_codebook", "pq codebook", "pq_codes", "graph", "payload_index", "text_index"]

    /// Checks every segment of the collection and rebuilds those whose only damage is in derived
    /// sections (see the file comment); segments with primary damage are reported in
    /// ``RepairResult/unrepaired`` and left unchanged. Takes COMPACT.lock without waiting (returns
    /// `lockBusy` when another compaction holds it), so it excludes a compaction, like `strata
    /// compact`; a writer may keep writing (deletes it publishes meanwhile are carried over).
    /// Throws for a directory without a readable MANIFEST, before anything is locked.
    public func repair() throws(StrataError) -> RepairResult {
        let start = monotonicSeconds()
        guard FileSystem.isDirectory(path) else { throw StrataError(.io, "not a directory", path: path) }
        _ = try Manifest.read(directory: path)
        guard let lock = try FileLock.acquire(CollectionFiles.compactLock(path), wait: false) else {
            return RepairResult(lockBusy: true, segmentsChecked: 0, repaired: [], unrepaired: [], seconds: monotonicSeconds() - start)
        }
        defer { lock.unlock() }
        var result = try repairLocked(only: nil)
        if !result.repaired.isEmpty { try Maintenance.cleanUp(directory: path, owner: .compactor, graceSeconds: policy.graceSeconds) }
        result.seconds = monotonicSeconds() - start
        return result
    }

    /// The segment that `error` (thrown while a version was opened) names when it is a derived
    /// section of a live segment that does not parse: what ``run(maxTasks:)`` repairs before it plans.
    func segmentWithDerivedDamage(_ error: StrataError) -> String? {
        guard let p = error.path, p.hasPrefix(path + "/"), let s = error.section, Self.derivedSectionLabels.contains(s) else { return nil }
        return String(p.dropFirst(path.count + 1))
    }

    /// ``repair()``'s work, with COMPACT.lock held by the caller: every segment, or those of `only`.
    func repairLocked(only: Set<String>?) throws(StrataError) -> RepairResult {
        let (manifest, opened) = try openPrimaryVersion()
        var result = RepairResult(lockBusy: false, segmentsChecked: 0, repaired: [], unrepaired: [], seconds: 0)
        let segments = opened.compactMap { try? $0.get() }
        var toRepair: [(OpenSegment, [StrataError])] = []
        for (entry, open) in zip(manifest.segments, opened) where only?.contains(entry.name) ?? true {
            result.segmentsChecked += 1
            let input: OpenSegment
            do { input = try open.get() } catch {
                result.unrepaired.append(error)
                continue
            }
            let (primary, derived) = inspect(input.segment)
            if !primary.isEmpty {
                result.unrepaired += primary
                if !derived.isEmpty {
                    result.unrepaired.append(StrataError(.corrupt, "derived sections are damaged too (\(derived.compactMap(\.section).joined(separator: ", "))), "
                                                         + "but a segment is rebuilt only from sound primary sections", path: "\(path)/\(entry.name)"))
                }
            } else if !derived.isEmpty {
                toRepair.append((input, derived))
            }
        }
        for (input, damage) in toRepair {
            let name = input.entry.name
            do throws(StrataError) {
                let (policy, notes) = try rebuildPolicy(for: input.segment, others: segments.map(\.segment))
                let live = Int(input.entry.rowCount - input.entry.deletedCount)
                let task = CompactionTask(kind: .rewrite, inputs: [name], liveRows: live, deletedRows: Int(input.entry.deletedCount),
                                          inputBytes: input.entry.fileBytes, estimatedMemoryBytes: 0,
                                          reason: "repair: damaged " + Set(damage.compactMap(\.section)).sorted().joined(separator: ", "))
                guard let done = try Compactor(path: path, policy: policy).runTask(task, inputs: [input], schema: manifest.schema) else {
                    throw StrataError(.corrupt, "segment is no longer live: not repaired", path: "\(path)/\(name)")
                }
                result.repaired.append(.init(segment: name, damage: damage, done: done, notes: notes))
            } catch {
                result.unrepaired.append(error.inFile("\(path)/\(name)"))
            }
        }
        return result
    }

    /// The current manifest and each of its segments opened by ``openPrimary(_:manifest:)`` (or why
    /// not), under MANIFEST.lock, so that no publisher removes a file between the read and the opens.
    private func openPrimaryVersion() throws(StrataError) -> (Manifest, [Result<OpenSegment, StrataError>]) {
        let mlock = try ManifestEdit.lockManifest(directory: path)
        defer { mlock.unlock() }
        let m = try Manifest.read(directory: path)
        var opened: [Result<OpenSegment, StrataError>] = []
        for entry in m.segments {
            do { opened.append(.success(try openPrimary(entry, manifest: m))) } catch { opened.append(.failure(error)) }
        }
        return (m, opened)
    }

    /// `entry`'s segment opened without its derived sections, with its delete bitmap; throws the
    /// primary damage that stops it from opening (header, directory, schema, columns, sparse_index,
    /// bitmap) or a mismatch with the manifest.
    private func openPrimary(_ entry: ManifestSegment, manifest: Manifest) throws(StrataError) -> OpenSegment {
        var options = SegmentOpenOptions(cacheBudgetBytes: 0)
        options.skipsDerivedSections = true
        let segment = try Segment.open(path: "\(path)/\(entry.name)", options: options)
        // A damaged schema would otherwise show as a mismatch with the manifest: name the section.
        try segment.checkSectionChecksums([.schema])
        guard UInt64(segment.rowCount) == entry.rowCount, manifest.fits(segment.schema, entry: entry) else {
            throw StrataError(.corrupt, "segment \(entry.name) does not match its manifest entry (rows, dimension, metric or columns)",
                              path: CollectionFiles.manifest(path), section: "manifest")
        }
        var bitmap: DeleteBitmap? = nil
        if let d = entry.deleteFile {
            bitmap = try DeleteBitmap.read(path: "\(path)/\(d)")
            guard bitmap!.rowCount == segment.rowCount, UInt64(bitmap!.deletedCount) == entry.deletedCount else {
                throw StrataError(.corrupt, "delete bitmap \(d) does not match segment \(entry.name)", path: "\(path)/\(d)", section: "delete_bitmap")
            }
        }
        return OpenSegment(entry: entry, segment: segment, bitmap: bitmap)
    }

    /// The damage in `segment` (opened without its derived sections), split into primary and
    /// derived: every section checksum and the primary invariants (``Segment/verify(progress:)``), then,
    /// when the checksums hold, a full open and the structural checks of the derived sections.
    private func inspect(_ segment: Segment) -> (primary: [StrataError], derived: [StrataError]) {
        var primary: [StrataError] = [], derived: [StrataError] = []
        // In a format 2.0 indexed segment the graph records are the only copy of the vectors.
        let graphIsPrimary = !segment.derivedSectionKinds.contains(.graph)
        func sort(_ e: StrataError) {
            if let s = e.section, Self.derivedSectionLabels.contains(s), !(graphIsPrimary && s == "graph") {
                derived.append(e)
            } else {
                primary.append(e)
            }
        }
        segment.verify().problems.forEach(sort)
        let hasDerived = segment.sections.contains { $0.kind.map(segment.derivedSectionKinds.contains) ?? false }
        guard primary.isEmpty, derived.isEmpty, hasDerived else { return (primary, derived) }
        do {
            let full = try Segment.open(path: segment.path, options: SegmentOpenOptions(cacheBudgetBytes: 0))
            full.indexAndSearchProblems().forEach(sort)
        } catch {
            // The primary sections opened and checked sound: what fails now is a derived section.
            var e = error
            if e.section.map({ !Self.derivedSectionLabels.contains($0) }) ?? true { e.message += " (a derived section does not parse)" }
            derived.append(e.inFile(segment.path))
        }
        return (primary, derived)
    }

    /// The policy that rebuilds `segment` with the index options it was built with, read from the
    /// segment itself: PQ sub-spaces from the pq_codes length (the directory is checksummed), the
    /// graph degree R from the graph header when it parses (else the default, noted), the rows per
    /// payload block from the column blocks, the payload-indexed and BM25 columns from the section
    /// tables (read leniently) and from the other segments. Build parameters a segment does not
    /// record (L, alpha, passes, PQ training) are the defaults. Throws when the BM25 columns of a
    /// damaged text_index cannot be told (rebuilding without them would change BM25 results).
    private func rebuildPolicy(for segment: Segment, others: [Segment]) throws(StrataError) -> (CompactionPolicy, [String]) {
        var p = CompactionPolicy()
        p.graceSeconds = policy.graceSeconds
        p.memoryBudgetBytes = policy.memoryBudgetBytes
        var notes: [String] = []
        func section(_ kind: SectionKind) -> SectionInfo? { segment.sections.first { $0.kind == kind } }
        if section(.graph) != nil || section(.pqCodes) != nil || section(.pqCodebook) != nil {
            var ix = IndexOptions()
            ix.minimumRows = 1
            if let codes = section(.pqCodes), segment.rowCount > 0, codes.length % UInt64(segment.rowCount) == 0, codes.length > 0 {
                ix.pqSubspaces = Int(codes.length / UInt64(segment.rowCount))
            } else {
                notes.append("PQ sub-spaces not readable: default")
            }
            if let g = section(.graph), let r = Self.graphDegree(of: segment, graph: g) {
                ix.graph.maxDegree = r
            } else {
                notes.append("graph degree R not readable from the damaged graph header: default R \(ix.graph.maxDegree)")
            }
            p.index = ix
        } else {
            p.index = nil
        }
        if let first = segment.columns.first, first.blocks.count > 1 { p.rowsPerBlock = Int(first.blocks[1].firstRow) }
        // Columns of a table: this segment's (when readable) and every other segment's, as a merge keeps them.
        func columns(_ kind: SectionKind) throws(StrataError) -> [String] {
            let own = Self.tableColumns(of: segment, kind: kind)
            var all = Set(own ?? [])
            for o in others where o !== segment { all.formUnion(Self.tableColumns(of: o, kind: kind) ?? []) }
            if own == nil {
                guard !all.isEmpty || kind == .payloadIndex else {
                    throw StrataError(.corrupt, "the columns the damaged text_index covered cannot be read, nor taken from another segment: not repaired",
                                      path: segment.path, section: kind.description, offset: section(kind)?.offset)
                }
                notes.append("\(kind) columns not readable from the damaged section: took \(all.isEmpty ? "none" : all.sorted().joined(separator: ", ")) from the other segments")
            }
            return all.sorted()
        }
        p.search = SearchSectionOptions(indexedColumns: try columns(.payloadIndex), bm25Columns: try columns(.textIndex))
        return (p, notes)
    }

    /// The maximum degree R the graph section of `segment` was built with: from its header when it
    /// parses; else the R at header byte 32 or the one whose record size is the one at byte 36,
    /// whichever (alone) gives a layout of the section's length (the directory is checksummed).
    /// nil when that does not single one out.
    static func graphDegree(of segment: Segment, graph g: SectionInfo) -> Int? {
        let bytes = segment.sectionBytes(g)
        if let view = try? DiskGraphView(bytes: bytes) { return view.maxDegree }
        guard bytes.count >= 40 else { return nil }
        let stated = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 32, as: UInt32.self)))
        let recordSize = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 36, as: UInt32.self)))
        // Either layout version (row order, block-aware) may have written the section.
        let found = Set((1...1024).flatMap { r in [false, true].compactMap { blocks -> Int? in
            guard let geo = try? DiskGraphLayout.Geometry(count: segment.rowCount, dimension: segment.schema.dimension,
                                                          elementType: segment.schema.elementType, maxDegree: r,
                                                          blockLayout: blocks) else { return nil }
            return geo.totalBytes == bytes.count && (r == stated || geo.recordSize == recordSize) ? r : nil
        } })
        return found.count == 1 ? found.first : nil
    }

    /// The column names of a payload_index or text_index section's table (a 32-byte header with the
    /// entry count at byte 12, then 32-byte entries that start with the column ordinal), read
    /// without trusting the rest of the section; [] without the section, nil when the table does
    /// not make sense (count or ordinals out of range, repeated, a BM25 column that is not text).
    static func tableColumns(of segment: Segment, kind: SectionKind) -> [String]? {
        guard let s = segment.sections.first(where: { $0.kind == kind }) else { return [] }
        let bytes = segment.sectionBytes(s)
        let columns = segment.schema.columns
        guard bytes.count >= 32 else { return nil }
        let count = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
        guard count <= columns.count, 32 + count * 32 <= bytes.count else { return nil }
        var names: [String] = []
        for i in 0..<count {
            let ordinal = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 32 + i * 32, as: UInt32.self)))
            guard ordinal < columns.count, !names.contains(columns[ordinal].name) else { return nil }
            if kind == .textIndex, columns[ordinal].type != .string, columns[ordinal].type != .stringList { return nil }
            names.append(columns[ordinal].name)
        }
        return names
    }
}

extension SectionKind {
    /// The sections rebuilt from the others (in a collection segment; sparse_index is primary there).
    static let derivedKinds: Set<SectionKind> = [.pqCodebook, .pqCodes, .graph, .payloadIndex, .textIndex]
}

extension Segment {
    /// The section kinds of this segment that repair may rebuild: ``SectionKind/derivedKinds``, less
    /// the graph when its records are the only copy of the vectors (format 2.0, indexed).
    var derivedSectionKinds: Set<SectionKind> {
        vectors.section == .graph ? SectionKind.derivedKinds.subtracting([.graph]) : SectionKind.derivedKinds
    }
}
