// The reader's view of a graph section (layout in DiskGraphLayout.swift): the header is checked
// against the section length once, in `init`; afterwards records are read in place from the mapping.
import StrataFormat
import CStrataKernels

/// A read-only view of a graph section in memory (usually a mapping of the segment file).
///
/// `init` checks the header against the byte count; afterwards ``vectorBytes(of:)`` and
/// ``neighbors(of:)`` give in-place access. The bytes must outlive the view.
// @unchecked Sendable: a read-only view; the bytes are never written after `init` and the owner
// (the segment's mapping) keeps them alive, so any thread may read them.
package struct DiskGraphView: @unchecked Sendable {
    /// The whole section.
    package let bytes: UnsafeRawBufferPointer
    /// Geometry read from the header (checked).
    package let geometry: DiskGraphLayout.Geometry
    /// Entry point.
    package let medoid: Int
    /// Metric recorded at build time.
    package let metric: DistanceMetric
    /// The placement table of a block-aware layout (u32 slot per node, in the section); nil in row order.
    let placement: UnsafeRawPointer?

    /// Number of nodes.
    package var count: Int { geometry.count }
    /// Vector dimension.
    package var dimension: Int { geometry.dimension }
    /// Stored element type.
    package var elementType: VectorElementType { geometry.elementType }
    /// Maximum degree R.
    package var maxDegree: Int { geometry.maxDegree }

    /// Opens a view, validating the header in O(1).
    /// - Throws: `StrataError.Code.corrupt` (section "graph", with the header offset) for a bad magic,
    ///   version, field, reserved byte, or a length that does not match the header.
    package init(bytes: UnsafeRawBufferPointer) throws(StrataError) {
        func bad(_ m: String, _ off: Int) -> StrataError { StrataError(.corrupt, m, section: "graph", offset: UInt64(off)) }
        guard bytes.count >= DiskGraphLayout.headerSize, bytes.baseAddress != nil else {
            throw StrataError(.truncated, "graph section is \(bytes.count) bytes, shorter than its header", section: "graph", offset: 0)
        }
        for k in 0..<8 where bytes[k] != DiskGraphLayout.magic[k] { throw bad("bad graph magic", 0) }
        func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
        func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
        let version = u32(8)
        guard version == DiskGraphLayout.rowOrderVersion || version == DiskGraphLayout.blockVersion else {
            throw StrataError(.unsupportedVersion, "unsupported graph layout version \(version); this build reads 1...2: upgrade Strata",
                              section: "graph", offset: 8)
        }
        if u32(12) != UInt32(DiskGraphLayout.sectorSize) { throw bad("sector size \(u32(12)), expected 4096", 12) }
        let n64 = u64(16)
        if n64 >= UInt64(UInt32.max) { throw bad("node count \(n64) too large", 16) }
        guard let et = VectorElementType(rawValue: bytes[28]) else { throw bad("bad element type \(bytes[28])", 28) }
        guard let mt = DistanceMetric(rawValue: bytes[29]) else { throw bad("bad metric \(bytes[29])", 29) }
        if bytes[30] != 4 { throw bad("neighbour id width \(bytes[30]), expected 4", 30) }
        if bytes[31] != 0 { throw bad("reserved byte is not zero", 31) }
        let g: DiskGraphLayout.Geometry
        do {
            g = try DiskGraphLayout.Geometry(count: Int(n64), dimension: Int(u32(24)), elementType: et, maxDegree: Int(u32(32)),
                                             blockLayout: version == DiskGraphLayout.blockVersion)
        } catch {
            throw bad("bad graph shape: dimension \(u32(24)), R \(u32(32)), layout version \(version)", 24)
        }
        if Int(u32(36)) != g.recordSize { throw bad("record size \(u32(36)), expected \(g.recordSize)", 36) }
        if Int(u32(40)) != g.nodesPerSector { throw bad("nodes per sector \(u32(40)), expected \(g.nodesPerSector)", 40) }
        if Int(u32(44)) != g.sectorsPerNode { throw bad("sectors per node \(u32(44)), expected \(g.sectorsPerNode)", 44) }
        let med = u64(48)
        if (n64 == 0 && med != 0) || (n64 > 0 && med >= n64) { throw bad("medoid \(med) out of range", 48) }
        if u64(56) != UInt64(g.sectorCount) { throw bad("sector count \(u64(56)), expected \(g.sectorCount)", 56) }
        for k in 64..<DiskGraphLayout.headerSize where bytes[k] != 0 { throw bad("reserved header bytes are not zero", k) }
        if bytes.count != g.totalBytes {
            throw StrataError(bytes.count < g.totalBytes ? .truncated : .corrupt,
                              "graph section is \(bytes.count) bytes, header says \(g.totalBytes)",
                              section: "graph", offset: UInt64(min(bytes.count, g.totalBytes)))
        }
        self.bytes = bytes
        self.geometry = g
        self.medoid = Int(med)
        self.metric = mt
        self.placement = g.blockLayout ? UnsafeRawPointer(bytes.baseAddress! + g.placementOffset) : nil
    }

    /// Whether records are placed by a placement table (layout version 2).
    package var isBlockLayout: Bool { placement != nil }

    /// The record slot of node `i < count`: `i` in row order, else its placement entry, clamped to
    /// the slots that exist (a corrupt entry then points at some other record, whose node id tells).
    @inline(__always)
    package func slot(of i: Int) -> Int {
        guard let placement else { return i }
        return min(Int(UInt32(littleEndian: placement.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))), geometry.slotCount - 1)
    }

    /// Section offset of node `i`'s record (`i < count`).
    @inline(__always)
    package func recordOffset(_ i: Int) -> Int { geometry.slotOffset(slot(of: i)) }

    /// The node id a record stores (block layout), or nil in row order, where records carry none.
    @inline(__always)
    package func storedNode(of record: UnsafeRawPointer) -> Int? {
        guard placement != nil else { return nil }
        return Int(UInt32(littleEndian: record.loadUnaligned(fromByteOffset: geometry.nodeIdOffset, as: UInt32.self)))
    }

    /// Pointer to node `i`'s record; `i` must be `< count` (checked in debug builds only). The record's
    /// degree and neighbour ids are not validated: readers clamp the degree to R and skip ids >= count.
    @inline(__always)
    package func unsafeRecord(_ i: Int) -> UnsafeRawPointer {
        assert(i >= 0 && i < count)
        return bytes.baseAddress! + recordOffset(i)
    }

    /// The raw stored vector of node `i` (float32 or float16 bits per ``elementType``), or nil if out of range.
    package func vectorBytes(of i: Int) -> UnsafeRawBufferPointer? {
        guard i >= 0 && i < count else { return nil }
        return UnsafeRawBufferPointer(start: unsafeRecord(i), count: dimension * elementType.byteWidth)
    }

    /// Node `i`'s vector as float32 (converted from float16 if stored so), or nil if out of range.
    package func vector(of i: Int) -> [Float]? {
        guard let raw = vectorBytes(of: i) else { return nil }
        var out = [Float](repeating: 0, count: dimension)
        out.withUnsafeMutableBufferPointer { o in
            switch elementType {
            case .float32:
                for j in 0..<dimension {
                    o[j] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * j, as: UInt32.self)))
                }
            case .float16:
                var bits = [UInt16](repeating: 0, count: dimension)
                for j in 0..<dimension { bits[j] = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)) }
                strata_f16_to_f32(bits, o.baseAddress!, dimension)
            }
        }
        return out
    }

    /// Stored degree of node `i` (not clamped; may exceed R in a corrupt file), or nil if out of range.
    package func storedDegree(of i: Int) -> Int? {
        guard i >= 0 && i < count else { return nil }
        return Int(UInt32(littleEndian: unsafeRecord(i).loadUnaligned(fromByteOffset: geometry.vectorBytes, as: UInt32.self)))
    }

    /// Node `i`'s neighbour ids as stored (degree clamped to R; ids not checked), or nil if out of range.
    package func neighbors(of i: Int) -> [UInt32]? {
        guard let d = storedDegree(of: i) else { return nil }
        let rec = unsafeRecord(i)
        return (0..<min(d, maxDegree)).map {
            UInt32(littleEndian: rec.loadUnaligned(fromByteOffset: geometry.vectorBytes + 4 + 4 * $0, as: UInt32.self))
        }
    }
}
