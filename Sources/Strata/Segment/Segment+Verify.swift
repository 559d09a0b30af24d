// Full verification of a segment: every checksum, every block decoded, every invariant.
import StrataFormat
import StrataIndex
#if canImport(Glibc)
import Glibc
#endif

/// Progress of a verification: `done` of `total` bytes checked so far. ``Segment/verify(progress:)``
/// counts the section bytes its checksum pass has hashed (about every MiB); a collection's
/// ``StrataCollection/verify(path:progress:)`` and ``StrataCollection/scrub(path:bytesPerSecond:progress:)``
/// count the bytes of its segment files. The first call is `(0, total)`, `done` never decreases,
/// and the last call is `(total, total)`. Called on the verifying thread.
public typealias VerifyProgress = @Sendable (_ done: Int, _ total: Int) -> Void

/// Result of ``Segment/verify(progress:)``.
public struct VerifyReport: Sendable {
    /// Everything found wrong (empty when the segment is sound).
    public var problems: [StrataError]
    /// Sections whose checksum was checked.
    public var sectionsChecked: Int
    /// Payload blocks decoded and checked.
    public var blocksChecked: Int
    /// Bytes read and hashed.
    public var bytesChecked: UInt64

    /// Whether no problem was found.
    public var isSound: Bool { problems.isEmpty }
}

extension Segment {
    /// Checks every section checksum, decodes and checks every payload block (checksum, structure,
    /// UTF-8, null count, zone map), checks that ids and id index agree and are unique, and that
    /// every vector is finite with zero padding. Reports all problems rather than stopping at the first.
    /// `progress` hears the bytes of the checksum pass (the one that reads every byte; the
    /// structural checks after it read the same pages from the page cache): see ``VerifyProgress``.
    public func verify(progress: VerifyProgress? = nil) -> VerifyReport { verify(pacedBy: nil, progress: progress) }

    /// As ``verify(progress:)``; the checksum pass, which is the first to read every byte, reads
    /// 1 MiB at a time and reports each piece to `limiter` (`strata scrub --rate`) and `progress`.
    func verify(pacedBy limiter: ByteRateLimiter?, progress: VerifyProgress? = nil) -> VerifyReport {
        var report = VerifyReport(problems: [], sectionsChecked: 0, blocksChecked: 0, bytesChecked: 0)
        func fail(_ e: StrataError) { report.problems.append(e.inFile(path)) }

        let piece = 1 << 20
        let total = sections.reduce(0) { $0 + Int($1.length) }
        var hashed = 0
        progress?(0, total)
        defer { if hashed < total { progress?(total, total) } }
        for (i, s) in sections.enumerated() {
            let view = sectionBytes(s)
            report.bytesChecked += s.length
            report.sectionsChecked += 1
            let hasher = Checksum.Streaming()
            for at in stride(from: 0, to: view.count, by: piece) {
                let end = min(view.count, at + piece)
                hasher.update(UnsafeRawBufferPointer(rebasing: view[at..<end]))
                limiter?.consume(end - at)
                hashed += end - at
                if end - at > 0 { progress?(hashed, total) }
            }
            if s.checksumType == SectionInfo.checksumXXH3 {
                let computed = hasher.digest
                if computed == s.checksum { markSectionChecked(i) } else { fail(sectionChecksumError(s, computed: computed)) }
            }
        }

        // ids <-> id index: strictly increasing ids, each pointing at a row holding that id.
        let indexOffset = sections.first { $0.kind == .idIndex }?.offset ?? 0
        var previous: UInt64? = nil
        for k in 0..<rowCount {
            let id = UInt64(littleEndian: idIndexBytes.loadUnaligned(fromByteOffset: k * 16, as: UInt64.self))
            let row = UInt64(littleEndian: idIndexBytes.loadUnaligned(fromByteOffset: k * 16 + 8, as: UInt64.self))
            if let p = previous, id <= p {
                fail(StrataError(id == p ? .duplicateId : .corrupt, id == p ? "id \(id) appears twice" : "id index is not sorted",
                                 section: "id_index", offset: indexOffset + UInt64(k * 16)))
                break
            }
            previous = id
            if row >= UInt64(rowCount) || unsafeId(ofRow: Int(row)) != id {
                fail(StrataError(.corrupt, "id index entry \(k) (id \(id)) points at row \(row), which does not hold it",
                                 section: "id_index", offset: indexOffset + UInt64(k * 16 + 8)))
                break
            }
        }

        // Vectors (in the vectors section or the graph records): finite elements, zero padding.
        let dim = schema.dimension
        let width = schema.elementType.byteWidth
        let label = vectors.sectionLabel
        var scratch = [Float](repeating: 0, count: dim)
        rowLoop: for row in 0..<rowCount {
            let v = vectors.pointer(row: row)
            switch schema.elementType {
            case .float32:
                for d in 0..<dim {
                    let x = v.loadUnaligned(fromByteOffset: d * 4, as: Float.self)
                    if !x.isFinite {
                        fail(StrataError(.nonFiniteValue, "row \(row) element \(d) is \(x)", section: label, offset: vectors.fileOffset(ofRow: row) + UInt64(d * 4)))
                        break rowLoop
                    }
                }
            case .float16:
                scratch.withUnsafeMutableBufferPointer { out in
                    DistanceKernels.unsafeConvertToFloat(halfBits: v.assumingMemoryBound(to: UInt16.self), into: out.baseAddress!, count: dim)
                }
                if let d = scratch.firstIndex(where: { !$0.isFinite }) {
                    fail(StrataError(.nonFiniteValue, "row \(row) element \(d) is \(scratch[d])", section: label, offset: vectors.fileOffset(ofRow: row) + UInt64(d * 2)))
                    break rowLoop
                }
            }
            for p in (dim * width)..<(dim * width + vectors.paddingBytes) where v.load(fromByteOffset: p, as: UInt8.self) != 0 {
                fail(StrataError(.corrupt, "row \(row) padding is not zero", section: label, offset: vectors.fileOffset(ofRow: row) + UInt64(p)))
                break rowLoop
            }
        }

        // Payload blocks.
        for c in columns {
            var nulls: UInt64 = 0
            for i in c.blocks.indices {
                report.blocksChecked += 1
                do {
                    let block = try c.decodeBlock(i)
                    let info = c.blocks[i]
                    if block.nullCount != Int(info.nullCount) {
                        fail(StrataError(.corrupt, "block \(i) null count \(info.nullCount), decoded \(block.nullCount)", section: c.sectionName, offset: c.fileOffset + info.offset))
                    }
                    if block.computeZoneMap() != info.zoneMap {
                        fail(StrataError(.corrupt, "block \(i) zone map does not match its values", section: c.sectionName, offset: c.fileOffset + info.offset))
                    }
                    nulls += UInt64(block.nullCount)
                } catch {
                    fail(error)
                }
            }
            if nulls != c.nullCount {
                fail(StrataError(.corrupt, "column null count \(c.nullCount), blocks hold \(nulls)", section: c.sectionName, offset: c.fileOffset + 40))
            }
        }
        if let ix = annIndex { verifyIndex(ix, fail: fail) }
        verifySearchSections(fail: fail)
        return report
    }

    /// The structural checks of ``verify(progress:)`` that read the index and search sections (graph
    /// invariants and records, payload, sparse and text postings), without the checksum pass.
    func indexAndSearchProblems() -> [StrataError] {
        var problems: [StrataError] = []
        func fail(_ e: StrataError) { problems.append(e.inFile(path)) }
        if let ix = annIndex { verifyIndex(ix, fail: fail) }
        verifySearchSections(fail: fail)
        return problems
    }

    /// Graph invariants (degree <= R, neighbour ids in range, no self loops, every node reachable
    /// from the entry point) and, when the segment also has a vectors section (format 1.1 and 1.2),
    /// that each graph record holds the same vector as that section.
    func verifyIndex(_ ix: SegmentANNIndex, fail: (StrataError) -> Void) {
        let graphOffset = sections.first { $0.kind == .graph }?.offset
        let g = ix.graph.validate()
        for p in g.problems { fail(StrataError(.corrupt, p, section: "graph", offset: graphOffset)) }
        if g.problemCount > g.problems.count {
            fail(StrataError(.corrupt, "\(g.problemCount - g.problems.count) more graph problems", section: "graph", offset: graphOffset))
        }
        if g.unreachableCount > 0 {
            fail(StrataError(.corrupt, "\(g.unreachableCount) nodes are unreachable from the entry point \(g.medoid)", section: "graph", offset: graphOffset))
        }
        guard vectors.section == .vectors else { return }
        let bytes = schema.dimension * schema.elementType.byteWidth
        for row in 0..<rowCount {
            let record = ix.graph.unsafeRecord(row)
            let stored = vectors.pointer(row: row)
            if memcmp(record, stored, bytes) != 0 {
                fail(StrataError(.corrupt, "graph record \(row) holds a different vector than the vectors section",
                                 section: "graph", offset: graphOffset.map { $0 + UInt64(record - ix.graph.bytes.baseAddress!) }))
                break
            }
        }
    }
}
