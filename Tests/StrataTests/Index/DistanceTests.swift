// Distance (the one metric dispatch and vector preparation), the kernel wrappers the engine uses
// instead of the C functions, the unified ByteReader, and the fence that keeps the C kernels behind
// StrataIndex.

import XCTest
import CStrataKernels
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex

final class DistanceTests: XCTestCase {
    /// Each metric maps to its kernel and convention: l2 is the squared distance, ip is -dot,
    /// cosine is 1 - dot, over float32 and float16 stored vectors, bit for bit.
    func testUnsafeDistanceMatchesKernelsForEveryMetricAndElementType() {
        var rng = IndexRandom(seed: 5)
        for dim in [1, 7, 16, 33, 128] {
            let q = (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }
            let v = (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }
            let h = DistanceKernels.halfBits(from: v)
            let dot32 = strata_dot_f32(q, v, dim), l2_32 = strata_l2sq_f32(q, v, dim)
            let dot16 = strata_dot_f16(q, h, dim), l2_16 = strata_l2sq_f16(q, h, dim)
            let expected: [(DistanceMetric, Float, Float)] = [
                (.l2, l2_32, l2_16), (.innerProduct, -dot32, -dot16), (.cosine, 1 - dot32, 1 - dot16),
            ]
            for (metric, e32, e16) in expected {
                let d32 = q.withUnsafeBufferPointer { qp in v.withUnsafeBytes { vp in
                    Distance(metric: metric, elementType: .float32).unsafeDistance(qp.baseAddress!, vp.baseAddress!, dimension: dim)
                } }
                let d16 = q.withUnsafeBufferPointer { qp in h.withUnsafeBytes { hp in
                    Distance(metric: metric, elementType: .float16).unsafeDistance(qp.baseAddress!, hp.baseAddress!, dimension: dim)
                } }
                XCTAssertEqual(d32.bitPattern, e32.bitPattern, "\(metric) f32 dim \(dim)")
                XCTAssertEqual(d16.bitPattern, e16.bitPattern, "\(metric) f16 dim \(dim)")
                XCTAssertEqual(Distance(metric: metric)(q, v).bitPattern, e32.bitPattern, "\(metric) safe dim \(dim)")
            }
        }
        // Empty vectors: the kernels' empty sums.
        XCTAssertEqual(Distance(metric: .l2)([], []), 0)
        XCTAssertEqual(Distance(metric: .innerProduct)([], []), 0)
        XCTAssertEqual(Distance(metric: .cosine)([], []), 1)
    }

    /// The one normalisation: Double sum of squares, Double division, one rounding, for queries and
    /// stored vectors alike; other metrics leave queries alone; a zero cosine query is invalid.
    func testPreparedQueriesAndStoredFormsAreUnitVectorsInDouble() throws {
        let v: [Float] = [3, -4, 1e-20, 2.5e18]
        let norm = v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let unit = v.map { Float(Double($0) / norm) }
        let cosine = Distance(metric: .cosine)
        XCTAssertEqual(try cosine.prepareQuery(v).map(\.bitPattern), unit.map(\.bitPattern))
        XCTAssertEqual(cosine.storedForm(v).map(\.bitPattern), unit.map(\.bitPattern))
        XCTAssertEqual(try Distance(metric: .l2).prepareQuery(v), v)
        XCTAssertEqual(try Distance(metric: .innerProduct).prepareQuery(v), v)
        XCTAssertEqual(Distance(metric: .l2).storedForm(v), v)
        // float16 storage rounds the (normalised) components to the nearest float16.
        let half = Distance(metric: .cosine, elementType: .float16).storedForm(v)
        XCTAssertEqual(half, unit.map { Float(Float16($0)) })
        XCTAssertEqual(Distance(metric: .l2, elementType: .float16).storedForm([1.0001, 65504]), [1, 65504])
        // A tiny vector is not taken for zero (float32 squares would underflow).
        let tiny: [Float] = [1e-30, -1e-30]
        let unitTiny = try cosine.prepareQuery(tiny)
        XCTAssertEqual(unitTiny[0], 0.70710677, accuracy: 1e-6)
        XCTAssertEqual(unitTiny[1], -0.70710677, accuracy: 1e-6)
        do {
            _ = try cosine.prepareQuery([0, 0, 0])
            XCTFail("a zero cosine query was accepted")
        } catch {
            XCTAssertEqual(error.code, .invalidValue)
        }
        XCTAssertEqual(try Distance(metric: .l2).prepareQuery([0, 0]), [0, 0])
    }

    /// A segment's exact search and a collection's write buffer score with the same Distance.
    func testSegmentAndBufferAgreeOnDistances() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-distance-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = IndexRandom(seed: 9)
        let dim = 12
        let rows = (0..<50).map { _ in (0..<dim).map { _ in Float.random(in: -2...2, using: &rng) } }
        let query = (0..<dim).map { _ in Float.random(in: -2...2, using: &rng) }
        for metric in DistanceMetric.allCases {
            let schema = SegmentSchema(dimension: dim, metric: metric)
            let path = dir.appendingPathComponent("\(metric).seg").path
            let writer = try SegmentWriter(path: path, schema: schema)
            for (i, r) in rows.enumerated() { try r.withUnsafeBufferPointer { try writer.append(id: UInt64(i), vector: $0, values: []) } }
            _ = try writer.finish()
            let seg = try Segment.open(path: path)
            let hits = try seg.exactSearch(query: query, k: 5)
            let distance = Distance(schema)
            let q = try distance.prepareQuery(query)
            for hit in hits {
                let stored = distance.storedForm(rows[Int(hit.id)])
                XCTAssertEqual(hit.distance.bitPattern, distance(q, stored).bitPattern, "\(metric) id \(hit.id)")
            }
        }
    }

    /// The wrappers the filtered plan uses give the C kernels' results.
    func testQuantizedScanWrappersMatchTheKernels() {
        var rng = IndexRandom(seed: 3)
        let m = 8, rows = 300
        let table = (0..<(m * 256)).map { _ in Float.random(in: 0...4, using: &rng) }
        let codes = (0..<(rows * m)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let ids = (0..<rows).map { _ in UInt32(rng.below(rows)) }
        var lut = [UInt8](repeating: 0, count: m * 256), lutC = lut
        let scale = lut.withUnsafeMutableBufferPointer { QuantizedScanKernels.quantizeTable(table, subspaces: m, into: $0) }
        XCTAssertEqual(scale, strata_pq_lut_u8(table, m, &lutC))
        XCTAssertEqual(lut, lutC)
        var sums = [UInt16](repeating: 0, count: rows), sumsC = sums, part = sums, partC = sums
        sums.withUnsafeMutableBufferPointer {
            QuantizedScanKernels.unsafeScan(lut: lut, codes: codes, subspaces: m, ids: ids, count: rows, into: $0.baseAddress!)
        }
        strata_pq_scan_u8(lut, codes, m, ids, rows, &sumsC)
        XCTAssertEqual(sums, sumsC)
        part.withUnsafeMutableBufferPointer {
            QuantizedScanKernels.unsafeScanPartial(lut: lut, codes: codes, codeSize: m, subspaces: 4, ids: ids, count: rows,
                                                   into: $0.baseAddress!)
        }
        strata_pq_scan_u8_partial(lut, codes, m, 4, ids, rows, &partC)
        XCTAssertEqual(part, partC)
        var picked = [UInt32](repeating: 0, count: rows), pickedC = picked
        let n = sums.withUnsafeBufferPointer { s in picked.withUnsafeMutableBufferPointer { QuantizedScanKernels.selectSmallest(s, keep: 20, into: $0) } }
        XCTAssertEqual(n, strata_select_smallest_u16(sums, rows, 20, &pickedC))
        XCTAssertEqual(Array(picked[..<n]), Array(pickedC[..<n]))
        XCTAssertGreaterThanOrEqual(n, 20)
        let worst = picked[..<n].map { sums[Int($0)] }.max()!
        XCTAssertEqual(sums.filter { $0 < worst }.count, picked[..<n].filter { sums[Int($0)] < worst }.count)
        XCTAssertEqual(QuantizedScanKernels.hasVectorScan, strata_pq_scan_u8_isa() == 2)
        XCTAssertEqual(StrataRuntime.kernelInstructionSet, String(cString: strata_kernels_isa()))
    }
}

/// The one byte reader: absolute or section-relative offsets, and the error code of a short read.
final class ByteReaderTests: XCTestCase {
    func testOffsetsCodesAndBlobReads() throws {
        var w = ByteWriter()
        w.raw("MAGC".utf8); w.u32(7); w.f32s([1.5, -2]); w.f32(.infinity)
        let bytes = w.bytes
        XCTAssertEqual(bytes.count, 20)
        try bytes.withUnsafeBytes { raw in
            var r = ByteReader(raw, section: "blob", truncationCode: .corrupt)
            try r.expectMagic("MAGC")
            XCTAssertEqual(try r.u32(), 7)
            XCTAssertEqual(try r.f32s(3, "floats"), [1.5, -2, .infinity])
            try r.expectEnd()
            // Section-relative offsets (base 0) and the chosen truncation code.
            var short = ByteReader(UnsafeRawBufferPointer(rebasing: raw[0..<6]), section: "blob", truncationCode: .corrupt)
            _ = try short.u32()
            XCTAssertThrowsError(try short.u32()) { e in
                let e = e as! StrataError
                XCTAssertEqual(e.code, .corrupt)
                XCTAssertEqual(e.section, "blob")
                XCTAssertEqual(e.offset, 4)
            }
            XCTAssertThrowsError(try short.expectEnd()) { XCTAssertEqual(($0 as! StrataError).code, .corrupt) }
            // Absolute offsets, and .truncated by default.
            var file = ByteReader(raw, baseOffset: 4096, section: "header")
            try file.skip(16)
            XCTAssertThrowsError(try file.u64()) { e in
                let e = e as! StrataError
                XCTAssertEqual(e.code, .truncated)
                XCTAssertEqual(e.offset, 4096 + 16)
            }
            var magic = ByteReader(raw, section: "blob")
            XCTAssertThrowsError(try magic.expectMagic("MAGD")) { XCTAssertEqual(($0 as! StrataError).code, .corrupt) }
            // A float count whose byte size overflows is refused before any allocation.
            var huge = ByteReader(raw, section: "blob")
            XCTAssertThrowsError(try huge.f32s(Int.max / 2, "floats")) { XCTAssertEqual(($0 as! StrataError).code, .corrupt) }
            XCTAssertThrowsError(try huge.f32s(-1, "floats")) { XCTAssertEqual(($0 as! StrataError).code, .corrupt) }
        }
    }
}

/// The C kernels stay behind StrataIndex: no other module imports CStrataKernels (SwiftPM makes a
/// C module visible to every target above the one that depends on it, so Package.swift alone cannot
/// keep it out).
final class KernelFenceTests: XCTestCase {
    func testOnlyStrataIndexImportsTheKernels() throws {
        // The package root: the nearest folder above this file that holds Package.swift.
        var root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path), root.path != "/" {
            root.deleteLastPathComponent()
        }
        var offenders: [String] = []
        for dir in ["Sources", "tools"] {
            let base = root.appendingPathComponent(dir)
            guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in walker where url.pathExtension == "swift" {
                let path = url.path.replacingOccurrences(of: root.path + "/", with: "")
                if path.hasPrefix("Sources/StrataIndex/") || path.contains("/.build/") { continue }
                let text = try String(contentsOf: url, encoding: .utf8)
                if text.split(separator: "\n").contains(where: { $0.trimmingCharacters(in: .whitespaces).hasSuffix("import CStrataKernels") }) {
                    offenders.append(path)
                }
            }
        }
        XCTAssertEqual(offenders, [], "these files import CStrataKernels; use StrataIndex's wrappers")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("Sources/StrataIndex").path))
    }
}
