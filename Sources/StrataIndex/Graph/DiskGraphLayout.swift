// The on-disk graph: full-precision vectors and neighbour lists co-located in 4096-byte sectors
// (DiskANN's disk layout), so that one aligned read brings a node's vector and its out-edges.
//
// Byte layout of the graph section (all integers little-endian; the section starts page-aligned):
//
//   +-----------------------------+  offset 0
//   | header sector (4096 bytes)  |
//   +-----------------------------+  offset 4096
//   | node sector 0               |  record slots 0 ..< P (P = nodes per sector), then zero padding
//   | node sector 1               |  record slots P ..< 2P
//   | ...                         |
//   +-----------------------------+  offset 4096 * (1 + sector count)
//   | placement table (version 2) |  u32 slot of node i, for i in 0 ..< N, zero-padded to 4096
//   +-----------------------------+  section length
//
// Layout version 1 (row order): node i is in slot i and there is no placement table. Layout
// version 2 (block-aware, BlockPlacement.swift): node i is in slot placement[i], so that a node
// shares its sector with neighbours it is likely to be expanded with; each record ends with the
// node's own id, so a sector read says whose records it brings.
//
// Header sector:
//
// | Offset | Size | Type  | Meaning                                                             |
// | -----: | ---: | ----- | ------------------------------------------------------------------- |
// |      0 |    8 | ASCII | magic `STRATAVG`                                                    |
// |      8 |    4 | u32   | layout version: 1 row order, 2 block-aware                          |
// |     12 |    4 | u32   | sector size S, 4096                                                 |
// |     16 |    8 | u64   | node count N                                                        |
// |     24 |    4 | u32   | dimension D (>= 1)                                                  |
// |     28 |    1 | u8    | element type: 1 float32, 2 float16 (IEEE binary16 raw bits)         |
// |     29 |    1 | u8    | metric the graph was built for: 1 l2, 2 inner product, 3 cosine     |
// |     30 |    1 | u8    | neighbour id width in bytes, 4                                      |
// |     31 |    1 | u8    | reserved, 0                                                         |
// |     32 |    4 | u32   | max degree R (>= 1)                                                 |
// |     36 |    4 | u32   | record size B = V + 4 + 4R (+ 4 in version 2), V = D * width rounded up to 4 |
// |     40 |    4 | u32   | nodes per sector P = floor(S / B) if B <= S, else 0 (version 2: P >= 1) |
// |     44 |    4 | u32   | sectors per node Q = 1 if B <= S, else ceil(B / S)                  |
// |     48 |    8 | u64   | medoid (entry point), < N (0 when N = 0)                            |
// |     56 |    8 | u64   | node sector count: ceil(N / P) if P > 0, else N * Q                 |
// |     64 | 4032 | -     | reserved, zero                                                      |
//
// Record slot s (B bytes), at section offset
//   4096 + (s / P) * 4096 + (s % P) * B      when P > 0 (several records per sector, never straddling);
//   4096 + s * Q * 4096                      when P = 0 (one record over Q whole sectors):
//
// | Offset | Size      | Type       | Meaning                                                   |
// | -----: | --------: | ---------- | --------------------------------------------------------- |
// |      0 | D * width | f32 / f16  | the full-precision vector                                 |
// |   D*w  | V - D*w   | -          | padding to a multiple of 4, zero                          |
// |      V |         4 | u32        | degree d (<= R)                                           |
// |  V + 4 |        4R | u32[R]     | neighbour ids; the first d are valid (< N, not i), rest 0 |
// | V+4+4R |         4 | u32        | version 2 only: the node id i whose record this is        |
//
// Slots N ..< sector count * P (the end of the last sector) are zero. The placement table of
// version 2 is a permutation of 0 ..< N. Readers check the header against the section length
// before touching a record; searches additionally clamp d to R, skip ids >= N, clamp a placement
// entry to the slots that exist and skip a record whose node id is not the node asked for, so a
// corrupt record can cost recall but never a trap or an out-of-range read.
import StrataFormat
import CStrataKernels

/// The fixed numbers of the sector layout.
package enum DiskGraphLayout {
    /// Section magic.
    public static let magic: [UInt8] = Array("STRATAVG".utf8)
    /// Layout version of row-order sections (node i in slot i).
    public static let rowOrderVersion: UInt32 = 1
    /// Layout version of block-aware sections (a placement table; records carry their node id).
    public static let blockVersion: UInt32 = 2
    /// Sector size in bytes.
    public static let sectorSize = 4096
    /// Header size in bytes (one sector).
    public static let headerSize = 4096

    /// Geometry of a layout: record size, packing, and total length.
    public struct Geometry: Sendable, Equatable {
        /// Number of nodes.
        public var count: Int
        /// Vector dimension.
        public var dimension: Int
        /// Stored element type.
        public var elementType: VectorElementType
        /// Maximum degree R.
        public var maxDegree: Int
        /// Bytes of the vector part, padded to a multiple of 4.
        public var vectorBytes: Int
        /// Bytes per node record.
        public var recordSize: Int
        /// Nodes per sector (0 when a node needs several sectors).
        public var nodesPerSector: Int
        /// Sectors per node (1 when several nodes share a sector).
        public var sectorsPerNode: Int
        /// Node sectors (excluding the header sector).
        public var sectorCount: Int
        /// Whether records are placed by a placement table (layout version 2) rather than in row order.
        public var blockLayout: Bool
        /// Byte offset within a record of its node id (version 2; `recordSize` in version 1, where there is none).
        public var nodeIdOffset: Int
        /// Record slots of the node sectors: sector count x P (the node count when P = 0).
        public var slotCount: Int
        /// Section offset of the placement table (version 2; the section length in version 1).
        public var placementOffset: Int
        /// Total section length: header, node sectors and (version 2) the placement table.
        public var totalBytes: Int

        /// Computes the geometry with overflow checks.
        /// - Throws: `StrataError.Code.invalidArgument` when a size overflows or a field is out of range.
        /// - Parameter blockLayout: layout version 2 (needs a record that fits in one sector).
        public init(count: Int, dimension: Int, elementType: VectorElementType, maxDegree: Int,
                    blockLayout: Bool = false) throws(StrataError) {
            guard count >= 0, dimension >= 1, dimension <= 1 << 20, maxDegree >= 1, maxDegree <= 1 << 16 else {
                throw StrataError(.invalidArgument, "bad graph layout shape: count \(count), dimension \(dimension), R \(maxDegree)")
            }
            self.count = count
            self.dimension = dimension
            self.elementType = elementType
            self.maxDegree = maxDegree
            vectorBytes = (dimension * elementType.byteWidth + 3) & ~3
            self.blockLayout = blockLayout
            nodeIdOffset = vectorBytes + 4 + 4 * maxDegree
            recordSize = nodeIdOffset + (blockLayout ? 4 : 0)
            let s = DiskGraphLayout.sectorSize
            if blockLayout && recordSize > s {
                throw StrataError(.invalidArgument, "a block-aware graph layout needs records of at most \(s) bytes, got \(recordSize)")
            }
            if recordSize <= s {
                nodesPerSector = s / recordSize
                sectorsPerNode = 1
                sectorCount = count == 0 ? 0 : (count - 1) / nodesPerSector + 1
            } else {
                nodesPerSector = 0
                sectorsPerNode = (recordSize + s - 1) / s
                let (c, o) = count.multipliedReportingOverflow(by: sectorsPerNode)
                if o { throw StrataError(.invalidArgument, "graph layout too large") }
                sectorCount = c
            }
            slotCount = nodesPerSector > 0 ? sectorCount * nodesPerSector : count
            let (a, o1) = sectorCount.multipliedReportingOverflow(by: s)
            let (t, o2) = a.addingReportingOverflow(DiskGraphLayout.headerSize)
            if o1 || o2 { throw StrataError(.invalidArgument, "graph layout too large") }
            placementOffset = t
            // The placement table (block layout): 4 B per node, whole sectors.
            let (entries, o3) = count.multipliedReportingOverflow(by: blockLayout ? 4 : 0)
            if o3 || entries > Int.max - s { throw StrataError(.invalidArgument, "graph layout too large") }
            let (total, o4) = t.addingReportingOverflow((entries + s - 1) / s * s)
            if o4 { throw StrataError(.invalidArgument, "graph layout too large") }
            totalBytes = total
        }

        /// Layout version of this geometry.
        public var version: UInt32 { blockLayout ? DiskGraphLayout.blockVersion : DiskGraphLayout.rowOrderVersion }

        /// Section offset of record slot `s` (s < slotCount). In row order slot i holds node i.
        @inlinable @inline(__always)
        public func slotOffset(_ s: Int) -> Int {
            if nodesPerSector > 0 {
                return DiskGraphLayout.headerSize + (s / nodesPerSector) * DiskGraphLayout.sectorSize + (s % nodesPerSector) * recordSize
            }
            return DiskGraphLayout.headerSize + s * sectorsPerNode * DiskGraphLayout.sectorSize
        }
    }

    /// Streams the layout of `graph` and its vectors to `sink`, one header then one sector group at a time
    /// (at most max(4096, Q * 4096) bytes buffered), so a section of any size never sits in memory.
    /// - Parameters:
    ///   - graph: the graph (ids < count, degree <= R).
    ///   - vectors: row-major float32 rows, row `i` at `i * rowStride`; stored as `elementType`
    ///     (float16 converts with round-to-nearest-even).
    ///   - dimension: floats per row.
    ///   - rowStride: floats between row starts.
    ///   - elementType: how vectors are stored in the records.
    ///   - metric: recorded in the header.
    ///   - blockLayout: write layout version 2 with the records placed by ``BlockPlacement``.
    ///   - sink: receives consecutive chunks; their concatenation is the section.
    /// - Returns: the geometry written (``Geometry/totalBytes`` is the section length).
    /// - Throws: `StrataError.Code.invalidArgument` when the buffer does not match the graph, or what `sink` throws.
    @discardableResult
    public static func writeSectorLayout(graph: VamanaGraph, vectors: UnsafeBufferPointer<Float>, dimension: Int,
                                         rowStride: Int, elementType: VectorElementType, metric: DistanceMetric,
                                         blockLayout: Bool = false,
                                         to sink: (UnsafeRawBufferPointer) throws(StrataError) -> Void) throws(StrataError) -> Geometry {
        try checkVectorBuffer(vectors, count: graph.count, dimension: dimension, rowStride: rowStride)
        let base = vectors.baseAddress
        return try graph.degrees.withUnsafeBufferPointer { (degs) throws(StrataError) in
            try graph.neighbors.withUnsafeBufferPointer { (nbrs) throws(StrataError) in
                func list(_ i: Int) -> UnsafeBufferPointer<UInt32> {
                    UnsafeBufferPointer(rebasing: nbrs[(i * graph.maxDegree)..<(i * graph.maxDegree + Int(degs[i]))])
                }
                return try writeSection(count: graph.count, dimension: dimension, elementType: elementType, maxDegree: graph.maxDegree,
                                        metric: metric, medoid: graph.medoid, blockLayout: blockLayout, neighbors: list,
                                        vector: { (i, _) in base! + i * rowStride }, to: sink)
            }
        }
    }

    /// Writes a whole graph section from random access to its nodes: in row order (version 1), or
    /// (`blockLayout` and records that fit a sector) placed by ``BlockPlacement`` (version 2), the
    /// records then written in slot order and the placement table last.
    /// - Parameters:
    ///   - neighbors: node i's out-neighbours (at most R), nearest first.
    ///   - vector: node i's float32 vector; the second argument is scratch of `dimension` floats it may fill and return.
    ///   - progress: called with the records written so far, every 65,536 records.
    /// - Returns: the geometry written.
    /// - Throws: `StrataError.Code.invalidArgument` for a bad shape, medoid or list, or what `sink` throws.
    package static func writeSection(count: Int, dimension: Int, elementType: VectorElementType, maxDegree: Int,
                                     metric: DistanceMetric, medoid: Int, blockLayout: Bool,
                                     neighbors: (Int) -> UnsafeBufferPointer<UInt32>,
                                     vector: (Int, UnsafeMutablePointer<Float>) -> UnsafePointer<Float>,
                                     progress: ((Int) -> Void)? = nil,
                                     to sink: (UnsafeRawBufferPointer) throws(StrataError) -> Void) throws(StrataError) -> Geometry {
        let rowOrder = try Geometry(count: count, dimension: dimension, elementType: elementType, maxDegree: maxDegree)
        // A block layout needs at least two records per sector to gain anything.
        let blocks = blockLayout && rowOrder.recordSize + 4 <= sectorSize / 2
        let writer = try SectorStreamWriter(count: count, dimension: dimension, elementType: elementType, maxDegree: maxDegree,
                                            metric: metric, medoid: medoid, blockLayout: blocks, sink: sink)
        let placement = blocks
            ? BlockPlacement.compute(count: count, nodesPerSector: writer.geometry.nodesPerSector, entry: medoid, neighbors: neighbors)
            : nil
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: dimension)
        defer { scratch.deallocate() }
        for s in 0..<count {
            let i = placement.map { Int($0.nodeAt[s]) } ?? s
            try writer.append(node: i, vector: vector(i, scratch), neighbors: neighbors(i), sink: sink)
            if s & 0xFFFF == 0xFFFF { progress?(s + 1) }
        }
        try writer.finish(placement: placement?.slotOf, sink: sink)
        return writer.geometry
    }

    /// Writes a graph section record by record, in slot order, without holding the graph: the header
    /// first, then each sector as soon as its last record is in (at most max(4096, Q * 4096) bytes
    /// buffered), then (version 2) the placement table.
    public final class SectorStreamWriter {
        /// The layout being written.
        public let geometry: Geometry
        private let buffer: UnsafeMutableRawBufferPointer
        private var next = 0
        private var inChunk = 0

        /// Writes the header sector to `sink`.
        /// - Throws: `StrataError.Code.invalidArgument` for a bad shape or medoid, or what `sink` throws.
        public init(count: Int, dimension: Int, elementType: VectorElementType, maxDegree: Int, metric: DistanceMetric,
                    medoid: Int, blockLayout: Bool = false, sink: (UnsafeRawBufferPointer) throws(StrataError) -> Void) throws(StrataError) {
            let g = try Geometry(count: count, dimension: dimension, elementType: elementType, maxDegree: maxDegree,
                                 blockLayout: blockLayout)
            if count >= Int(UInt32.max) { throw StrataError(.invalidArgument, "too many nodes for 4-byte neighbour ids: \(count)") }
            if (count == 0 && medoid != 0) || (count > 0 && (medoid < 0 || medoid >= count)) {
                throw StrataError(.invalidArgument, "medoid \(medoid) out of range for \(count) nodes")
            }
            geometry = g
            var header = [UInt8](repeating: 0, count: headerSize)
            func put32(_ v: UInt32, _ at: Int) { withUnsafeBytes(of: v.littleEndian) { for k in 0..<4 { header[at + k] = $0[k] } } }
            func put64(_ v: UInt64, _ at: Int) { withUnsafeBytes(of: v.littleEndian) { for k in 0..<8 { header[at + k] = $0[k] } } }
            for k in 0..<8 { header[k] = magic[k] }
            put32(g.version, 8)
            put32(UInt32(sectorSize), 12)
            put64(UInt64(g.count), 16)
            put32(UInt32(dimension), 24)
            header[28] = elementType.rawValue
            header[29] = metric.rawValue
            header[30] = 4
            put32(UInt32(g.maxDegree), 32)
            put32(UInt32(g.recordSize), 36)
            put32(UInt32(g.nodesPerSector), 40)
            put32(UInt32(g.sectorsPerNode), 44)
            put64(UInt64(medoid), 48)
            put64(UInt64(g.sectorCount), 56)
            let chunk = g.nodesPerSector > 0 ? sectorSize : g.sectorsPerNode * sectorSize
            buffer = .allocate(byteCount: chunk, alignment: 64)
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            // Array.withUnsafeBytes rethrows untyped errors: carry the sink's error out as a value.
            let failure: StrataError? = header.withUnsafeBytes { raw in
                do throws(StrataError) { try sink(raw); return nil } catch { return error }
            }
            if let failure { buffer.deallocate(); throw failure }
        }

        deinit { buffer.deallocate() }

        /// Appends the record of the next slot: node `node`'s float32 vector (`dimension` floats,
        /// stored as the element type) and its out-neighbours (at most R; ids are not checked here).
        /// In row order (version 1) `node` is the slot; a block layout also stores it in the record.
        /// - Throws: `StrataError.Code.invalidArgument` past the node count or for too many neighbours, or what `sink` throws.
        public func append(node: Int, vector: UnsafePointer<Float>, neighbors: UnsafeBufferPointer<UInt32>,
                           sink: (UnsafeRawBufferPointer) throws(StrataError) -> Void) throws(StrataError) {
            let g = geometry
            guard next < g.count else { throw StrataError(.invalidArgument, "more than \(g.count) graph records") }
            guard neighbors.count <= g.maxDegree else {
                throw StrataError(.invalidArgument, "node \(next) has \(neighbors.count) neighbours, R is \(g.maxDegree)")
            }
            let rec = inChunk * g.recordSize
            switch g.elementType {
            case .float32:
                for j in 0..<g.dimension {
                    buffer.storeBytes(of: vector[j].bitPattern.littleEndian, toByteOffset: rec + 4 * j, as: UInt32.self)
                }
            case .float16:
                strata_f32_to_f16(vector, (buffer.baseAddress! + rec).assumingMemoryBound(to: UInt16.self), g.dimension)
            }
            buffer.storeBytes(of: UInt32(neighbors.count).littleEndian, toByteOffset: rec + g.vectorBytes, as: UInt32.self)
            for (j, id) in neighbors.enumerated() {
                buffer.storeBytes(of: id.littleEndian, toByteOffset: rec + g.vectorBytes + 4 + 4 * j, as: UInt32.self)
            }
            if g.blockLayout {
                guard node >= 0 && node < g.count else { throw StrataError(.invalidArgument, "graph record of node \(node) of \(g.count)") }
                buffer.storeBytes(of: UInt32(node).littleEndian, toByteOffset: rec + g.nodeIdOffset, as: UInt32.self)
            } else if node != next {
                throw StrataError(.invalidArgument, "row-order graph record \(next) given node \(node)")
            }
            next += 1
            inChunk += 1
            if inChunk == max(1, g.nodesPerSector) || next == g.count { try flush(sink) }
        }

        /// Checks that every node was appended and (block layout) writes the placement table:
        /// `placement[i]` is the slot node i was appended at.
        /// - Throws: `StrataError.Code.invalidArgument` when records are missing or the placement
        ///   does not fit the layout, or what `sink` throws.
        public func finish(placement: [UInt32]? = nil, sink: (UnsafeRawBufferPointer) throws(StrataError) -> Void) throws(StrataError) {
            let g = geometry
            if next != g.count {
                throw StrataError(.invalidArgument, "graph layout got \(next) of \(g.count) records")
            }
            guard g.blockLayout else {
                if placement != nil { throw StrataError(.invalidArgument, "a row-order graph layout has no placement table") }
                return
            }
            guard let placement, placement.count == g.count else {
                throw StrataError(.invalidArgument, "a block-aware graph layout needs the slot of each of its \(g.count) nodes")
            }
            // The table in sector-sized chunks through the record buffer (at least one sector).
            let perChunk = sectorSize / 4
            var i = 0
            while i < g.count {
                buffer.initializeMemory(as: UInt8.self, repeating: 0)
                let end = min(g.count, i + perChunk)
                for k in i..<end {
                    buffer.storeBytes(of: placement[k].littleEndian, toByteOffset: 4 * (k - i), as: UInt32.self)
                }
                try sink(UnsafeRawBufferPointer(rebasing: buffer[0..<sectorSize]))
                i = end
            }
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
        }

        private func flush(_ sink: (UnsafeRawBufferPointer) throws(StrataError) -> Void) throws(StrataError) {
            try sink(UnsafeRawBufferPointer(buffer))
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            inChunk = 0
        }
    }
}
