// Qdrant payloads (schemaless JSON objects) to Strata's typed, nullable payload columns and back.
//
// A key becomes a column the first time it appears, typed by its first value:
//   string -> string, integer -> int64, other number -> float64, boolean -> bool,
//   array of strings (also []) -> string_list.
// Later values must fit the column: an integer in a float64 column is widened; anything else is a
// 400 naming the key and both types. Nested objects, arrays of non-strings and mixed arrays are a
// 400 naming the key (Strata columns are flat). JSON null and absent keys are null. A key seen
// only with null creates no column until a typed value arrives; an empty list types its key as
// string_list. New columns are appended in order of first appearance over the
// batch; within one point, keys are taken in byte order (JSON objects are unordered once parsed).
// Column names are the keys: 1...255 bytes of UTF-8 (SegmentSchema.validate()).

import Strata
import StrataFormat

/// The result of mapping a batch of payloads onto columns.
package struct MappedPayloads: Sendable, Equatable {
    /// Columns to append to the collection (nullable), in first-appearance order.
    package var newColumns: [ColumnSpec]
    /// Per point, its values in the order of the existing columns followed by `newColumns`.
    package var rows: [[PayloadValue]]
}

/// Maps payload JSON onto columns and rows onto payload JSON.
package enum PayloadMapper {
    /// Maps `payloads` (one per point; nil for no payload) onto `columns` (the collection's current
    /// columns, in order). `path(i)` names point i's payload in messages (`points[3].payload`).
    /// Throws 400 when the columns would grow beyond `maxColumns`.
    package static func map(_ payloads: [[String: JSONValue]?], columns: [ColumnSpec], maxColumns: Int,
                            path: (Int) -> String) throws(QdrantError) -> MappedPayloads {
        var index: [String: Int] = [:]
        var types: [ColumnType] = []
        for (i, c) in columns.enumerated() { index[c.name] = i; types.append(c.type) }
        var newColumns: [ColumnSpec] = []
        // First pass: columns (so that every row has every column, including ones a later point adds).
        for (p, payload) in payloads.enumerated() {
            guard let payload else { continue }
            for key in payload.keys.sorted() where index[key] == nil {
                guard let t = try inferType(payload[key]!, key: key, path: path(p)) else { continue }
                let length = key.utf8.count
                guard (1...255).contains(length) else {
                    throw .wrongInput("\(path(p)): payload key '\(key.prefix(64))' must be 1...255 bytes of UTF-8 (it has \(length))")
                }
                guard types.count < maxColumns else {
                    throw .wrongInput("\(path(p)): payload key '\(key.prefix(64))' would be key number \(types.count + 1) of the collection, more than the limit of \(maxColumns) distinct payload keys")
                }
                index[key] = types.count
                types.append(t)
                newColumns.append(ColumnSpec(name: key, type: t, nullable: true))
            }
        }
        var rows: [[PayloadValue]] = []
        rows.reserveCapacity(payloads.count)
        for (p, payload) in payloads.enumerated() {
            var row = [PayloadValue](repeating: .null, count: types.count)
            if let payload {
                for (key, value) in payload {
                    guard let i = index[key] else { continue }       // only nulls: no column yet
                    row[i] = try convert(value, to: types[i], key: key, path: path(p))
                }
            }
            rows.append(row)
        }
        return MappedPayloads(newColumns: newColumns, rows: rows)
    }

    /// The column type a first value gives its key; nil for null (no column yet).
    static func inferType(_ v: JSONValue, key: String, path: String) throws(QdrantError) -> ColumnType? {
        switch v {
        case .null: return nil
        case .string: return .string
        case .int: return .int64
        case .double: return .float64
        case .bool: return .bool
        case .array(let a):
            try checkStringList(a, key: key, path: path)
            return .stringList
        case .object:
            throw .wrongInput("\(path).\(key): nested objects are not supported in payloads (keys map to flat typed columns)")
        }
    }

    private static func checkStringList(_ a: [JSONValue], key: String, path: String) throws(QdrantError) {
        for x in a {
            guard case .string = x else {
                throw .wrongInput("\(path).\(key): only lists of strings are supported in payloads, this list holds \(x.kindName)")
            }
        }
    }

    /// One value for a column of type `t`.
    static func convert(_ v: JSONValue, to t: ColumnType, key: String, path: String) throws(QdrantError) -> PayloadValue {
        switch (v, t) {
        case (.null, _): return .null
        case (.string(let s), .string): return .string(s)
        case (.int(let i), .int64): return .int64(i)
        case (.int(let i), .float64): return .float64(Double(i))
        case (.double(let d), .float64): return .float64(d)
        case (.bool(let b), .bool): return .bool(b)
        case (.array(let a), .stringList):
            try checkStringList(a, key: key, path: path)
            var items: [String] = []
            items.reserveCapacity(a.count)
            for case .string(let s) in a { items.append(s) }
            return .stringList(items)
        default:
            let got = try inferType(v, key: key, path: path)       // nested objects etc. get their own message
            throw .wrongInput("\(path).\(key): payload key '\(key)' holds \(typeName(t)) values, got \(got.map(typeName) ?? v.kindName)")
        }
    }

    /// "a string", "an integer"... for messages.
    static func typeName(_ t: ColumnType) -> String {
        switch t {
        case .string: return "string"
        case .int64: return "integer"
        case .float64: return "float"
        case .bool: return "boolean"
        case .stringList: return "list-of-strings"
        }
    }

    /// Writes a row as a payload object: the selected keys in column order, nulls omitted.
    package static func writePayload(_ values: [PayloadValue], columns: [ColumnSpec], selection: PayloadSelection,
                                     into w: inout JSONWriter) {
        w.beginObject()
        for (i, c) in columns.enumerated() where i < values.count && selection.includes(c.name) {
            switch values[i] {
            case .null: continue
            case .int64(let v): w.key(c.name); w.int(v)
            case .float64(let v): w.key(c.name); w.double(v)
            case .bool(let v): w.key(c.name); w.bool(v)
            case .string(let v): w.key(c.name); w.string(v)
            case .stringList(let items):
                w.key(c.name)
                w.beginArray()
                for s in items { w.string(s) }
                w.endArray()
            }
        }
        w.endObject()
    }
}
