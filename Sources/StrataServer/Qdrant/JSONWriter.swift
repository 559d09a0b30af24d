// A small JSON writer for response bodies: appends UTF-8 bytes to one array, no Foundation, no
// intermediate values. Search results with vectors are the hot path (k points of d floats), so
// numbers are printed straight from Swift's shortest round-trip formatting.
//
// Containers are opened and closed explicitly; the writer inserts commas and colons itself. It
// does not check nesting (a mismatched `end` is a programming error, not an input error: every
// caller is in this module and writes a fixed shape).

/// Appends JSON tokens to ``bytes``.
package struct JSONWriter: Sendable {
    /// The document written so far.
    package private(set) var bytes: [UInt8] = []
    /// Per open container: whether it already holds a member (the next one needs a comma).
    private var hasMember: [Bool] = []
    /// A key was just written: the next value follows its colon, without a comma.
    private var afterKey = false

    /// An empty writer; `capacity` reserves bytes up front.
    package init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    /// The document as a String.
    package var string: String { String(decoding: bytes, as: UTF8.self) }

    private mutating func separate() {
        if afterKey { afterKey = false; return }
        if let last = hasMember.last {
            if last { bytes.append(UInt8(ascii: ",")) } else { hasMember[hasMember.count - 1] = true }
        }
    }

    /// `{`.
    package mutating func beginObject() { separate(); bytes.append(UInt8(ascii: "{")); hasMember.append(false) }
    /// `}`.
    package mutating func endObject() { hasMember.removeLast(); bytes.append(UInt8(ascii: "}")) }
    /// `[`.
    package mutating func beginArray() { separate(); bytes.append(UInt8(ascii: "[")); hasMember.append(false) }
    /// `]`.
    package mutating func endArray() { hasMember.removeLast(); bytes.append(UInt8(ascii: "]")) }

    /// `"name":` inside an object; the next call writes its value.
    package mutating func key(_ name: String) {
        separate()
        appendString(name)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    /// A string value, escaped per RFC 8259.
    package mutating func string(_ s: String) { separate(); appendString(s) }
    /// `true` / `false`.
    package mutating func bool(_ b: Bool) { separate(); bytes.append(contentsOf: (b ? "true" : "false").utf8) }
    /// `null`.
    package mutating func null() { separate(); bytes.append(contentsOf: "null".utf8) }
    /// An integer, exact.
    package mutating func int(_ v: Int64) { separate(); bytes.append(contentsOf: String(v).utf8) }
    /// An unsigned integer, exact.
    package mutating func uint(_ v: UInt64) { separate(); bytes.append(contentsOf: String(v).utf8) }
    /// A float32 printed as its shortest round-trip decimal (`0.1`, `1e-05`). JSON has no
    /// infinities or NaN: those print as `null` (callers keep distances finite; see VectorLimits).
    package mutating func float(_ v: Float) {
        separate()
        if v.isFinite { bytes.append(contentsOf: v.description.utf8) } else { bytes.append(contentsOf: "null".utf8) }
    }
    /// A float64 printed as its shortest round-trip decimal; non-finite values print as `null`.
    package mutating func double(_ v: Double) {
        separate()
        if v.isFinite { bytes.append(contentsOf: v.description.utf8) } else { bytes.append(contentsOf: "null".utf8) }
    }
    /// A JSON array of float32s.
    package mutating func floats(_ values: [Float]) {
        beginArray()
        for v in values { float(v) }
        endArray()
    }
    /// Already-encoded JSON (a nested document written by another writer), inserted as one value.
    package mutating func raw(_ json: [UInt8]) { separate(); bytes.append(contentsOf: json) }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    private mutating func appendString(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "\\"))
            case 0x0A: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "t"))
            case 0..<0x20:
                bytes.append(contentsOf: "\\u00".utf8)
                bytes.append(Self.hex[Int(b >> 4)])
                bytes.append(Self.hex[Int(b & 0xF)])
            default: bytes.append(b)         // UTF-8 passes through (a Swift String is valid UTF-8)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
