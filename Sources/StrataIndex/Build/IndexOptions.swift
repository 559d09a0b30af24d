// The options of a segment's index build and the progress it reports.
import StrataFormat

/// How a segment's ANN index is built (the segment writer and collections take these as options).
public struct IndexOptions: Sendable, Equatable {
    /// PQ sub-spaces M (code bytes per vector); nil picks `ProductQuantizer.defaultSubspaceCount(dimension:)`.
    public var pqSubspaces: Int? = nil
    /// Rows sampled to train the PQ codebooks.
    public var pqTrainingSample: Int = 20_000
    /// Lloyd iterations per sub-space.
    public var pqIterations: Int = 12
    /// Vamana parameters (R, L, alpha, passes, seed, threads).
    public var graph = VamanaParameters()
    /// Segments with fewer rows get no index: exact search over them is as fast as a graph search.
    public var minimumRows: Int = IndexOptions.defaultMinimumRows
    /// Bytes of anonymous memory the graph build may use; when an in-memory build of the whole
    /// segment needs more, the graph is built out of core in overlapping partitions (DiskANN's
    /// method; see Graph/PartitionedGraphBuilder.swift). nil: always in memory.
    public var memoryBudget: Int? = nil
    /// Place graph records block-aware (graph layout version 2, Starling's block shuffling): a
    /// node shares its 4 KB sector with the neighbours it is most likely expanded with, and a
    /// direct-I/O search expands those without another read. Applies where two or more records fit
    /// a sector; costs 4 B per record and a 4 B-per-node placement table. Default true.
    public var blockLayout: Bool = true

    /// Below this many rows a segment is scanned exactly (2,000 rows x 384 dims is ~3 MB per scan).
    public static let defaultMinimumRows = 2_000

    /// Default options.
    public init() {}
}

/// Progress of an index build, reported between units of work (never from a hot loop).
public struct IndexBuildProgress: Sendable {
    /// What is running: "pq-train", "pq-encode", "partition", "graph", "merge", "connect", "layout".
    public var phase: String
    /// Units of `phase` done so far (rows, or partitions for "graph").
    public var done: Int
    /// Units of `phase` in all.
    public var total: Int
    /// A short note (e.g. the partition being built), may be empty.
    public var detail: String

    package init(phase: String, done: Int, total: Int, detail: String) {
        self.phase = phase
        self.done = done
        self.total = total
        self.detail = detail
    }
}
