// The checks a row passes before it is stored, in one place: the segment writer runs them on every
// appended row, the collection on every inserted row before it reaches the WAL (so that a row the
// collection acknowledged is one a flush can write).
import StrataFormat

/// Checks rows against a schema: the vector (dimension, finite values, float16 range, norm limit,
/// a direction for cosine), the payload (known columns, types, nullability, value sizes) and the
/// sparse vector (`SparseVector.validate()`).
/// Errors name the row by the caller's label and carry ``path`` when there is one.
struct RowValidator {
    /// The schema rows must follow.
    let schema: SegmentSchema
    /// The file or directory named in errors (nil: none, as for the segment writer's rows).
    let path: String?
    /// What a wrong dimension is compared with in messages ("schema", "collection").
    let owner: String

    /// Checks one row given by column name: its vector, its payload, its sparse vector. Returns the payload in
    /// schema column order (`.null` for a missing column). `label` names the row in errors.
    func check(_ row: SegmentRow, label: @autoclosure () -> String) throws(StrataError) -> [PayloadValue] {
        try checkVector(row.vector, label: label())
        let values = try positionalValues(row.payload, label: label())
        try checkValues(values, label: label())
        if let sparse = row.sparse { try checkSparse(sparse, label: label()) }
        return values
    }

    /// Checks a row's sparse vector (`SparseVector.validate()`), naming the row in the error.
    func checkSparse(_ sparse: SparseVector, label: @autoclosure () -> String) throws(StrataError) {
        do {
            try sparse.validate()
        } catch {
            throw StrataError(error.code, "\(label()): \(error.message)", path: path)
        }
    }

    /// Payload by column name to values in schema column order. Throws `.unknownColumn`.
    func positionalValues(_ payload: [String: PayloadValue], label: @autoclosure () -> String) throws(StrataError) -> [PayloadValue] {
        var values = [PayloadValue](repeating: .null, count: schema.columns.count)
        for (name, value) in payload {
            let i: Int
            do { i = try schema.columnIndex(named: name) } catch {
                throw StrataError(.unknownColumn, "\(label()): \(error.message)", path: path)
            }
            values[i] = value
        }
        return values
    }

    /// Checks a vector: `.dimensionMismatch`; `.nonFiniteValue` for NaN, infinity or a float16
    /// overflow; `.invalidValue` for a squared norm over `VectorLimits.maximumSquaredNorm` (when
    /// `normLimit`: rows admitted before the limit existed are carried over without it) and for a
    /// zero vector under cosine.
    @inline(__always)
    func checkVector<V: Collection<Float>>(_ vector: V, label: @autoclosure () -> String, normLimit: Bool = true) throws(StrataError) {
        guard vector.count == schema.dimension else {
            throw StrataError(.dimensionMismatch, "\(label()): vector has \(vector.count) dimensions, \(owner) has \(schema.dimension)", path: path)
        }
        let float16 = schema.elementType == .float16
        var norm: Double = 0
        var d = 0
        for x in vector {
            guard x.isFinite else { throw StrataError(.nonFiniteValue, "\(label()): element \(d) is \(x)", path: path) }
            if float16, abs(x) > 65504 {
                throw StrataError(.nonFiniteValue, "\(label()): element \(d) = \(x) overflows float16", path: path)
            }
            norm += Double(x) * Double(x)
            d += 1
        }
        if normLimit { try VectorLimits.check(squaredNorm: norm, what: label(), path: path) }
        if schema.metric == .cosine, !(norm > 0) {
            throw StrataError(.invalidValue, "\(label()): a zero vector has no cosine direction", path: path)
        }
    }

    /// Checks payload values in schema column order: one per column (`.invalidArgument`), each of
    /// its column's type and non-null where the column is not nullable (`.typeMismatch`), strings
    /// within ``SegmentWriter/maximumValueBytes`` (`.invalidValue`).
    @inline(__always)
    func checkValues(_ values: [PayloadValue], label: @autoclosure () -> String) throws(StrataError) {
        guard values.count == schema.columns.count else {
            throw StrataError(.invalidArgument, "\(label()): \(values.count) payload values for \(schema.columns.count) columns", path: path)
        }
        for (value, spec) in zip(values, schema.columns) {
            guard value.fits(spec.type, nullable: spec.nullable) else {
                if case .null = value { throw StrataError(.typeMismatch, "\(label()): column '\(spec.name)' is not nullable", path: path) }
                throw StrataError(.typeMismatch, "\(label()): column '\(spec.name)' is \(spec.type), got \(value)", path: path)
            }
            var bytes = 0
            if case .string(let s) = value { bytes = s.utf8.count }
            if case .stringList(let l) = value { bytes = l.reduce(0) { $0 + $1.utf8.count } + 4 * l.count }
            guard bytes <= SegmentWriter.maximumValueBytes else {
                throw StrataError(.invalidValue, "\(label()): a payload value of \(bytes) bytes exceeds \(SegmentWriter.maximumValueBytes)", path: path)
            }
        }
    }
}
