// Scores against Strata distances, score_threshold, the distance names, and reciprocal rank fusion.
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataServer

final class QdrantScoreTests: XCTestCase {
    func testScoresMatchQdrantsDefinitions() throws {
        let a: [Float] = [3, 4], b: [Float] = [1, 0]
        let dot: Float = 3, euclid: Float = (4 + 16 as Float).squareRoot(), cosine: Float = 3 / 5
        let ua = try VectorLimits.cosineUnitQuery(a), ub = try VectorLimits.cosineUnitQuery(b)
        func strata(_ m: DistanceMetric, _ x: [Float], _ y: [Float]) -> Float { Distance(metric: m)(x, y) }
        XCTAssertEqual(QdrantDistance.dot.score(distance: strata(.innerProduct, a, b)), dot, accuracy: 1e-6)
        XCTAssertEqual(QdrantDistance.euclid.score(distance: strata(.l2, a, b)), euclid, accuracy: 1e-6)
        XCTAssertEqual(QdrantDistance.cosine.score(distance: strata(.cosine, ua, ub)), cosine, accuracy: 1e-6)
        for d in QdrantDistance.allCases {
            for s: Float in [0.25, 0.5, 3] { XCTAssertEqual(d.score(distance: d.distance(score: s)), s, accuracy: 1e-6) }
            XCTAssertEqual(QdrantDistance(d.metric), d)
            XCTAssertEqual(try QdrantDistance.parse(d.rawValue, "p"), d)
        }
        XCTAssertEqual(QdrantDistance.euclid.score(distance: -1e-7), 0)             // rounding below zero
    }

    func testThresholds() {
        XCTAssertTrue(QdrantDistance.cosine.passes(score: 0.5, threshold: 0.5))
        XCTAssertFalse(QdrantDistance.cosine.passes(score: 0.49, threshold: 0.5))
        XCTAssertTrue(QdrantDistance.dot.passes(score: 7, threshold: -1))
        XCTAssertTrue(QdrantDistance.euclid.passes(score: 2, threshold: 2))
        XCTAssertFalse(QdrantDistance.euclid.passes(score: 2.1, threshold: 2))
        XCTAssertEqual(QdrantDistance.euclid.distanceBound(threshold: 2), 4)
        XCTAssertEqual(QdrantDistance.cosine.distanceBound(threshold: 0.75), 0.25)
        XCTAssertEqual(QdrantDistance.dot.distanceBound(threshold: 3), -3)
        XCTAssertEqual(QdrantDistance.euclid.distanceBound(threshold: -1), -1)     // nothing passes
    }

    func testRRFMatchesQdrant() {
        // Qdrant's formula with k = 2: 1/(p + 2) per list, p 0-based.
        let fused = RRF.fuse([[10, 20, 30], [30, 10, 40]], limit: 10)
        XCTAssertEqual(fused.map(\.id), [10, 30, 20, 40])
        XCTAssertEqual(fused[0].score, 1.0 / 2 + 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(fused[1].score, 1.0 / 4 + 1.0 / 2, accuracy: 1e-12)
        XCTAssertEqual(fused[2].score, 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(fused[3].score, 1.0 / 4, accuracy: 1e-12)
        XCTAssertEqual(RRF.fuse([[10, 20, 30], [30, 10, 40]], limit: 2).map(\.id), [10, 30])
        // Ties keep first appearance; k changes the scores.
        XCTAssertEqual(RRF.fuse([[1, 2], [2, 1]], limit: 5).map(\.id), [1, 2])
        XCTAssertEqual(RRF.fuse([[5]], k: 60, limit: 1)[0].score, 1.0 / 60, accuracy: 1e-12)
        // Weights: 1 / ((p + 1) / w + k - 1); weight 0 adds nothing.
        let w = RRF.fuse([[1, 2], [2, 1]], weights: [0.1, 1], limit: 5)
        XCTAssertEqual(w.map(\.id), [2, 1])
        XCTAssertEqual(w[0].score, 1.0 / (2 / 0.1 + 1) + 1.0 / 2, accuracy: 1e-12)
        XCTAssertEqual(w[1].score, 1.0 / (1 / 0.1 + 1) + 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(RRF.fuse([[1], [2]], weights: [0, 1], limit: 5).map(\.score), [1.0 / 2, 0])
        XCTAssertEqual(RRF.fuse([], limit: 3).count, 0)
    }
}
