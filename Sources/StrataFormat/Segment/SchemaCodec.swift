// The bytes of a schema section (docs/SEGMENT-FORMAT.md 7.4), shared by segments and manifests.
/// Encoding of the schema section: u32 column count, then per column u8 type, u8 flags
/// (bit 0 nullable), u16 name length, name bytes (UTF-8).
package enum SchemaCodec {
    package static func encode(_ columns: [ColumnSpec]) -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(columns.count))
        for c in columns {
            w.u8(c.type.rawValue); w.u8(c.nullable ? 1 : 0)
            let name = Array(c.name.utf8)
            w.u16(UInt16(name.count)); w.raw(name)
        }
        return w.bytes
    }

    package static func decode(_ bytes: UnsafeRawBufferPointer, fileOffset: UInt64) throws(StrataError) -> [ColumnSpec] {
        var r = ByteReader(bytes, baseOffset: fileOffset, section: "schema")
        let count = try r.u32()
        guard UInt64(count) * 4 <= UInt64(bytes.count) else { throw r.error("column count \(count) exceeds the section") }
        var columns: [ColumnSpec] = []
        var names = Set<String>()
        for _ in 0..<count {
            let at = r.absoluteOffset
            let typeRaw = try r.u8(), flags = try r.u8(), length = try r.u16()
            guard let type = ColumnType(rawValue: typeRaw) else {
                throw StrataError(.unsupportedFeature, "unknown column type \(typeRaw)", section: "schema", offset: at)
            }
            guard flags & ~1 == 0 else { throw StrataError(.unsupportedFeature, "unknown column flags \(flags)", section: "schema", offset: at + 1) }
            let nameBytes = try r.slice(Int(length))
            guard length > 0, length <= 255, let name = String(validating: nameBytes, as: UTF8.self), names.insert(name).inserted else {
                throw StrataError(.corrupt, "bad or duplicate column name", section: "schema", offset: at + 4)
            }
            columns.append(ColumnSpec(name: name, type: type, nullable: flags & 1 != 0))
        }
        guard r.remaining == 0 else { throw r.error("trailing bytes after the schema") }
        return columns
    }
}
