// The entry point of a Vamana graph: the row nearest to the mean of all rows. One implementation for
// the in-memory build (over its float32 input) and the out-of-core build (over the mapped segment).
import CStrataKernels

enum Medoid {
    /// Rows per chunk of the parallel mean: chunk sums are added in chunk order.
    static let chunkRows = 1 << 14

    /// The row nearest (squared L2) to the mean of `rows`, ties to the lower row; 0 when there are
    /// fewer than two rows.
    ///
    /// The mean is summed in `Double`, row by row within chunks of ``chunkRows`` and then chunk by
    /// chunk in chunk order, and rounded to float32 once: the result does not depend on `threads`.
    static func of<Rows: BuildRows>(_ rows: Rows, threads: Int) -> Int {
        let n = rows.count, d = rows.dimension
        if n <= 1 { return 0 }
        let chunk = chunkRows
        let chunks = (n + chunk - 1) / chunk
        var partial = [Double](repeating: 0, count: chunks * d)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: threads * d)
        defer { scratch.deallocate() }
        let sp = SendablePointer(scratch)
        partial.withUnsafeMutableBufferPointer { pp in
            let out = SendablePointer(pp.baseAddress!)
            IndexParallel.forEach(count: chunks, threads: threads) { w, k in
                let sum = out.base + k * d
                for i in (k * chunk)..<min(n, (k + 1) * chunk) {
                    let v = rows.float32Row(i, scratch: sp.base + w * d)
                    for j in 0..<d { sum[j] += Double(v[j]) }
                }
            }
        }
        var mean = [Float](repeating: 0, count: d)
        for j in 0..<d {
            var s = 0.0
            for k in 0..<chunks { s += partial[k * d + j] }
            mean[j] = Float(s / Double(n))
        }
        var bestDist = [Float](repeating: .infinity, count: chunks)
        var bestRow = [Int](repeating: 0, count: chunks)
        mean.withUnsafeBufferPointer { mp in
            let m = UncheckedBox(mp.baseAddress!)
            bestDist.withUnsafeMutableBufferPointer { bd in
                bestRow.withUnsafeMutableBufferPointer { br in
                    let od = SendablePointer(bd.baseAddress!), orow = SendablePointer(br.baseAddress!)
                    IndexParallel.forEach(count: chunks, threads: threads) { w, k in
                        for i in (k * chunk)..<min(n, (k + 1) * chunk) {
                            let v = rows.float32Row(i, scratch: sp.base + w * d)
                            let dist = strata_l2sq_f32(v, m.value, d)
                            if dist < od.base[k] { od.base[k] = dist; orow.base[k] = i }
                        }
                    }
                }
            }
        }
        var best = 0
        for k in 1..<chunks where bestDist[k] < bestDist[best] { best = k }
        return bestRow[best]
    }
}
