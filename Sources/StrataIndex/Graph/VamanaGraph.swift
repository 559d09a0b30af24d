// The Vamana graph produced by VamanaBuilder, and its build parameters.

import StrataFormat

/// Parameters of a Vamana build (DiskANN, Subramanya et al. 2019).
public struct VamanaParameters: Sendable, Equatable {
    /// Maximum out-degree R (1...4096). Default 64.
    public var maxDegree: Int = 64
    /// Search list size L used while building (>= R). Default 100.
    public var buildListSize: Int = 100
    /// Pruning alpha of the last pass (>= 1). Earlier passes use 1.0. Default 1.2.
    public var alpha: Float = 1.2
    /// Number of passes over all points (1...4); with several, all but the last use alpha 1.0.
    /// Default 1: on pypi-minilm-100k (R 64, L 100) a second pass (alpha 1.0 then 1.2, as in the
    /// paper) gave no recall gain (0.9491 vs 0.9506 recall@10 at search L 30) for twice the build time.
    public var passes: Int = 1
    /// Out-degree of the random initial graph (>= 0; capped at R). Default 16: enough to connect,
    /// cheap to refine.
    public var initialDegree: Int = 16
    /// Random seed: the initial graph, the insertion order and the k-means samples derive from it.
    public var seed: UInt64 = 0x5EED_1234
    /// Worker threads; `nil` uses all online cores. The graph does not depend on this.
    public var threads: Int? = nil
    /// Points inserted per batch (each batch searches a frozen graph in parallel, then applies its
    /// edges in a fixed order); `nil` picks `clamp(count / 64, 16, 2048)`. The graph depends on this.
    public var batchSize: Int? = nil
    /// Extra neighbour-list room while building, as a fraction of R: a list is pruned back to R only
    /// when reverse edges overflow `R * (1 + slack)`, and every list is pruned to R at the end.
    public var slack: Float = 0.3
    /// Fill each pruned list up to R with the closest candidates the occlusion rule dropped
    /// (DiskANN's saturated graph; applies when alpha > 1). Default false: it raises recall at equal
    /// L (1M x 96, R 32: 0.955 -> 0.969 at L 48) and cuts reads per query a little, but the build
    /// takes about 24 % longer and each hop scores more neighbours (docs/SCALE.md).
    public var saturate: Bool = false

    /// Default parameters.
    public init() {}

    /// Parameters with the given degree and build list size, other fields at their defaults.
    public init(maxDegree: Int, buildListSize: Int, alpha: Float = 1.2, passes: Int = 1, seed: UInt64 = 0x5EED_1234) {
        self.maxDegree = maxDegree
        self.buildListSize = buildListSize
        self.alpha = alpha
        self.passes = passes
        self.seed = seed
    }

    /// Checks every field's range.
    /// - Throws: `StrataError.Code.invalidArgument` naming the field.
    public func validate() throws(StrataError) {
        if maxDegree < 1 || maxDegree > 4096 {
            throw StrataError(.invalidArgument, "max degree R must be in 1...4096, got \(maxDegree)")
        }
        if buildListSize < maxDegree {
            throw StrataError(.invalidArgument, "build list size L (\(buildListSize)) must be at least R (\(maxDegree))")
        }
        if buildListSize > 100_000 {
            throw StrataError(.invalidArgument, "build list size L must be at most 100000, got \(buildListSize)")
        }
        if !(alpha >= 1 && alpha <= 4) { throw StrataError(.invalidArgument, "alpha must be in 1...4, got \(alpha)") }
        if passes < 1 || passes > 4 { throw StrataError(.invalidArgument, "passes must be in 1...4, got \(passes)") }
        if initialDegree < 0 { throw StrataError(.invalidArgument, "initial degree must be >= 0, got \(initialDegree)") }
        if let t = threads, t < 1 { throw StrataError(.invalidArgument, "threads must be positive, got \(t)") }
        if let b = batchSize, b < 1 { throw StrataError(.invalidArgument, "batch size must be positive, got \(b)") }
        if !(slack >= 0 && slack <= 2) { throw StrataError(.invalidArgument, "slack must be in 0...2, got \(slack)") }
    }
}

/// A directed graph over rows `0..<count` with out-degree at most ``maxDegree`` and an entry point.
///
/// Neighbours of node `i` are `neighbors[i * maxDegree ..< i * maxDegree + degrees[i]]`; the rest of
/// each row is zero.
package struct VamanaGraph: Sendable, Equatable {
    /// Number of nodes.
    public let count: Int
    /// Maximum out-degree R (row width of ``neighbors``).
    public let maxDegree: Int
    /// Entry point of every search: the row nearest to the mean of all rows.
    public let medoid: Int
    /// Out-degree per node.
    public let degrees: [UInt32]
    /// `count x maxDegree` neighbour ids, zero-padded.
    public let neighbors: [UInt32]

    /// Creates a graph; checks shapes, degrees and ids.
    /// - Throws: `StrataError.Code.invalidArgument` for inconsistent input.
    public init(count: Int, maxDegree: Int, medoid: Int, degrees: [UInt32], neighbors: [UInt32]) throws(StrataError) {
        if count < 0 || maxDegree < 1 || degrees.count != count || neighbors.count != count * maxDegree {
            throw StrataError(.invalidArgument, "graph arrays do not match count \(count) and degree \(maxDegree)")
        }
        if count > 0 && (medoid < 0 || medoid >= count) {
            throw StrataError(.invalidArgument, "medoid \(medoid) out of range")
        }
        for i in 0..<count {
            let d = Int(degrees[i])
            if d > maxDegree { throw StrataError(.invalidArgument, "node \(i) has degree \(d) > \(maxDegree)") }
            for j in 0..<d where Int(neighbors[i * maxDegree + j]) >= count {
                throw StrataError(.invalidArgument, "node \(i) has neighbour id out of range")
            }
        }
        self.init(unchecked: count, maxDegree: maxDegree, medoid: medoid, degrees: degrees, neighbors: neighbors)
    }

    init(unchecked count: Int, maxDegree: Int, medoid: Int, degrees: [UInt32], neighbors: [UInt32]) {
        self.count = count
        self.maxDegree = maxDegree
        self.medoid = medoid
        self.degrees = degrees
        self.neighbors = neighbors
    }

    /// The out-neighbours of `node`.
    public func neighbors(of node: Int) -> ArraySlice<UInt32> {
        neighbors[(node * maxDegree)..<(node * maxDegree + Int(degrees[node]))]
    }
}
