// Schema growth of a remote collection: nullable payload columns appended after rows exist (the
// rules: Strata's SchemaGrowth.swift). The committer runs it as a flush whose manifest carries the
// grown schema (RemoteCollection+Flush.swift), through the same commit and fencing: WAL objects from
// that manifest's sequence on are encoded against the new schema, those before it are in segments.
import Strata
import StrataFormat

extension RemoteCollection {
    /// Appends nullable payload columns to the collection's schema. Rows written before read them as
    /// null; rows written after may set them. Columns that already exist with the same type and
    /// nullability are skipped (adding is idempotent; nothing is committed when nothing is new).
    /// Flushes the buffered rows and commits a head whose manifest has the new schema; readers see
    /// it on their next refresh. `collection.json` keeps the schema the collection was created with.
    ///
    /// Throws `.invalidArgument` for a column that is not nullable, a name given twice or a bad name,
    /// `.typeMismatch` naming a column that exists with another type or nullability, what
    /// ``flush()`` throws, and `.invalidArgument` on a read-only handle.
    public func addColumns(_ columns: [ColumnSpec]) async throws(StrataError) {
        try checkWritable()
        // Checked here too, so that a bad request fails before it waits for the committer.
        do throws(StrataError) { _ = try schema.adding(columns) } catch {
            var e = error
            e.path = layout.address
            throw e
        }
        _ = try await submit(.addColumns(columns))
    }
}
