// Schema growth of a local collection: nullable payload columns appended after rows exist
// (SchemaGrowth.swift has the rules). One flush does it: the buffer is sealed with the old schema,
// the WAL rotates and the manifest that names the new WAL carries the new schema, so every WAL's
// records are encoded against exactly the schema of the manifest that names it.
import StrataFormat

extension StrataCollection {
    /// Appends nullable payload columns to the collection's schema. Rows written before read them as
    /// null; rows written after may set them. Columns that already exist with the same type and
    /// nullability are skipped (adding is idempotent; nothing is published when nothing is new).
    /// Flushes the buffer (even an empty one: the WAL rotates) and publishes a manifest with the new
    /// schema; readers in other processes see it on their next refresh.
    ///
    /// Throws `.invalidArgument` for a column that is not nullable, a name given twice or a bad name,
    /// `.typeMismatch` naming a column that exists with another type or nullability, what
    /// ``flush()`` throws, and `.invalidArgument` on a read-only handle.
    public func addColumns(_ columns: [ColumnSpec]) throws(StrataError) {
        try writeLock.locked { () throws(StrataError) in
            try checkWritable()
            let current = stateLock.locked { version.manifest.schema }
            let grown: SegmentSchema?
            do throws(StrataError) { grown = try current.adding(columns) } catch {
                var e = error
                e.path = path
                throw e
            }
            guard let grown else { return }
            _ = try flushLocked(growingTo: grown)
        }
    }
}
