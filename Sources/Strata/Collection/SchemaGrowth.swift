// Schema growth: a collection's payload columns may grow after rows exist. New columns are appended
// at the end and are always nullable; nothing is dropped, renamed or retyped. Segments written
// before a change keep the columns they had (the manifest's first ones) and their rows read the
// new columns as null; the manifest says how many each segment holds (docs/COLLECTION-FORMAT.md
// C.3, format 2.0). Shared by the local collection (Collection+Schema.swift) and the remote one.
import StrataFormat

extension SegmentSchema {
    /// This schema with `columns` appended: nil when every one of them is already a column (of the
    /// same type and nullability: adding is idempotent). Throws `.invalidArgument` for a column that
    /// is not nullable, a name given twice or a bad name (see ``validate()``), `.typeMismatch`
    /// naming a column that exists with another type or nullability.
    package func adding(_ columns: [ColumnSpec]) throws(StrataError) -> SegmentSchema? {
        var seen = Set<String>()
        var added: [ColumnSpec] = []
        for column in columns {
            guard seen.insert(column.name).inserted else {
                throw StrataError(.invalidArgument, "column '\(column.name)' is given twice")
            }
            if let existing = self.columns.first(where: { $0.name == column.name }) {
                guard existing == column else {
                    throw StrataError(.typeMismatch, "column '\(column.name)' exists as \(existing), cannot add it as \(column)")
                }
                continue
            }
            guard column.nullable else {
                throw StrataError(.invalidArgument, "column '\(column.name)' must be nullable: rows written before it was added have no value")
            }
            added.append(column)
        }
        guard !added.isEmpty else { return nil }
        var grown = self
        grown.columns += added
        try grown.validate()
        return grown
    }

    /// Whether this schema is `base` with zero or more nullable columns appended (same vector shape
    /// and metric).
    package func extends(_ base: SegmentSchema) -> Bool {
        dimension == base.dimension && elementType == base.elementType && metric == base.metric
            && columns.count >= base.columns.count && Array(columns.prefix(base.columns.count)) == base.columns
            && columns.dropFirst(base.columns.count).allSatisfy(\.nullable)
    }
}

extension Manifest {
    /// Whether a segment of schema `segment` fits `entry` of this manifest: the same vector shape and
    /// metric, and as columns exactly the schema's first `entry.columns(of: schema)` (the others,
    /// added after it was written, nullable).
    package func fits(_ segment: SegmentSchema, entry: ManifestSegment) -> Bool {
        let count = entry.columns(of: schema)
        guard segment.dimension == schema.dimension, segment.metric == schema.metric,
              count <= schema.columns.count, segment.columns == Array(schema.columns.prefix(count)) else { return false }
        return schema.columns.dropFirst(count).allSatisfy(\.nullable)
    }
}

extension Array where Element == PayloadValue {
    /// The values of a row of a segment with fewer columns, padded with nulls to `count` columns.
    @inline(__always) package func padded(to count: Int) -> [PayloadValue] {
        self.count >= count ? self : self + [PayloadValue](repeating: .null, count: count - self.count)
    }
}

extension SegmentWriterOptions {
    /// These options for a segment of `schema` sealed by the flush that grows it to `grown`: payload
    /// and BM25 indexes named for the columns being added are left out (the segment has no such
    /// column yet; options may name them already). Without a `grown` schema, unchanged.
    package func sealing(_ schema: SegmentSchema, growingTo grown: SegmentSchema?) -> SegmentWriterOptions {
        guard let grown else { return self }
        let added = Set(grown.columns.dropFirst(schema.columns.count).map(\.name))
        var o = self
        o.search.indexedColumns.removeAll { added.contains($0) }
        o.search.bm25Columns.removeAll { added.contains($0) }
        return o
    }
}
