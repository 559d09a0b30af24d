import ArgumentParser
import Strata

/// Index flags shared by `build` and `bench`.
struct IndexFlags: ParsableArguments {
    @Flag(name: .long, help: "Build the ANN index (PQ codes + Vamana graph).")
    var index = false

    @Option(name: .customLong("pq-m"), help: "PQ sub-spaces M (code bytes per vector); default: dimension / 4.")
    var pqM: Int?

    @Option(name: .customLong("max-degree"), help: "Graph max degree R.")
    var maxDegree: Int = VamanaParameters().maxDegree

    @Option(name: .customLong("build-list"), help: "Graph build list size L.")
    var buildList: Int = VamanaParameters().buildListSize

    @Option(name: .long, help: "RobustPrune alpha (second pass).")
    var alpha: Float = VamanaParameters().alpha

    @Flag(name: .customLong("saturate"), inversion: .prefixedNo,
          help: "Fill each pruned neighbour list up to R with the closest candidates the occlusion rule dropped (DiskANN's saturated graph).")
    var saturate = VamanaParameters().saturate

    @Flag(name: .customLong("block-layout"), inversion: .prefixedNo,
          help: "Place graph records block-aware (layout version 2): each node shares its 4 KB sector with near neighbours, which direct-I/O searches expand without another read. --no-block-layout keeps row order.")
    var blockLayout = IndexOptions().blockLayout

    @Option(name: .long, help: "Seed (graph and PQ); same seed, same bytes.")
    var seed: UInt64 = VamanaParameters().seed

    @Option(name: .customLong("build-threads"), help: "Build threads (default: all cores).")
    var buildThreads: Int?

    @Option(name: .customLong("min-index-rows"), help: "Segments with fewer rows are searched exactly.")
    var minIndexRows: Int = IndexOptions.defaultMinimumRows

    @Option(name: .customLong("memory-budget"),
            help: "Memory for the graph build, e.g. 2G or 1500M; above it the graph is built out of core in partitions (default: in memory).")
    var memoryBudget: String?

    func validate() throws {
        if let b = memoryBudget {
            guard let bytes = CollectionCompactCommand.parseBytes(b) else {
                throw ValidationError("--memory-budget must be a size such as 512M, 2G or a byte count")
            }
            // The graph build keeps 32 MiB for itself (PartitionedGraphBuilder); below 64 MiB no build fits.
            guard bytes >= 64 << 20 else { throw ValidationError("--memory-budget must be at least 64M (got \(bytes) bytes)") }
        }
        guard minIndexRows >= 0 else { throw ValidationError("--min-index-rows must be >= 0") }
        if let pqM, pqM < 1 { throw ValidationError("--pq-m must be at least 1") }
        // The graph parameters are checked now, not after the vectors were written.
        do { try options(force: true)!.graph.validate() } catch { throw ValidationError(error.message) }
    }

    func options(force: Bool = false) -> IndexOptions? {
        guard index || force else { return nil }
        var o = IndexOptions()
        o.pqSubspaces = pqM
        o.graph.maxDegree = maxDegree
        o.graph.buildListSize = buildList
        o.graph.alpha = alpha
        o.graph.saturate = saturate
        o.blockLayout = blockLayout
        o.graph.seed = seed
        o.graph.threads = buildThreads
        o.minimumRows = minIndexRows
        o.memoryBudget = memoryBudget.flatMap(CollectionCompactCommand.parseBytes)
        return o
    }
}
