import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

/// `strata gen`: a deterministic synthetic clustered dataset with exact ground truth, in the layout
/// `strata bench --dataset` reads.
struct GenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen",
        abstract: "Write a deterministic clustered dataset (base.fvecs, query.fvecs) and its exact L2 ground truth (groundtruth.ivecs).",
        discussion: """
        Cluster centres ~ N(0, 1) per dimension; each row is a random centre plus Gaussian noise with a \
        per-cluster spread; queries come from separate random streams. The same --rows, --dim, --clusters, \
        --seed, --queries and --normalize give byte-identical files for any --threads. Ground truth: the \
        --gt-k nearest base rows per query by squared L2 (ties to the lower row), from an exact multi-threaded scan.
        """)

    @Option(name: .long, help: "Base rows (1...2147483647).")
    var rows: Int

    @Option(name: .long, help: "Dimensions (1...\(SyntheticDataset.maxDimension)).")
    var dim: Int

    @Option(name: .long, help: "Cluster centres (1...rows).")
    var clusters: Int

    @Option(name: .long, help: "Seed of all random streams.")
    var seed: UInt64 = SyntheticDataset.defaultSeed

    @Option(name: .long, help: "Query vectors.")
    var queries: Int = SyntheticDataset.defaultQueries

    @Option(name: .customLong("gt-k"), help: "Ground-truth neighbours per query (at most rows).")
    var gtK: Int = SyntheticDataset.defaultGroundTruthK

    @Option(name: .long, help: "Worker threads (default: all cores); does not change the output.")
    var threads: Int?

    @Option(name: .customLong("intrinsic-dim"),
            help: "Intrinsic dimension k: clusters in a k-dim latent space embedded linearly into --dim (0 or >= dim: isotropic clusters in the full space).")
    var intrinsicDim: Int = SyntheticDatasetSpec.defaultIntrinsicDimension

    @Flag(name: .long, help: "L2-normalise base and query rows (for cosine / ip benchmarks).")
    var normalize = false

    @Option(name: .long, help: "Output directory (created if missing).")
    var out: String

    @Flag(name: .long, help: "Print a JSON summary.")
    var json = false

    @OptionGroup var progressFlags: ProgressFlags

    var spec: SyntheticDatasetSpec {
        var s = SyntheticDatasetSpec(rows: rows, dimension: dim, clusters: clusters, seed: seed, queries: queries,
                                     groundTruthK: gtK, normalize: normalize)
        s.intrinsicDimension = intrinsicDim
        return s
    }

    func validate() throws {
        do { try spec.validate() } catch { throw ValidationError(error.message) }
        if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be in 1...1024") }
    }

    struct Summary: Encodable {
        var directory: String
        var rows: Int
        var dimension: Int
        var clusters: Int
        var intrinsic_dim: Int
        var queries: Int
        var gt_k: Int
        var seed: UInt64
        var normalize: Bool
        var threads: Int
        var base_bytes: UInt64
        var seconds: Double
        var ground_truth_seconds: Double
        var write_seconds: Double
        var kernels: String
    }

    func run() throws {
        let reporter = progressFlags.reporter("gen")
        let s = try SyntheticDataset.generate(spec, directory: out, threads: threads) { done in
            reporter.update(phase: "rows", done: done, total: rows)
        }
        reporter.finish(done: rows)
        let summary = Summary(directory: out, rows: rows, dimension: dim, clusters: clusters, intrinsic_dim: intrinsicDim, queries: queries, gt_k: gtK,
                              seed: seed, normalize: normalize, threads: s.threads, base_bytes: s.baseBytes,
                              seconds: s.totalSeconds, ground_truth_seconds: s.groundTruthSeconds,
                              write_seconds: s.writeSeconds, kernels: DistanceKernels.instructionSet)
        if json {
            try printJSON(summary)
        } else {
            print("wrote \(out): \(rows) x \(dim) base, \(queries) queries, top-\(gtK) ground truth in \(String(format: "%.2f", s.totalSeconds)) s (ground truth \(String(format: "%.2f", s.groundTruthSeconds)) s, \(s.threads) threads)")
        }
    }
}
