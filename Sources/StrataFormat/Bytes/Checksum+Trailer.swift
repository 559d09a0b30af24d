// The checksum trailer that ends the segment header and footer, the manifest, the delete bitmaps and
// the WAL header: a little-endian UInt64 holding the XXH3-64 of every byte before it.

extension Checksum {
    /// Whether the little-endian UInt64 at `offset` in `bytes` is the XXH3-64 of `bytes[0..<offset]`.
    /// `offset + 8` must not exceed `bytes.count` (callers check the length first).
    package static func trailerMatches(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        let stored = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        return xxh3(UnsafeRawBufferPointer(rebasing: bytes[0..<offset])) == stored
    }
}

extension ByteWriter {
    /// Appends the checksum trailer: the XXH3-64 of every byte written so far.
    package mutating func checksumTrailer() {
        u64(bytes.withUnsafeBytes { Checksum.xxh3($0) })
    }
}
