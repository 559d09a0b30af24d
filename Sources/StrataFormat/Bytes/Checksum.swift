import CXXHash

/// XXH3-64 (seed 0), the checksum of every section and payload block.
package enum Checksum {
    /// XXH3-64 of `bytes`.
    @inline(__always)
    package static func xxh3(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        XXH3_64bits(bytes.baseAddress, bytes.count)
    }

    /// Streaming XXH3-64 state, for sections written in pieces.
    package final class Streaming {
        private let state: OpaquePointer
        package init() {
            state = XXH3_createState()
            XXH3_64bits_reset(state)
        }
        package func update(_ bytes: UnsafeRawBufferPointer) {
            if bytes.count > 0 { XXH3_64bits_update(state, bytes.baseAddress, bytes.count) }
        }
        package var digest: UInt64 { XXH3_64bits_digest(state) }
        deinit { XXH3_freeState(state) }
    }
}
