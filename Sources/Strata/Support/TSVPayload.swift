/// Parses tab-separated payload lines into typed values, one field per schema column.
///
/// Cell rules: an empty cell is `null` in a nullable column and the empty string in a non-nullable
/// string column (an error for other types); `bool` accepts `true/false/1/0`; a `string_list` cell
/// holds items separated by `,` (empty cell: empty list, or null when nullable).
/// Tabs and newlines cannot appear inside a value.
public struct TSVPayloadParser: Sendable {
    /// The columns, in the order of the TSV fields.
    public let columns: [ColumnSpec]

    /// Creates a parser for `columns`.
    public init(columns: [ColumnSpec]) { self.columns = columns }

    /// Parses one line; `lineNumber` (1-based) goes into errors.
    public func parse(line: Substring, lineNumber: Int, path: String) throws(StrataError) -> [PayloadValue] {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count == columns.count else {
            throw StrataError(.invalidArgument, "line \(lineNumber): \(fields.count) fields, schema has \(columns.count) columns", path: path)
        }
        var values: [PayloadValue] = []
        values.reserveCapacity(fields.count)
        for (field, column) in zip(fields, columns) {
            values.append(try parse(field, column: column, lineNumber: lineNumber, path: path))
        }
        return values
    }

    private func parse(_ field: Substring, column: ColumnSpec, lineNumber: Int, path: String) throws(StrataError) -> PayloadValue {
        if field.isEmpty {
            if column.nullable { return .null }
            switch column.type {
            case .string: return .string("")
            case .stringList: return .stringList([])
            default:
                throw StrataError(.typeMismatch, "line \(lineNumber): empty value in non-nullable \(column.type) column '\(column.name)'", path: path)
            }
        }
        switch column.type {
        case .int64:
            guard let v = Int64(field) else {
                throw StrataError(.typeMismatch, "line \(lineNumber): '\(field)' is not an int64 (column '\(column.name)')", path: path)
            }
            return .int64(v)
        case .float64:
            guard let v = Double(field), !v.isNaN else {
                throw StrataError(.typeMismatch, "line \(lineNumber): '\(field)' is not a float64 (column '\(column.name)')", path: path)
            }
            return .float64(v)
        case .bool:
            switch field.lowercased() {
            case "true", "1": return .bool(true)
            case "false", "0": return .bool(false)
            default: throw StrataError(.typeMismatch, "line \(lineNumber): '\(field)' is not a bool (column '\(column.name)')", path: path)
            }
        case .string:
            return .string(String(field))
        case .stringList:
            return .stringList(field.split(separator: ",", omittingEmptySubsequences: true).map(String.init))
        }
    }
}
