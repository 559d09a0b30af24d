/// Little-endian encoder into a growable byte array, for headers, directories and block encodings.
package struct ByteWriter {
    package var bytes: [UInt8] = []

    package init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    @inline(__always) package mutating func u8(_ v: UInt8) { bytes.append(v) }
    @inline(__always) package mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    @inline(__always) package mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    @inline(__always) package mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    @inline(__always) package mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    @inline(__always) package mutating func f64(_ v: Double) { u64(v.bitPattern) }
    @inline(__always) package mutating func f32(_ v: Float) { u32(v.bitPattern) }
    /// Appends every float, little-endian.
    package mutating func f32s(_ floats: [Float]) {
        bytes.reserveCapacity(bytes.count + floats.count * 4)
        for f in floats { u32(f.bitPattern) }
    }
    package mutating func raw(_ b: some Sequence<UInt8>) { bytes.append(contentsOf: b) }
    package mutating func zeros(_ n: Int) { bytes.append(contentsOf: repeatElement(0, count: n)) }
    /// Pads with zeros up to a multiple of `alignment`.
    package mutating func pad(to alignment: Int) {
        let r = bytes.count % alignment
        if r != 0 { zeros(alignment - r) }
    }
    package var count: Int { bytes.count }
}

/// Bounds-checked little-endian decoder over bytes read from a file. Every read checks the
/// remaining length first, so a corrupt or hostile length throws instead of trapping. Errors name
/// the section and the offset of the failing read: `baseOffset` plus the position, so a reader over
/// a whole file (or a section at its file offset) reports absolute offsets, and one with base 0
/// reports offsets within the section.
package struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    /// Current position within `bytes`.
    private(set) var position: Int = 0
    /// File offset of `bytes[0]` (0 for section-relative offsets), for error messages.
    let baseOffset: UInt64
    /// Section name for error messages.
    let section: String
    /// The code a read past the end throws: `.truncated` for files whose length is known from a
    /// header, `.corrupt` for blobs whose stated lengths are themselves part of the damage.
    let truncationCode: StrataError.Code

    package init(_ bytes: UnsafeRawBufferPointer, baseOffset: UInt64 = 0, section: String,
                 truncationCode: StrataError.Code = .truncated) {
        self.bytes = bytes
        self.baseOffset = baseOffset
        self.section = section
        self.truncationCode = truncationCode
    }

    package var remaining: Int { bytes.count - position }
    package var absoluteOffset: UInt64 { baseOffset + UInt64(position) }

    package func error(_ message: String, code: StrataError.Code = .corrupt) -> StrataError {
        StrataError(code, message, section: section, offset: absoluteOffset)
    }

    @inline(__always)
    private mutating func take(_ n: Int) throws(StrataError) -> Int {
        guard n >= 0, n <= remaining else { throw error("needs \(n) bytes, \(remaining) left", code: truncationCode) }
        let p = position
        position += n
        return p
    }

    package mutating func u8() throws(StrataError) -> UInt8 { bytes[try take(1)] }
    package mutating func u16() throws(StrataError) -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(2), as: UInt16.self)) }
    package mutating func u32() throws(StrataError) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(4), as: UInt32.self)) }
    package mutating func u64() throws(StrataError) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8), as: UInt64.self)) }
    package mutating func i64() throws(StrataError) -> Int64 { Int64(bitPattern: try u64()) }
    package mutating func f64() throws(StrataError) -> Double { Double(bitPattern: try u64()) }
    /// Returns the next `n` bytes as a slice view (no copy).
    package mutating func slice(_ n: Int) throws(StrataError) -> UnsafeRawBufferPointer {
        let p = try take(n)
        return UnsafeRawBufferPointer(rebasing: bytes[p..<(p + n)])
    }
    package mutating func skip(_ n: Int) throws(StrataError) { _ = try take(n) }
    /// Skips `n` reserved bytes that must be zero.
    package mutating func reservedZeros(_ n: Int) throws(StrataError) {
        let at = absoluteOffset
        let s = try slice(n)
        guard s.allSatisfy({ $0 == 0 }) else {
            throw StrataError(.corrupt, "reserved bytes are not zero", section: section, offset: at)
        }
    }
    mutating func seek(to p: Int) throws(StrataError) {
        guard p >= 0, p <= bytes.count else { throw error("seek past end", code: truncationCode) }
        position = p
    }
    /// Reads `magic` (as UTF-8) or throws `.corrupt`.
    package mutating func expectMagic(_ magic: String) throws(StrataError) {
        let m = Array(magic.utf8)
        let at = absoluteOffset
        let s = try slice(m.count)
        guard s.elementsEqual(m) else { throw StrataError(.corrupt, "bad magic, expected \(magic)", section: section, offset: at) }
    }
    /// Reads `count` little-endian floats; `what` names them when `count` is too large (checked,
    /// overflow-safe, before anything is allocated).
    package mutating func f32s(_ count: Int, _ what: String) throws(StrataError) -> [Float] {
        let (n, overflow) = count.multipliedReportingOverflow(by: 4)
        if overflow || count < 0 { throw error("\(what): count \(count) too large") }
        let s = try slice(n)
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: s.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
            initialized = count
        }
    }
    /// Throws `.corrupt` unless every byte has been read.
    package func expectEnd() throws(StrataError) {
        if remaining != 0 { throw error("\(remaining) trailing bytes") }
    }
}

/// Overflow-checked arithmetic on sizes read from files.
package enum Checked {
    /// `a * b`, or nil on overflow.
    @inline(__always) package static func mul(_ a: UInt64, _ b: UInt64) -> UInt64? {
        let (r, o) = a.multipliedReportingOverflow(by: b); return o ? nil : r
    }
    /// `a + b`, or nil on overflow.
    @inline(__always) package static func add(_ a: UInt64, _ b: UInt64) -> UInt64? {
        let (r, o) = a.addingReportingOverflow(b); return o ? nil : r
    }
    /// Whether `[offset, offset+length)` lies within `[0, limit)`.
    @inline(__always) package static func fits(offset: UInt64, length: UInt64, within limit: UInt64) -> Bool {
        offset <= limit && length <= limit - offset
    }
}

/// Rounds `value` up to a multiple of `alignment` (a power of two).
@inline(__always)
package func alignUp(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
    (value + alignment - 1) & ~(alignment - 1)
}

extension Array {
    /// `withUnsafeBytes` for a body with typed throws (the standard one rethrows untyped errors).
    @inline(__always)
    package func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws(StrataError) -> R) throws(StrataError) -> R {
        try withUnsafeBytes { raw in Result { () throws(StrataError) in try body(raw) } }.get()
    }

    /// `withUnsafeMutableBytes` for a body with typed throws.
    @inline(__always)
    package mutating func withMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws(StrataError) -> R) throws(StrataError) -> R {
        try withUnsafeMutableBytes { raw in Result { () throws(StrataError) in try body(raw) } }.get()
    }
}
