// Swift face of the filtered-scan kernels (Sources/CStrataKernels/strata_filter_kernels.c): PQ
// distances of many scattered rows through a uint8-quantised look-up table, and the selection of
// the smallest sums. The Query layer's exact filtered plan reaches the C code only through here.
import CStrataKernels

/// PQ scans with a uint8 look-up table (64 rows per AVX-512 VBMI call) and selection of the rows
/// with the smallest sums.
///
/// The `unsafe` functions read and write exactly the counts they are given, unchecked: `ids` must be
/// rows of `codes`, and the caller keeps `subspaces * 255 < 65536` so that the sums fit in `UInt16`.
package enum QuantizedScanKernels {
    /// Whether the VBMI scan runs (the dispatcher's level is avx512 and the CPU has VBMI); otherwise
    /// the scans take the scalar path, with identical results but no speed advantage.
    @inlinable
    package static var hasVectorScan: Bool { strata_pq_scan_u8_isa() == 2 }

    /// Quantises a float ADC table (`subspaces x 256`) to `lut` (as many bytes) with one scale for all
    /// sub-spaces, so that the integer sums rank rows like the float sums up to rounding.
    /// - Returns: the scale (float units per step).
    @inlinable @discardableResult
    package static func quantizeTable(_ table: UnsafePointer<Float>, subspaces: Int,
                                      into lut: UnsafeMutableBufferPointer<UInt8>) -> Float {
        precondition(lut.count >= subspaces * 256, "look-up table too small")
        return strata_pq_lut_u8(table, subspaces, lut.baseAddress!)
    }

    /// `out[i]` = the sum over the `subspaces` sub-spaces of `lut[s * 256 + codes[ids[i] * subspaces + s]]`.
    @inlinable
    package static func unsafeScan(lut: UnsafePointer<UInt8>, codes: UnsafePointer<UInt8>, subspaces: Int,
                                   ids: UnsafePointer<UInt32>, count: Int, into out: UnsafeMutablePointer<UInt16>) {
        strata_pq_scan_u8(lut, codes, subspaces, ids, count, out)
    }

    /// As ``unsafeScan(lut:codes:subspaces:ids:count:into:)`` over the first `subspaces` sub-spaces of
    /// codes whose rows are `codeSize` bytes (`subspaces <= codeSize`): partial sums for a cheaper
    /// first pass.
    @inlinable
    package static func unsafeScanPartial(lut: UnsafePointer<UInt8>, codes: UnsafePointer<UInt8>, codeSize: Int,
                                          subspaces: Int, ids: UnsafePointer<UInt32>, count: Int,
                                          into out: UnsafeMutablePointer<UInt16>) {
        strata_pq_scan_u8_partial(lut, codes, codeSize, subspaces, ids, count, out)
    }

    /// Indices into `sums` of at least `min(keep, sums.count)` smallest sums, written to the front of
    /// `out`: every sum below the largest selected one is included; ties at the boundary may add more.
    /// O(`sums.count`).
    /// - Returns: the number of indices written.
    @inlinable
    package static func selectSmallest(_ sums: UnsafeBufferPointer<UInt16>, keep: Int,
                                       into out: UnsafeMutableBufferPointer<UInt32>) -> Int {
        precondition(out.count >= sums.count && keep >= 0, "selection output too small")
        guard let s = sums.baseAddress, let o = out.baseAddress else { return 0 }
        return strata_select_smallest_u16(s, sums.count, keep, o)
    }
}
