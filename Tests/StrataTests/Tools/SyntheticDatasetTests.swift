// `SyntheticDataset` and `strata gen`: byte-identical output for any thread count, ground truth equal
// to a brute-force reference, the block distance kernel against its Swift reference, argument checks,
// and the CLI's output read by `strata bench --dataset`.
import CStrataKernels
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class SyntheticDatasetTests: StrataTestCase {
    let files = ["base.fvecs", "query.fvecs", "groundtruth.ivecs"]

    func read(_ dir: String, _ name: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
    }

    func testOutputIsByteIdenticalForAnyThreadCount() throws {
        // 5,000 rows: four full 1,024-row streams and a partial one.
        let spec = SyntheticDatasetSpec(rows: 5000, dimension: 24, clusters: 7, seed: 99, queries: 40, groundTruthK: 10)
        let one = try SyntheticDataset.generate(spec, directory: tmpPath("t1"), threads: 1)
        _ = try SyntheticDataset.generate(spec, directory: tmpPath("t3"), threads: 3)
        XCTAssertEqual(one.baseBytes, UInt64(5000 * (4 + 4 * 24)))
        for f in files { XCTAssertEqual(try read(tmpPath("t1"), f), try read(tmpPath("t3"), f), f) }
        XCTAssertFalse(tmpContents().contains { $0.contains(".tmp-") }, "no temporary files left")

        // Another seed gives other data; same seed again gives the same bytes.
        var other = spec
        other.seed = 100
        _ = try SyntheticDataset.generate(other, directory: tmpPath("s100"), threads: 2)
        XCTAssertNotEqual(try read(tmpPath("t1"), "base.fvecs"), try read(tmpPath("s100"), "base.fvecs"))
        _ = try SyntheticDataset.generate(spec, directory: tmpPath("t2"), threads: 2)
        XCTAssertEqual(try read(tmpPath("t1"), "base.fvecs"), try read(tmpPath("t2"), "base.fvecs"))

        // Queries are not copies of base rows.
        let base = try VectorFile(path: tmpPath("t1") + "/base.fvecs")
        let queries = try VectorFile(path: tmpPath("t1") + "/query.fvecs")
        let baseRows = Set((0..<base.count).map { base.row($0) })
        XCTAssertTrue((0..<queries.count).allSatisfy { !baseRows.contains(queries.row($0)) })
    }

    /// The latent model puts rows within the residual of a k-dimensional linear subspace: Gram-Schmidt
    /// over the rows finds exactly k directions with a large residual; the isotropic model finds d.
    func testLatentModelHasTheRequestedIntrinsicDimension() throws {
        func significantDirections(intrinsic: Int) throws -> Int {
            var spec = SyntheticDatasetSpec(rows: 200, dimension: 32, clusters: 5, seed: 3, queries: 2, groundTruthK: 5)
            spec.intrinsicDimension = intrinsic
            let dir = tmpPath("latent\(intrinsic)")
            _ = try SyntheticDataset.generate(spec, directory: dir, threads: 2)
            let base = try VectorFile(path: dir + "/base.fvecs")
            var basis: [[Double]] = []
            // A residual norm above 20 x the residual scale x sqrt(d) is a new direction, not noise.
            let threshold = 20 * SyntheticDataset.residualScale * Double(32).squareRoot()
            for r in 0..<base.count {
                var v = base.row(r).map(Double.init)
                for b in basis {
                    let dot = zip(v, b).reduce(0) { $0 + $1.0 * $1.1 }
                    for j in 0..<v.count { v[j] -= dot * b[j] }
                }
                let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if norm > threshold { basis.append(v.map { $0 / norm }) }
            }
            return basis.count
        }
        XCTAssertEqual(try significantDirections(intrinsic: 4), 4)
        XCTAssertGreaterThan(try significantDirections(intrinsic: 0), 16, "isotropic clusters fill the space")
    }

    func testGroundTruthEqualsBruteForce() throws {
        let spec = SyntheticDatasetSpec(rows: 3000, dimension: 16, clusters: 12, seed: 7, queries: 50, groundTruthK: 20)
        let dir = tmpPath("gt")
        _ = try SyntheticDataset.generate(spec, directory: dir, threads: 2)
        let base = try VectorFile(path: dir + "/base.fvecs")
        let queries = try VectorFile(path: dir + "/query.fvecs")
        let truth = try readIvecs(path: dir + "/groundtruth.ivecs")
        XCTAssertEqual(base.count, 3000)
        XCTAssertEqual(base.dimension, 16)
        XCTAssertEqual(queries.count, 50)
        XCTAssertEqual(truth.count, 50)
        let rows = (0..<base.count).map { base.row($0) }
        for q in 0..<queries.count {
            let query = queries.row(q)
            var scored: [(distance: Double, row: Int)] = []
            for i in rows.indices { scored.append((ReferenceKernels.l2Squared(query, rows[i]), i)) }
            scored.sort { (a: (distance: Double, row: Int), b: (distance: Double, row: Int)) -> Bool in
                a.distance != b.distance ? a.distance < b.distance : a.row < b.row
            }
            let reference: [Int32] = scored.prefix(20).map { Int32($0.row) }
            XCTAssertEqual(truth[q], reference, "query \(q)")
        }
        // The standalone scan over the files gives the same answer, for any thread count.
        for threads in [1, 2, 5] {
            XCTAssertEqual(try SyntheticDataset.exactGroundTruth(base: base, queries: queries, k: 20, threads: threads), truth)
        }
        // Asking for more neighbours than rows returns every row.
        XCTAssertEqual(try SyntheticDataset.exactGroundTruth(base: base, queries: queries, k: 5000, threads: 2)[0].count, 3000)
    }

    func testNormalizedRowsAreUnitVectors() throws {
        let spec = SyntheticDatasetSpec(rows: 300, dimension: 10, clusters: 3, queries: 5, groundTruthK: 5, normalize: true)
        let dir = tmpPath("norm")
        _ = try SyntheticDataset.generate(spec, directory: dir, threads: 2)
        for name in ["base.fvecs", "query.fvecs"] {
            let f = try VectorFile(path: dir + "/" + name)
            for i in 0..<f.count {
                let v = f.row(i)
                XCTAssertEqual(ReferenceKernels.dot(v, v), 1, accuracy: 1e-5, "\(name) row \(i)")
            }
        }
    }

    func testBlockKernelMatchesReference() {
        // 7 rows (a 4-row tile and 3 single rows) in fvecs-like records (stride d + 1), 48 columns
        // (a 32-column tile and a 16-column rest), odd dimension.
        var rng = SplitMix64(seed: 5)
        let d = 13, n = 7, k = 48, stride = d + 1
        let x = (0..<(n * stride)).map { _ in rng.gaussianish() }
        let cols = (0..<k).map { _ in (0..<d).map { _ in rng.gaussianish() } }
        var qt = [Float](repeating: 0, count: d * k)
        for c in 0..<k { for j in 0..<d { qt[j * k + c] = cols[c][j] } }
        var out = [Float](repeating: -1, count: n * k)
        strata_l2_block_transposed_f32(x, stride, n, qt, d, k, &out)
        for r in 0..<n {
            let row = Array(x[(r * stride)..<(r * stride + d)])
            for c in 0..<k {
                let expected = ReferenceKernels.l2Squared(row, cols[c])
                XCTAssertEqual(Double(out[r * k + c]), expected, accuracy: 1e-5 * max(1, expected), "row \(r) column \(c)")
            }
        }
        // A row's distances do not depend on its position in the block.
        var single = [Float](repeating: 0, count: k)
        x.withUnsafeBufferPointer { strata_l2_block_transposed_f32($0.baseAddress! + 2 * stride, stride, 1, qt, d, k, &single) }
        XCTAssertEqual(single, Array(out[(2 * k)..<(3 * k)]))
    }

    func testBadArgumentsThrowInvalidArgument() throws {
        let good = SyntheticDatasetSpec(rows: 100, dimension: 8, clusters: 4, queries: 3, groundTruthK: 10)
        XCTAssertNoThrow(try good.validate())
        var bad: [SyntheticDatasetSpec] = []
        var s = good; s.rows = 0; bad.append(s)
        s = good; s.dimension = 0; bad.append(s)
        s = good; s.dimension = 4097; bad.append(s)
        s = good; s.clusters = 0; bad.append(s)
        s = good; s.clusters = 101; bad.append(s)
        s = good; s.queries = 0; bad.append(s)
        s = good; s.groundTruthK = 0; bad.append(s)
        s = good; s.groundTruthK = 101; bad.append(s)
        for spec in bad {
            do {
                _ = try SyntheticDataset.generate(spec, directory: tmpPath("bad"), threads: 1)
                XCTFail("accepted \(spec)")
            } catch {
                XCTAssertEqual(error.code, .invalidArgument, "\(error)")
            }
        }
        do {
            _ = try SyntheticDataset.generate(good, directory: tmpPath("bad"), threads: 0)
            XCTFail("accepted 0 threads")
        } catch {
            XCTAssertEqual(error.code, .invalidArgument)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmpPath("bad")), "nothing written for a bad spec")
    }

    func testCLIGenOutputWorksWithBench() throws {
        let dir = tmpPath("cli")
        let r = try runStrata(["gen", "--rows", "2000", "--dim", "16", "--clusters", "10", "--queries", "20", "--gt-k", "10",
                               "--out", dir, "--json"], scratch: tmp)
        XCTAssertEqual(r.status, 0, r.stderr)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        XCTAssertEqual(doc["rows"] as? Int, 2000)
        XCTAssertEqual(doc["gt_k"] as? Int, 10)
        XCTAssertEqual(try readIvecs(path: dir + "/groundtruth.ivecs").map(\.count), Array(repeating: 10, count: 20))
        XCTAssertEqual(try VectorFile(path: dir + "/query.fvecs").dimension, 16)

        let bench = try runStrata(["bench", "--dataset", dir, "--segment", tmpPath("cli.seg"), "--metric", "l2",
                                   "--k", "10", "--L", "64", "--json"], scratch: tmp)
        XCTAssertEqual(bench.status, 0, bench.stderr)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: bench.stdout) as? [String: Any])
        assertNoNumberAsString(result)
        let points = try XCTUnwrap(result["points"] as? [[String: Any]])
        XCTAssertGreaterThan(try XCTUnwrap(points.first?["recall_at_10"] as? Double), 0.8)

        // Usage errors exit 2 with a message.
        for args in [["--rows", "5", "--dim", "4", "--clusters", "2", "--gt-k", "6"],
                     ["--rows", "5", "--dim", "5000", "--clusters", "2"],
                     ["--rows", "5", "--dim", "4", "--clusters", "0"]] {
            let u = try runStrata(["gen"] + args + ["--out", tmpPath("usage")], scratch: tmp)
            XCTAssertEqual(u.status, 2, "\(args): \(u.stderr)")
            XCTAssertTrue(u.stderr.contains("must be"), u.stderr)
        }
    }
}
