// Section checksums on the read path (docs/SEGMENT-FORMAT.md sections 8 and 10).
//
// `Segment.open` checks the header, footer and directory checksums but not the sections' own: open
// stays O(sections + blocks) whatever the size of the data, and payload blocks carry checksums that
// every decode checks. Code that must not act on bytes it has not checked asks for the sections it
// reads here first:
// - the compactor, for every section it copies from an input (vectors and ids hashed as they stream
//   through the copy, with ``SectionChecksumStream``; schema, id_index and columns up front);
// - a flush that resolves pending deletes through sealed segments (ids and id_index);
// - search, when the segment was opened with ``SegmentOpenOptions/verify`` (the sections a query
//   touches);
// - ``Segment/verify(progress:)`` and `strata scrub` (every section).
// A section found sound is remembered for the life of the `Segment` object (the file is immutable
// and mapped read-only), so each is hashed at most once per open however many callers ask.
import StrataFormat
import StrataIndex
import Synchronization

extension Segment {
    /// The name errors give a section: its kind, or `column 'name'` for a column section.
    func sectionLabel(_ s: SectionInfo) -> String {
        if s.kind == .column, Int(s.ordinal) < schema.columns.count { return "column '\(schema.columns[Int(s.ordinal)].name)'" }
        return s.kind?.description ?? "kind \(s.kindNumber)"
    }

    /// The mapped bytes of section `s` (its range was validated at open).
    func sectionBytes(_ s: SectionInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[Int(s.offset)..<Int(s.offset + s.length)])
    }

    /// The error for a section whose bytes do not hash to the checksum in the directory.
    func sectionChecksumError(_ s: SectionInfo, computed: UInt64) -> StrataError {
        StrataError(.checksumMismatch, "section checksum mismatch (directory says 0x\(String(s.checksum, radix: 16)), "
                    + "bytes hash to 0x\(String(computed, radix: 16)))", path: path, section: sectionLabel(s), offset: s.offset)
    }

    /// Records that section number `index` was found sound.
    func markSectionChecked(_ index: Int) {
        _ = checkedSections.withLock { $0.insert(index) }
    }

    /// Checks the checksum of every section of the given kinds that this object has not found sound
    /// yet, and remembers those that are. Throws `.checksumMismatch` naming the file, the section and
    /// its offset at the first mismatch. Thread-safe; costs one pass over each section the first
    /// time, a set look-up after.
    public func checkSectionChecksums(_ kinds: Set<SectionKind>) throws(StrataError) {
        let pending = checkedSections.withLock { checked in
            sections.indices.filter { i in !checked.contains(i) && sections[i].kind.map { kinds.contains($0) } == true }
        }
        for i in pending {
            let s = sections[i]
            // Open refuses a known kind with another checksum type, so this is XXH3.
            let computed = Checksum.xxh3(sectionBytes(s))
            guard computed == s.checksum else {
                // In a column, name the damaged block when its own checksum finds it.
                if s.kind == .column, let column = columns.first(where: { $0.ordinal == Int(s.ordinal) }) {
                    for b in column.blocks.indices {
                        do { _ = try column.decodeBlock(b) } catch { throw error.inFile(path) }
                    }
                }
                throw sectionChecksumError(s, computed: computed)
            }
            markSectionChecked(i)
        }
    }

    /// Before a read that uses sections of `kinds`: checks them when the segment was opened with
    /// ``SegmentOpenOptions/verify``; nothing otherwise.
    @inline(__always)
    func checkBeforeRead(_ kinds: Set<SectionKind>) throws(StrataError) {
        guard verifiesReads else { return }
        try checkSectionChecksums(kinds)
    }

    /// The sections a graph search reads (its records hold the full vectors it reranks with).
    static let graphSearchSections: Set<SectionKind> = [.pqCodebook, .pqCodes, .graph, .ids]
    /// The sections a filter reads (payload indexes where present, column blocks otherwise).
    static let filterSections: Set<SectionKind> = [.column, .payloadIndex]
    // One section kind each, for the row accessors and the sparse and BM25 searches: static, so
    // that a call of a per-row accessor builds no set (a set literal allocates). The vector and
    // exact-scan sets depend on the file: stored properties of `Segment`.
    static let idSections: Set<SectionKind> = [.ids]
    static let idIndexSections: Set<SectionKind> = [.idIndex]
    static let columnSections: Set<SectionKind> = [.column]
    static let sparseSections: Set<SectionKind> = [.sparseIndex]
    static let textSections: Set<SectionKind> = [.textIndex]
}

/// The checksum of one section computed from pieces read in file order, so that a caller that
/// reads the whole section anyway (the compactor copying vectors and ids) hashes the same pages as
/// it reads them instead of reading the section twice.
struct SectionChecksumStream {
    let segment: Segment
    private let index: Int
    private let section: SectionInfo
    private let hasher = Checksum.Streaming()
    private var hashed = 0

    /// A stream over the one section of `kind` of `segment`.
    init(_ segment: Segment, kind: SectionKind) throws(StrataError) {
        guard let i = segment.sections.firstIndex(where: { $0.kind == kind }) else {
            throw StrataError(.corrupt, "no \(kind) section", path: segment.path, section: "directory")
        }
        self.segment = segment
        index = i
        section = segment.sections[i]
    }

    /// Hashes the section's bytes from where the last call stopped up to `end` (relative to the
    /// section's start, clamped to its length).
    mutating func hash(upTo end: Int) {
        let stop = min(end, Int(section.length))
        guard stop > hashed else { return }
        let bytes = segment.sectionBytes(section)
        hasher.update(UnsafeRawBufferPointer(rebasing: bytes[hashed..<stop]))
        hashed = stop
    }

    /// Hashes whatever is left and compares with the directory's checksum: throws
    /// `.checksumMismatch` naming the file, section and offset, or marks the section sound.
    mutating func finish() throws(StrataError) {
        hash(upTo: Int(section.length))
        let computed = hasher.digest
        guard computed == section.checksum else { throw segment.sectionChecksumError(section, computed: computed) }
        segment.markSectionChecked(index)
    }
}
