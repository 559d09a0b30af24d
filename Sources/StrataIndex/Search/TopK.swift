// Bounded selection of the k closest candidates, shared by exact and approximate search.
import StrataFormat
import HeapModule

/// Keeps the k smallest (distance, row) pairs seen; a max-heap on distance.
package struct TopK {
    private(set) var heap = Heap<Candidate>()
    let k: Int

    package struct Candidate: Comparable {
        package var distance: Float
        package var id: UInt64
        package var row: Int
        package static func < (a: Candidate, b: Candidate) -> Bool {
            a.distance != b.distance ? a.distance < b.distance : a.id < b.id
        }
    }

    package init(k: Int) { self.k = k }

    /// The distance a candidate must beat to enter (infinity until k are held).
    @inline(__always) package var threshold: Float { heap.count < k ? .infinity : heap.max!.distance }

    @inline(__always) package mutating func offer(distance: Float, id: UInt64, row: Int) {
        if heap.count < k { heap.insert(Candidate(distance: distance, id: id, row: row)); return }
        let c = Candidate(distance: distance, id: id, row: row)
        if c < heap.max! { _ = heap.replaceMax(with: c) }
    }

    /// Candidates, closest first.
    package func sorted() -> [Candidate] { heap.unordered.sorted() }
}
