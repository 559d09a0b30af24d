// Graph records read with direct I/O (O_DIRECT) instead of through the mapping: DiskANN's way of
// serving a segment that the page cache cannot hold. Reads bypass the page cache, so the memory a
// search uses is the node cache plus a few sectors per searcher, whatever the segment's size, and
// every 4 KB read is one the search asked for (no fault read-around, no page-cache eviction
// fights between segments).
//
// One `DirectGraphFile` per open segment (the descriptor and where the graph section starts); one
// `DirectReadQueue` per searcher: an io_uring (strata_uring.c) and one aligned buffer per read in
// flight. Where io_uring is unavailable the queue reads synchronously with pread(2).
import StrataFormat
import CStrataKernels
#if canImport(Glibc)
import Glibc
#endif

/// A segment file opened for direct reads of its graph section.
package final class DirectGraphFile: Sendable {
    /// The descriptor (O_RDONLY | O_DIRECT).
    let descriptor: Int32
    /// File offset of the graph section (a multiple of 4096: sections start page-aligned).
    let sectionOffset: UInt64
    /// The file, for errors.
    package let path: String
    /// Whether searches use io_uring (where the kernel offers it) or pread, one read at a time.
    let usesRing: Bool

    /// Opens `path` for direct reads of the graph section at `sectionOffset`.
    /// - Throws: `StrataError.Code.io` when the file cannot be opened with O_DIRECT (the file system
    ///   refuses it, or the platform has no direct I/O), `.invalidArgument` for an unaligned section.
    package init(path: String, sectionOffset: UInt64, usesRing: Bool = true) throws(StrataError) {
        guard sectionOffset % UInt64(DiskGraphLayout.sectorSize) == 0 else {
            throw StrataError(.invalidArgument, "graph section at offset \(sectionOffset) is not sector-aligned", path: path, section: "graph")
        }
        let fd = strata_open_direct(path)
        guard fd >= 0 else {
            throw StrataError(.io, "cannot open for direct I/O (errno \(-fd)); open without direct I/O", path: path)
        }
        descriptor = fd
        self.sectionOffset = sectionOffset
        self.path = path
        self.usesRing = usesRing
    }

    deinit { close(descriptor) }
}

/// The reads in flight of one searcher: at most `slots` sector spans, each read into its own
/// aligned buffer. Not thread-safe: one per searcher.
final class DirectReadQueue {
    let file: DirectGraphFile
    let geometry: DiskGraphLayout.Geometry
    /// Bytes read per node: its sector (or its Q sectors).
    let span: Int
    let slots: Int
    let buffers: UnsafeMutableRawPointer
    /// Node read into each slot (-1: free).
    let slotNode: UnsafeMutablePointer<Int>
    /// Byte offset of that node's record within the slot's buffer.
    let slotWithin: UnsafeMutablePointer<Int>
    var freeSlots: [Int]
    let ring: OpaquePointer?
    /// The ring failed for good: no more reads are queued, buffers are never reused.
    private(set) var broken = false
    let tags: UnsafeMutablePointer<UInt64>
    let results: UnsafeMutablePointer<Int32>
    /// Reads queued or in flight.
    private(set) var inFlight = 0
    /// Nodes whose read finished, by slot, waiting to be taken by ``next()``.
    private var ready: [Int] = []
    /// Reads that failed or came back short (the caller reads those records from the mapping).
    private(set) var failedReads = 0

    init(file: DirectGraphFile, geometry: DiskGraphLayout.Geometry, slots: Int) {
        self.file = file
        self.geometry = geometry
        span = geometry.nodesPerSector > 0 ? DiskGraphLayout.sectorSize : geometry.sectorsPerNode * DiskGraphLayout.sectorSize
        self.slots = slots
        buffers = .allocate(byteCount: span * slots, alignment: DiskGraphLayout.sectorSize)
        slotNode = .allocate(capacity: slots)
        slotNode.initialize(repeating: -1, count: slots)
        slotWithin = .allocate(capacity: slots)
        slotWithin.initialize(repeating: 0, count: slots)
        freeSlots = Array((0..<slots).reversed())
        freeSlots.reserveCapacity(slots)
        ready.reserveCapacity(slots)
        var entries: UInt32 = 1
        while entries < UInt32(slots) { entries <<= 1 }
        ring = file.usesRing ? strata_uring_create(entries) : nil
        tags = .allocate(capacity: slots)
        results = .allocate(capacity: slots)
    }

    deinit {
        // Reads still in flight write into `buffers`: wait for them before freeing. A queue that
        // gave up on its ring (``abandon()``) may still have reads the kernel owns: it leaks its
        // buffers (a few pages) rather than free memory the kernel may write.
        if inFlight > 0 { waitForCompletion() }
        if let ring { strata_uring_destroy(ring) }
        if !broken { buffers.deallocate() }
        slotNode.deallocate(); slotWithin.deallocate(); tags.deallocate(); results.deallocate()
    }

    /// Whether another read can be queued.
    var hasFreeSlot: Bool { !broken && !freeSlots.isEmpty }
    /// Slots holding a read (queued, in flight, or finished and not yet released).
    var slotsInUse: Int { slots - freeSlots.count }

    /// Queues the read of the sector(s) of node `v`, whose record is in record slot `recordSlot`
    /// (``DiskGraphView/slot(of:)``); ``submit()`` starts it. Needs ``hasFreeSlot``.
    func queue(_ v: Int, recordSlot: Int) {
        let slot = freeSlots.removeLast()
        slotNode[slot] = v
        let p = geometry.nodesPerSector
        slotWithin[slot] = p > 0 ? (recordSlot % p) * geometry.recordSize : 0
        let sector: Int = p > 0 ? recordSlot / p : recordSlot * geometry.sectorsPerNode
        let offset = file.sectionOffset + UInt64(DiskGraphLayout.headerSize) + UInt64(sector) * UInt64(DiskGraphLayout.sectorSize)
        let buffer = buffers + slot * span
        if let ring, strata_uring_queue_read(ring, file.descriptor, buffer, UInt32(span), offset, UInt64(slot)) == 0 {
            inFlight += 1
            return
        }
        // No ring (or it refused): read now.
        let got = pread(file.descriptor, buffer, span, off_t(offset))
        if got != span { failedReads += 1; slotNode[slot] = -1 - v }
        ready.append(slot)
    }

    /// Starts the queued reads without waiting (a transient failure is retried by ``next()``).
    func submit() {
        guard let ring, inFlight > 0 else { return }
        _ = strata_uring_submit(ring, 0)
    }

    /// The next finished read: waits for one when none is ready. Returns the slot (give it back
    /// with ``release(_:)``), or nil when nothing is queued or in flight. A read that failed gives a
    /// slot whose ``node(in:)`` is negative (`-1 - v`): read node v from the mapping instead.
    func next() -> Int? {
        if ready.isEmpty && inFlight > 0 { waitForCompletion() }
        return ready.popLast()
    }

    /// Moves finished reads to `ready`; returns how many.
    private func reap() -> Int {
        guard let ring else { return 0 }
        let taken = Int(strata_uring_reap(ring, tags, results, UInt32(slots)))
        for t in 0..<taken {
            let slot = Int(tags[t])
            if Int(results[t]) != span {
                failedReads += 1
                slotNode[slot] = -1 - slotNode[slot]
            }
            ready.append(slot)
        }
        inFlight -= taken
        return taken
    }

    /// Waits until at least one read finishes. io_uring_enter fails only transiently here (the
    /// queue never holds more than the rings' size): retry, then give up after about a second.
    private func waitForCompletion() {
        guard let ring else { return }
        var failures = 0
        while inFlight > 0 && reap() == 0 {
            if strata_uring_submit(ring, 1) < 0 {
                failures += 1
                if failures > 1_000 { abandon(); return }
                if failures > 10 { usleep(1_000) }
            }
        }
    }

    /// Reports every read still in flight as failed and stops using the ring.
    private func abandon() {
        broken = true
        for slot in 0..<slots where slotNode[slot] >= 0 && !ready.contains(slot) {
            failedReads += 1
            slotNode[slot] = -1 - slotNode[slot]
            ready.append(slot)
        }
        inFlight = 0
    }

    /// The node read into `slot` (negative `-1 - v` when the read of v failed).
    func node(in slot: Int) -> Int { slotNode[slot] }

    /// The record of the node read into `slot`, inside the slot's buffer.
    func record(in slot: Int) -> UnsafeRawPointer {
        UnsafeRawPointer(buffers + slot * span + slotWithin[slot])
    }

    /// The whole sector read into `slot` (``span`` bytes): every record slot it holds.
    func sector(in slot: Int) -> UnsafeRawPointer {
        UnsafeRawPointer(buffers + slot * span)
    }

    /// Gives a slot back.
    func release(_ slot: Int) {
        slotNode[slot] = -1
        if !broken { freeSlots.append(slot) }
    }
}
