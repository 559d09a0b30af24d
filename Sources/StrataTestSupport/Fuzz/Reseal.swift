// Re-sealing of mutated inputs: recompute the checksums that guard a file's structure so that a
// mutation reaches the decoders behind them (SEGMENT-FORMAT.md 5, 7.5, 8; COLLECTION-FORMAT.md C.3-C.5).
// Used by the fuzz targets (tools/fuzz) and by the tests that replay their crashers.
import StrataFormat

/// Checksum re-sealing of segment, MANIFEST, delete-bitmap and WAL bytes (the same XXH3-64 the
/// readers check), so that a mutated input gets past the checksums into the decoders.
package enum Reseal {
    package static func xxh3(_ b: [UInt8], _ range: Range<Int>) -> UInt64 { b[range].withUnsafeBytes { Checksum.xxh3($0) } }

    package static func load64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) } }
    package static func load32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) } }
    package static func store64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) { for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }

    /// Segment: header checksum (0..<56 at 56), directory checksum (footer 24) when the directory
    /// lies inside the file, footer checksum (footer 0..<48 at 48).
    package static func segment(_ b: inout [UInt8]) {
        guard b.count >= 4160 else { return }
        store64(&b, 56, xxh3(b, 0..<56))
        let footer = b.count - 64
        let dirOffset = load64(b, footer), dirLength = load64(b, footer + 8)
        if dirOffset <= UInt64(footer), dirLength <= UInt64(footer) - dirOffset {
            store64(&b, footer + 24, xxh3(b, Int(dirOffset)..<Int(dirOffset + dirLength)))
        }
        store64(&b, footer + 48, xxh3(b, footer..<(footer + 48)))
    }

    /// Segment, deep: first the XXH3 of every payload block inside each column section (block
    /// directory entry + 32, SEGMENT-FORMAT.md 7.5), then every section's checksum (directory entry + 32),
    /// then what ``segment(_:)`` re-seals. So mutated block bytes reach LZ4 and the block decoders,
    /// and `verify()` gets past the section checksums. Out-of-range offsets are skipped.
    package static func segmentDeep(_ b: inout [UInt8]) {
        guard b.count >= 4160 else { return }
        let footer = b.count - 64
        let dirOffset = load64(b, footer), dirLength = load64(b, footer + 8)
        if dirOffset <= UInt64(footer), dirLength <= UInt64(footer) - dirOffset {
            let entries = Int(dirLength / 64)
            for pass in 0..<2 {
                for e in 0..<entries {
                    let at = Int(dirOffset) + 64 * e
                    let kind = load32(b, at), offset = load64(b, at + 8), length = load64(b, at + 16)
                    guard offset <= UInt64(b.count), length <= UInt64(b.count) - offset else { continue }
                    let start = Int(offset), count = Int(length)
                    if pass == 0 {
                        if kind == 5 { resealColumnBlocks(&b, section: start, length: count) }
                    } else {
                        store64(&b, at + 32, xxh3(b, start..<(start + count)))
                    }
                }
            }
        }
        segment(&b)
    }

    /// Block checksums of one column section at `section` (header 128 B: block count at 24, block
    /// directory offset at 32; entry 64 B: offset at 16, stored length at 24, checksum at 32).
    static func resealColumnBlocks(_ b: inout [UInt8], section: Int, length: Int) {
        guard length >= 128 else { return }
        let blockCount = load64(b, section + 24), directory = load64(b, section + 32)
        guard directory <= UInt64(length) else { return }
        let entries = min(blockCount, (UInt64(length) - directory) / 64)
        for j in 0..<Int(entries) {
            let at = section + Int(directory) + 64 * j
            let offset = load64(b, at + 16), stored = UInt64(load32(b, at + 24))
            guard offset <= UInt64(length), stored <= UInt64(length) - offset else { continue }
            let start = section + Int(offset)
            store64(&b, at + 32, xxh3(b, start..<(start + Int(stored))))
        }
    }

    /// MANIFEST and delete bitmap: XXH3 of every byte before the last 16 stored at size - 16.
    package static func trailer(_ b: inout [UInt8]) {
        guard b.count >= 16 else { return }
        store64(&b, b.count - 16, xxh3(b, 0..<(b.count - 16)))
    }

    /// A format 2.0 WAL rewritten as format 1.0 (16-byte record headers, one checksum over bytes
    /// 0..<8 and the body), for a seed that reaches the 1.0 reader. Stops at a record that runs past
    /// the end.
    package static func walAsFormat1(_ b: [UInt8]) -> [UInt8] {
        guard b.count >= 32 else { return b }
        var out = Array(b[0..<32])
        out[8] = 1
        out[9] = 0
        store64(&out, 24, xxh3(out, 0..<24))
        var at = 32
        while b.count - at >= 32 {
            let length = Int(load32(b, at))
            guard length <= b.count - at - 32 else { break }
            let record = Array(b[at..<(at + 8)]) + [UInt8](repeating: 0, count: 8) + b[(at + 32)..<(at + 32 + length)]
            var r = record
            store64(&r, 8, xxh3(Array(record[0..<8]) + record[16...], 0..<(8 + length)))
            out += r
            at += 32 + length
        }
        return out
    }

    /// WAL: header checksum, then each whole record's checksums: format 1.0 (major 1) one over
    /// bytes 0..<8 and the body; 2.0 the body checksum (16) and then the header checksum (24, over
    /// bytes 0..<24). Record numbers are left as they are.
    package static func wal(_ b: inout [UInt8]) {
        guard b.count >= 32 else { return }
        store64(&b, 24, xxh3(b, 0..<24))
        let v1 = b[8] == 1 && b[9] == 0
        let header = v1 ? 16 : 32
        var at = 32
        while b.count - at >= header {
            let length = Int(load32(b, at))
            guard length <= b.count - at - header else { break }
            if v1 {
                store64(&b, at + 8, xxh3(Array(b[at..<(at + 8)]) + b[(at + 16)..<(at + 16 + length)], 0..<(8 + length)))
            } else {
                store64(&b, at + 16, xxh3(b, (at + 32)..<(at + 32 + length)))
                store64(&b, at + 24, xxh3(b, at..<(at + 24)))
            }
            at += header + length
        }
    }
}
