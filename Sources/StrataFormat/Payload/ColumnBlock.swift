// Encoding of one payload block (rows [first, first+n) of one column) before compression.
//
// Decoded block layout (little-endian, no padding):
//   presence bitmap   ceil(n/8) B   only for nullable columns; bit i (LSB first) = 1: row i has a value
//   then by type:
//   int64 / float64   n x 8 B       null rows hold 0
//   bool              ceil(n/8) B   bit i = value of row i
//   string            (n+1) x u32 offsets into the bytes (offsets[0] = 0, non-decreasing), then bytes
//   string_list       (n+1) x u32 item starts (items of row i are [s[i], s[i+1])), then
//                     (m+1) x u32 byte offsets of the m items, then bytes
// A block is stored LZ4-compressed (raw when compression does not shrink it); see ColumnSection.
import CLZ4

/// Accumulates values of one column for the block being built.
struct ColumnBlockBuilder {
    let type: ColumnType
    let nullable: Bool
    private(set) var rowCount = 0
    private(set) var nullCount = 0
    private var presence: [UInt8] = []
    private var fixed: [UInt64] = []
    private var bits: [UInt8] = []
    private var listStarts: [UInt32] = [0]
    private var offsets: [UInt32] = [0]
    private var bytes: [UInt8] = []
    private(set) var zone = ZoneMapBuilder()

    init(type: ColumnType, nullable: Bool) {
        self.type = type
        self.nullable = nullable
    }

    /// Approximate decoded size so far, to cap block size.
    var approximateBytes: Int { presence.count + fixed.count * 8 + bits.count + listStarts.count * 4 + offsets.count * 4 + bytes.count }

    /// Appends a value already checked against the column type. Returns the value's hash for statistics.
    mutating func append(_ value: PayloadValue, distinct: inout DistinctEstimator) {
        let i = rowCount
        rowCount += 1
        if nullable {
            if i % 8 == 0 { presence.append(0) }
            if case .null = value { nullCount += 1 } else { presence[i / 8] |= UInt8(1 << (i % 8)) }
        }
        if type == .bool, i % 8 == 0 { bits.append(0) }
        switch value {
        case .null:
            switch type {
            case .int64, .float64: fixed.append(0)
            case .bool: break
            case .string: offsets.append(UInt32(bytes.count))
            case .stringList: listStarts.append(UInt32(offsets.count - 1))
            }
        case .int64(let v):
            fixed.append(UInt64(bitPattern: v)); zone.add(v)
            distinct.add(hash: hashOf(UInt64(bitPattern: v)))
        case .float64(let v):
            fixed.append(v.bitPattern); zone.add(v)
            distinct.add(hash: hashOf(v.bitPattern))
        case .bool(let v):
            if v { bits[i / 8] |= UInt8(1 << (i % 8)) }
            distinct.add(hash: hashOf(v ? 1 : 2))
        case .string(let s):
            appendString(s, distinct: &distinct)
            offsets.append(UInt32(bytes.count))
        case .stringList(let list):
            for s in list {
                appendString(s, distinct: &distinct)
                offsets.append(UInt32(bytes.count))
            }
            listStarts.append(UInt32(offsets.count - 1))
        }
    }

    private mutating func appendString(_ s: String, distinct: inout DistinctEstimator) {
        var s = s
        s.withUTF8 { utf8 in
            bytes.append(contentsOf: utf8)
            zone.add(utf8: utf8)
            distinct.add(hash: Checksum.xxh3(UnsafeRawBufferPointer(utf8)))
        }
    }

    private func hashOf(_ v: UInt64) -> UInt64 {
        withUnsafeBytes(of: v) { Checksum.xxh3($0) }
    }

    /// The decoded block bytes.
    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: approximateBytes)
        if nullable { w.raw(presence) }
        switch type {
        case .int64, .float64: for v in fixed { w.u64(v) }
        case .bool: w.raw(bits)
        case .string: for o in offsets { w.u32(o) }; w.raw(bytes)
        case .stringList:
            for s in listStarts { w.u32(s) }
            for o in offsets { w.u32(o) }
            w.raw(bytes)
        }
        return w.bytes
    }

    /// Starts the next block.
    mutating func reset() {
        self = ColumnBlockBuilder(type: type, nullable: nullable)
    }
}

/// A decoded block, validated on construction, read by row index within the block.
package struct DecodedColumnBlock {
    let type: ColumnType
    let nullable: Bool
    package let rowCount: Int
    let data: [UInt8]
    private let valuesStart: Int
    private let itemOffsetsStart: Int
    private let bytesStart: Int
    private let itemCount: Int

    /// Validates the layout; `errorAt` produces an error for a message (with section/offset filled in).
    init(type: ColumnType, nullable: Bool, rowCount: Int, data: [UInt8],
         errorAt: (String) -> StrataError) throws(StrataError) {
        self.type = type
        self.nullable = nullable
        self.rowCount = rowCount
        self.data = data
        let presenceBytes = nullable ? (rowCount + 7) / 8 : 0
        valuesStart = presenceBytes
        var items = 0, itemStart = 0, bytesAt = 0
        func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) })) }
        // Checks the `count + 1` offsets at `start` (0 first, non-decreasing, the last one the end of
        // the byte area that follows them); returns where that byte area begins. `kind` and `what`
        // name the block and the offsets in the errors.
        func checkOffsets(at start: Int, count: Int, kind: String, what: String) throws(StrataError) -> Int {
            let offsetsEnd = start + (count + 1) * 4
            guard data.count >= offsetsEnd else { throw errorAt("\(kind) block shorter than its \(what)s") }
            var previous = 0
            for i in 0...count {
                let o = u32(start + i * 4)
                guard (i == 0 ? o == 0 : o >= previous), o <= data.count - offsetsEnd else {
                    throw errorAt("\(kind) \(what) \(i) out of order or out of range")
                }
                previous = o
            }
            guard previous == data.count - offsetsEnd else { throw errorAt("\(kind) block has trailing bytes") }
            return offsetsEnd
        }
        switch type {
        case .int64, .float64:
            guard data.count == presenceBytes + rowCount * 8 else { throw errorAt("block is \(data.count) bytes, expected \(presenceBytes + rowCount * 8)") }
        case .bool:
            guard data.count == presenceBytes + (rowCount + 7) / 8 else { throw errorAt("bool block has wrong length \(data.count)") }
        case .string:
            bytesAt = try checkOffsets(at: presenceBytes, count: rowCount, kind: "string", what: "offset")
            items = rowCount
            itemStart = presenceBytes
        case .stringList:
            let startsEnd = presenceBytes + (rowCount + 1) * 4
            guard data.count >= startsEnd else { throw errorAt("list block shorter than its list starts") }
            var previous = 0
            for i in 0...rowCount {
                let s = u32(presenceBytes + i * 4)
                guard (i == 0 ? s == 0 : s >= previous) else { throw errorAt("list start \(i) out of order") }
                previous = s
            }
            items = previous
            let room = data.count - startsEnd
            guard room >= 4, items <= (room - 4) / 4 else {
                throw errorAt("list block item count \(items) exceeds block")
            }
            itemStart = startsEnd
            bytesAt = try checkOffsets(at: startsEnd, count: items, kind: "list", what: "item offset")
        }
        itemOffsetsStart = itemStart
        bytesStart = bytesAt
        itemCount = items
        if type == .string || type == .stringList {
            // Strings must be valid UTF-8 so that decoding never silently repairs them: the byte area
            // must be valid as a whole and no item boundary may fall inside a multi-byte character.
            let ok = data.withUnsafeBufferPointer { buf -> Bool in
                guard String(validating: UnsafeBufferPointer(rebasing: buf[bytesAt...]), as: UTF8.self) != nil else { return false }
                let raw = UnsafeRawBufferPointer(buf)
                for k in 0..<items {
                    let o = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: itemStart + k * 4, as: UInt32.self)))
                    if bytesAt + o < buf.count, buf[bytesAt + o] & 0xC0 == 0x80 { return false }
                }
                return true
            }
            guard ok else { throw errorAt("string bytes are not valid UTF-8") }
        }
    }

    private func u32(_ at: Int) -> Int {
        Int(UInt32(littleEndian: data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) }))
    }
    private func u64(_ at: Int) -> UInt64 {
        UInt64(littleEndian: data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self) })
    }

    /// Whether row `i` (within the block) is null.
    func isNull(_ i: Int) -> Bool {
        nullable && data[i / 8] & UInt8(1 << (i % 8)) == 0
    }

    private func item(_ k: Int) -> String {
        let a = u32(itemOffsetsStart + k * 4), b = u32(itemOffsetsStart + k * 4 + 4)
        return String(decoding: data[(bytesStart + a)..<(bytesStart + b)], as: UTF8.self)
    }

    /// The value of row `i` within the block (`0..<rowCount`).
    package func value(_ i: Int) -> PayloadValue {
        if isNull(i) { return .null }
        switch type {
        case .int64: return .int64(Int64(bitPattern: u64(valuesStart + i * 8)))
        case .float64: return .float64(Double(bitPattern: u64(valuesStart + i * 8)))
        case .bool: return .bool(data[valuesStart + i / 8] & UInt8(1 << (i % 8)) != 0)
        case .string: return .string(item(i))
        case .stringList:
            let s = u32(valuesStart + i * 4), e = u32(valuesStart + i * 4 + 4)
            return .stringList((s..<e).map(item))
        }
    }

    /// Number of null rows in the block.
    package var nullCount: Int {
        guard nullable else { return 0 }
        var n = 0
        for i in 0..<rowCount where isNull(i) { n += 1 }
        return n
    }

    /// Recomputes the block's zone map from its values (verify compares it with the stored one).
    package func computeZoneMap() -> ZoneMap {
        var z = ZoneMapBuilder()
        for i in 0..<rowCount where !isNull(i) {
            switch value(i) {
            case .int64(let v): z.add(v)
            case .float64(let v): z.add(v)
            case .string(let s): z.add(utf8: Array(s.utf8))
            case .stringList(let l): for s in l { z.add(utf8: Array(s.utf8)) }
            default: break
            }
        }
        return z.build()
    }
}

/// LZ4 block compression (liblz4).
enum LZ4 {
    /// Compresses `input`; returns nil when the result would not be smaller.
    static func compress(_ input: [UInt8]) -> [UInt8]? {
        guard input.count > 0, input.count < Int(LZ4_MAX_INPUT_SIZE) else { return nil }
        let bound = Int(LZ4_compressBound(Int32(input.count)))
        var output = [UInt8](repeating: 0, count: bound)
        let n = input.withUnsafeBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                src.withMemoryRebound(to: CChar.self) { s in
                    dst.withMemoryRebound(to: CChar.self) { d in
                        LZ4_compress_default(s.baseAddress, d.baseAddress, Int32(input.count), Int32(bound))
                    }
                }
            }
        }
        guard n > 0, Int(n) < input.count else { return nil }
        output.removeSubrange(Int(n)...)
        return output
    }

    /// Decompresses exactly `decodedLength` bytes; nil when the input is malformed (never reads or writes out of bounds).
    static func decompress(_ input: UnsafeRawBufferPointer, decodedLength: Int) -> [UInt8]? {
        guard decodedLength >= 0, input.count <= Int(Int32.max), decodedLength <= Int(Int32.max) else { return nil }
        if decodedLength == 0 { return input.count == 0 ? [] : nil }
        var output = [UInt8](repeating: 0, count: decodedLength)
        let n = output.withUnsafeMutableBytes { dst in
            LZ4_decompress_safe(input.baseAddress?.assumingMemoryBound(to: CChar.self),
                                dst.baseAddress!.assumingMemoryBound(to: CChar.self),
                                Int32(input.count), Int32(decodedLength))
        }
        guard n == Int32(decodedLength) else { return nil }
        return output
    }
}
