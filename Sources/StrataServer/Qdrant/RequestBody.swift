// Reading request bodies: the JSON reader (Strata's, linear, depth-limited, path-naming) and typed
// field accessors that answer 400 naming the JSON path of the offending field.
//
// Qdrant's REST models forbid unknown fields, and so does this layer: an option it does not know
// could change the meaning of the request, so it is refused rather than ignored. A field set to
// JSON null counts as absent (as in Qdrant's optional fields).

import Strata
import StrataFormat

/// Typed access to a parsed request body.
package enum RequestBody {
    /// Parses a request body. An empty body is `{}` (Qdrant allows it for count, scroll...).
    package static func parse(_ bytes: [UInt8], limits: ServerLimits) throws(QdrantError) -> JSONValue {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .object([:]) }
        do {
            return try JSONValue.parse(bytes: bytes, what: "body", maximumDepth: limits.maxJSONDepth,
                                       depthNote: "a filter may nest at most \(limits.maxFilterDepth) levels")
        } catch {
            throw QdrantError(status: 400, "Format error in JSON body: \(error.message)")
        }
    }

    /// The members of an object, after checking that every key is in `allowed`.
    package static func object(_ v: JSONValue, _ path: String, allowed: Set<String>) throws(QdrantError) -> [String: JSONValue] {
        guard case .object(let o) = v else { throw .format(path, "expected an object, got \(v.kindName)") }
        for key in o.keys where !allowed.contains(key) {
            throw .format(path, "unknown field '\(key)' (expected one of: \(allowed.sorted().joined(separator: ", ")))")
        }
        return o
    }

    /// The value at `key`, nil when absent or null.
    package static func value(_ o: [String: JSONValue], _ key: String) -> JSONValue? {
        guard let v = o[key] else { return nil }
        if case .null = v { return nil }
        return v
    }

    /// A boolean field.
    package static func bool(_ o: [String: JSONValue], _ key: String, _ path: String) throws(QdrantError) -> Bool? {
        guard let v = value(o, key) else { return nil }
        guard case .bool(let b) = v else { throw .format("\(path).\(key)", "expected a boolean, got \(v.kindName)") }
        return b
    }

    /// A string field.
    package static func string(_ o: [String: JSONValue], _ key: String, _ path: String) throws(QdrantError) -> String? {
        guard let v = value(o, key) else { return nil }
        guard case .string(let s) = v else { throw .format("\(path).\(key)", "expected a string, got \(v.kindName)") }
        return s
    }

    /// An integer field within `range`.
    package static func int(_ o: [String: JSONValue], _ key: String, _ path: String, in range: ClosedRange<Int64>) throws(QdrantError) -> Int? {
        guard let v = value(o, key) else { return nil }
        guard case .int(let i) = v else { throw .format("\(path).\(key)", "expected an integer, got \(v.kindName)") }
        guard range.contains(i) else {
            throw .format("\(path).\(key)", "\(i) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return Int(i)
    }

    /// A number field (integer or float), finite.
    package static func number(_ o: [String: JSONValue], _ key: String, _ path: String) throws(QdrantError) -> Double? {
        guard let v = value(o, key) else { return nil }
        switch v {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: throw .format("\(path).\(key)", "expected a number, got \(v.kindName)")
        }
    }

    /// An array field.
    package static func array(_ o: [String: JSONValue], _ key: String, _ path: String) throws(QdrantError) -> [JSONValue]? {
        guard let v = value(o, key) else { return nil }
        guard case .array(let a) = v else { throw .format("\(path).\(key)", "expected an array, got \(v.kindName)") }
        return a
    }

    /// Refuses `key` when present (and not null): a Qdrant option this server does not implement.
    package static func refuse(_ o: [String: JSONValue], _ key: String, _ path: String, _ why: String) throws(QdrantError) {
        if value(o, key) != nil { throw .wrongInput("\(path).\(key) is not supported: \(why)") }
    }
}

/// The `wait` query parameter of updates.
package enum QueryParameters {
    /// Parses a boolean query parameter (`true`/`false`, also `1`/`0`); `nil` text gives `defaultValue`.
    /// Qdrant's default for `wait` is false (qdrant-client always sends it: true unless told).
    package static func bool(_ text: String?, name: String, default defaultValue: Bool) throws(QdrantError) -> Bool {
        guard let text else { return defaultValue }
        switch text.lowercased() {
        case "true", "1": return true
        case "false", "0", "": return text.isEmpty ? defaultValue : false
        default: throw QdrantError(status: 400, "Query deserialize error: \(name): expected true or false, got '\(text)'")
        }
    }
}
