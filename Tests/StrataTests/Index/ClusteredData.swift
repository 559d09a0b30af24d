// Seeded clustered test vectors shared by the index tests.
import Foundation
@testable import StrataIndex

/// Small clustered data: `clusters` Gaussian blobs in `dim` dimensions, seeded.
func clusteredData(count: Int, dim: Int, clusters: Int = 16, seed: UInt64 = 7, normalise: Bool = false) -> [Float] {
    var rng = IndexRandom(seed: seed)
    func gauss() -> Float {
        // Box-Muller from two uniforms in (0, 1].
        let u1 = (Double(rng.next() >> 11) + 1) / Double(1 << 53)
        let u2 = Double(rng.next() >> 11) / Double(1 << 53)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
    }
    let centres = (0..<(clusters * dim)).map { _ in gauss() * 3 }
    var out = [Float](repeating: 0, count: count * dim)
    for i in 0..<count {
        let c = rng.below(clusters)
        var norm: Float = 0
        for j in 0..<dim {
            out[i * dim + j] = centres[c * dim + j] + gauss()
            norm += out[i * dim + j] * out[i * dim + j]
        }
        if normalise {
            let inv = 1 / norm.squareRoot()
            for j in 0..<dim { out[i * dim + j] *= inv }
        }
    }
    return out
}
