// Bounded selection of the k closest candidates, shared by exact and approximate search.
import StrataFormat
import HeapModule

/// Keeps the k smallest (distance, row) pairs seen; a max-heap on distance.
///
/// Inlinable: exact scans in the engine call ``threshold`` and ``offer(distance:id:row:)`` once per
/// row from another module, where a plain call would cost more than the comparison it guards.
package struct TopK {
    @usableFromInline private(set) var heap = Heap<Candidate>()
    @usableFromInline let k: Int

    package struct Candidate: Comparable {
        package var distance: Float
        package var id: UInt64
        package var row: Int
        @inlinable package init(distance: Float, id: UInt64, row: Int) {
            self.distance = distance
            self.id = id
            self.row = row
        }

        @inlinable package static func < (a: Candidate, b: Candidate) -> Bool {
            a.distance != b.distance ? a.distance < b.distance : a.id < b.id
        }
    }

    @inlinable package init(k: Int) { self.k = k }

    /// The distance a candidate must beat to enter (infinity until k are held).
    @inlinable package var threshold: Float { heap.count < k ? .infinity : heap.max!.distance }

    @inlinable package mutating func offer(distance: Float, id: UInt64, row: Int) {
        if heap.count < k { heap.insert(Candidate(distance: distance, id: id, row: row)); return }
        let c = Candidate(distance: distance, id: id, row: row)
        if c < heap.max! { _ = heap.replaceMax(with: c) }
    }

    /// Candidates, closest first.
    @inlinable package func sorted() -> [Candidate] { heap.unordered.sorted() }
}
