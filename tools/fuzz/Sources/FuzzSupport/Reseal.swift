// Re-sealing of mutated inputs: recompute the checksums that guard a file's structure so that a
// mutation reaches the decoders behind them (FORMAT.md sections 5, 8, C.3, C.4, C.5). Mirrored in
// Tests/StrataTests/FuzzRegressionTests.swift (`Reseal`).
import CFuzzXXHash

public enum Reseal {
    static func xxh3(_ b: [UInt8], _ range: Range<Int>) -> UInt64 {
        b.withUnsafeBytes { XXH3_64bits($0.baseAddress! + range.lowerBound, range.count) }
    }

    static func load64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) } }
    static func load32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) } }
    static func store64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) { for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }

    /// Segment: header checksum (0..<56 at 56), directory checksum (footer 24) when the directory
    /// lies inside the file, footer checksum (footer 0..<48 at 48).
    public static func segment(_ b: inout [UInt8]) {
        guard b.count >= 4160 else { return }
        store64(&b, 56, xxh3(b, 0..<56))
        let footer = b.count - 64
        let dirOffset = load64(b, footer), dirLength = load64(b, footer + 8)
        if dirOffset <= UInt64(footer), dirLength <= UInt64(footer) - dirOffset {
            store64(&b, footer + 24, xxh3(b, Int(dirOffset)..<Int(dirOffset + dirLength)))
        }
        store64(&b, footer + 48, xxh3(b, footer..<(footer + 48)))
    }

    /// MANIFEST and delete bitmap: XXH3 of every byte before the last 16 stored at size - 16.
    public static func trailer(_ b: inout [UInt8]) {
        guard b.count >= 16 else { return }
        store64(&b, b.count - 16, xxh3(b, 0..<(b.count - 16)))
    }

    /// WAL: header checksum, then each whole record's checksum (bytes 0..<8 then the body).
    public static func wal(_ b: inout [UInt8]) {
        guard b.count >= 32 else { return }
        store64(&b, 24, xxh3(b, 0..<24))
        var at = 32
        while b.count - at >= 16 {
            let length = Int(load32(b, at))
            guard length <= b.count - at - 16 else { break }
            store64(&b, at + 8, xxh3(Array(b[at..<(at + 8)]) + b[(at + 16)..<(at + 16 + length)], 0..<(8 + length)))
            at += 16 + length
        }
    }
}
