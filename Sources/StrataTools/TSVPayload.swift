/// Parses tab-separated payload lines into typed values, one field per schema column.
///
/// Cell rules: an empty cell is `null` in a nullable column and the empty string in a non-nullable
/// string column (an error for other types); `bool` accepts `true/false/1/0`; a `string_list` cell
/// holds items separated by `,` (empty cell: empty list, or null when nullable).
/// Tabs and newlines cannot appear inside a value. Text must be valid UTF-8: an invalid byte is an
/// error naming the line, the column and the byte, never replaced by U+FFFD.
///
/// Errors are bad input data: `.corrupt` for a line with the wrong number of fields or invalid
/// UTF-8, `.typeMismatch` for a cell that does not parse as its column's type.
import Strata
import StrataFormat
import StrataIndex

public struct TSVPayloadParser: Sendable {
    /// The columns, in the order of the TSV fields.
    public let columns: [ColumnSpec]

    /// Creates a parser for `columns`.
    public init(columns: [ColumnSpec]) { self.columns = columns }

    /// Parses one line of text; `lineNumber` (1-based) goes into errors.
    public func parse(line: Substring, lineNumber: Int, path: String) throws(StrataError) -> [PayloadValue] {
        try parse(bytes: Array(line.utf8), lineNumber: lineNumber, path: path)
    }

    /// Parses one line given as bytes (without its `\n`); `lineNumber` (1-based) goes into errors.
    /// - Complexity: O(line length).
    public func parse(bytes line: [UInt8], lineNumber: Int, path: String) throws(StrataError) -> [PayloadValue] {
        let fields = line.split(separator: 0x09, omittingEmptySubsequences: false)
        guard fields.count == columns.count else {
            throw StrataError(.corrupt, "line \(lineNumber): \(fields.count) fields, schema has \(columns.count) columns", path: path)
        }
        var values: [PayloadValue] = []
        values.reserveCapacity(fields.count)
        for (k, (field, column)) in zip(fields, columns).enumerated() {
            if let bad = UTF8Check.firstInvalidOffset(field) {
                let byteColumn = field.startIndex + bad + 1
                throw StrataError(.corrupt, "line \(lineNumber), column \(byteColumn) (field \(k + 1), '\(column.name)'): invalid UTF-8 (\(UTF8Check.describe(field, at: bad)))",
                                  path: path)
            }
            let text = Substring(String(decoding: field, as: UTF8.self))
            values.append(try parse(text, column: column, lineNumber: lineNumber, path: path))
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
