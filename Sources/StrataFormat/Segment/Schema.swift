/// The type of a payload column.
public enum ColumnType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Signed 64-bit integer.
    case int64 = 1
    /// IEEE 754 binary64.
    case float64 = 2
    /// Boolean.
    case bool = 3
    /// UTF-8 string.
    case string = 4
    /// List of UTF-8 strings (tags).
    case stringList = 5

    /// The schema-spec spelling: `int64`, `float64`, `bool`, `string`, `string_list`.
    public var description: String {
        switch self {
        case .int64: return "int64"
        case .float64: return "float64"
        case .bool: return "bool"
        case .string: return "string"
        case .stringList: return "string_list"
        }
    }

    /// Parses a schema-spec type name (`int64`/`int`, `float64`/`double`, `bool`, `string`/`keyword`,
    /// `string_list`/`tags`/`[string]`).
    public init?(name: String) {
        switch name.lowercased() {
        case "int64", "int", "integer": self = .int64
        case "float64", "double", "float": self = .float64
        case "bool", "boolean": self = .bool
        case "string", "str", "keyword", "text": self = .string
        case "string_list", "stringlist", "tags", "[string]", "list": self = .stringList
        default: return nil
        }
    }
}

/// One named, typed payload column.
public struct ColumnSpec: Sendable, Equatable, CustomStringConvertible {
    /// Column name: 1...255 bytes of UTF-8, unique within a schema.
    public var name: String
    /// Value type.
    public var type: ColumnType
    /// Whether rows may hold no value.
    public var nullable: Bool

    /// Creates a column description.
    public init(name: String, type: ColumnType, nullable: Bool = false) {
        self.name = name
        self.type = type
        self.nullable = nullable
    }

    /// `name:type` with a `?` suffix when nullable (the schema-spec form).
    public var description: String { "\(name):\(type)\(nullable ? "?" : "")" }
}

/// Everything a segment needs to know before rows arrive: vector shape, metric and payload columns.
public struct SegmentSchema: Sendable, Equatable {
    /// Number of dimensions per vector, 1...4096.
    public var dimension: Int
    /// How raw vectors are stored.
    public var elementType: VectorElementType
    /// Distance metric.
    public var metric: DistanceMetric
    /// Payload columns, in storage order.
    public var columns: [ColumnSpec]

    /// Largest supported dimension.
    public static let maximumDimension = 4096

    /// Creates a schema; call ``validate()`` (the writer does) to check it.
    public init(dimension: Int, elementType: VectorElementType = .float32, metric: DistanceMetric = .cosine,
                columns: [ColumnSpec] = []) {
        self.dimension = dimension
        self.elementType = elementType
        self.metric = metric
        self.columns = columns
    }

    /// Throws `.invalidArgument` for a dimension out of range, an empty, over-long or duplicate column name.
    public func validate() throws(StrataError) {
        guard (1...Self.maximumDimension).contains(dimension) else {
            throw StrataError(.invalidArgument, "dimension \(dimension) is outside 1...\(Self.maximumDimension)")
        }
        var seen = Set<String>()
        for column in columns {
            let length = column.name.utf8.count
            guard (1...255).contains(length) else {
                throw StrataError(.invalidArgument, "column name '\(column.name)' must be 1...255 bytes of UTF-8")
            }
            guard seen.insert(column.name).inserted else {
                throw StrataError(.invalidArgument, "duplicate column name '\(column.name)'")
            }
        }
    }

    /// Index of the column called `name`, or `.unknownColumn`.
    public func columnIndex(named name: String) throws(StrataError) -> Int {
        guard let i = columns.firstIndex(where: { $0.name == name }) else {
            let known = columns.map(\.name).joined(separator: ", ")
            throw StrataError(.unknownColumn, "no column '\(name)' (columns: \(known.isEmpty ? "none" : known))")
        }
        return i
    }

    /// Parses a schema spec: comma-separated `name:type`, a `?` after the type (or a `:nullable`
    /// suffix, or the word `nullable` after a space) marks a nullable column.
    /// Example: `name:string,version:string,month:string,rank:int64?,summary:string`.
    public static func parseColumns(_ spec: String) throws(StrataError) -> [ColumnSpec] {
        var result: [ColumnSpec] = []
        for rawPart in spec.split(separator: ",", omittingEmptySubsequences: true) {
            let part = rawPart.trimmingSpaces()
            var fields = part.split(separator: ":", omittingEmptySubsequences: false).map { String($0).trimmingSpaces() }
            var nullable = false
            if fields.count == 3, fields[2].lowercased() == "nullable" { nullable = true; fields.removeLast() }
            guard fields.count == 2, !fields[0].isEmpty else {
                throw StrataError(.invalidArgument, "bad schema entry '\(part)': expected name:type")
            }
            var typeName = fields[1]
            if typeName.lowercased().hasSuffix(" nullable") {
                nullable = true
                typeName = String(typeName.dropLast(" nullable".count)).trimmingSpaces()
            }
            if typeName.hasSuffix("?") { nullable = true; typeName.removeLast() }
            guard let type = ColumnType(name: typeName) else {
                throw StrataError(.invalidArgument,
                                  "unknown column type '\(typeName)' in '\(part)' (int64, float64, bool, string, string_list)")
            }
            result.append(ColumnSpec(name: fields[0], type: type, nullable: nullable))
        }
        return result
    }
}

extension StringProtocol {
    /// The string without leading and trailing spaces and tabs.
    package func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}

/// One payload value.
public enum PayloadValue: Sendable, Hashable, CustomStringConvertible {
    /// No value (nullable columns only).
    case null
    /// A 64-bit integer.
    case int64(Int64)
    /// A 64-bit float.
    case float64(Double)
    /// A boolean.
    case bool(Bool)
    /// A string.
    case string(String)
    /// A list of strings.
    case stringList([String])

    /// The value as text (lists joined by commas, null as `null`).
    public var description: String {
        switch self {
        case .null: return "null"
        case .int64(let v): return String(v)
        case .float64(let v): return String(v)
        case .bool(let v): return String(v)
        case .string(let v): return v
        case .stringList(let v): return v.joined(separator: ",")
        }
    }

    /// Whether this value can be stored in a column of `type` (null only when `nullable`).
    package func fits(_ type: ColumnType, nullable: Bool) -> Bool {
        switch (self, type) {
        case (.null, _): return nullable
        case (.int64, .int64), (.float64, .float64), (.bool, .bool), (.string, .string), (.stringList, .stringList):
            return true
        default: return false
        }
    }
}

/// A row to write: external id, vector, payload by column name (missing columns are null), and an
/// optional sparse vector.
public struct SegmentRow: Sendable {
    /// External id, unique within the segment.
    public var id: UInt64
    /// The vector; its count must equal the schema dimension.
    public var vector: [Float]
    /// Payload values by column name.
    public var payload: [String: PayloadValue]
    /// An optional sparse vector (searched with `sparseSearch`; an empty one is the same as none).
    public var sparse: SparseVector?

    /// Creates a row.
    public init(id: UInt64, vector: [Float], payload: [String: PayloadValue] = [:], sparse: SparseVector? = nil) {
        self.id = id
        self.vector = vector
        self.payload = payload
        self.sparse = sparse
    }
}
