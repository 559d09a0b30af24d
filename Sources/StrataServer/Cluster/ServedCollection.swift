// A served collection's definition, as stored in etcd under collections/<name> (docs/SERVE.md):
// JSON, changed only by compare-and-swap on the key's mod revision. Payload columns are appended
// as new payload keys appear (every one nullable); the shard count never changes.
import Foundation
import StrataFormat

/// One collection of the cluster.
package struct ServedCollection: Codable, Sendable, Equatable {
    /// One payload column: a payload key and the type of its first value.
    package struct Column: Codable, Sendable, Equatable {
        package var name: String
        /// `ColumnType.description`: int64, float64, bool, string, string_list.
        package var type: String
    }

    /// The name (`[A-Za-z0-9_.-]`, 1...128 bytes).
    package var name: String
    /// Random hex, new at every creation: part of the shards' store prefix.
    package var uid: String
    /// Vector dimension.
    package var dimension: Int
    /// `DistanceMetric.description`.
    package var metric: String
    /// Number of shards, fixed at creation.
    package var shards: Int
    /// Payload columns in schema order (all nullable).
    package var columns: [Column]
    /// Payload indexes asked for: key -> Qdrant field type (keyword, integer, float, bool, text).
    package var payloadIndexes: [String: String]
    /// Creation time, Unix milliseconds.
    package var createdMilliseconds: UInt64
    /// The dense vector's name when the collection was created with a named one (Qdrant's
    /// `vectors: {name: {...}}`); nil (absent in the JSON) for the unnamed vector.
    package var vectorName: String? = nil
    /// The sparse vector's name (`sparse_vectors`), nil when the collection has none.
    package var sparseName: String? = nil

    /// No collection (a uid no definition has), for a look-up that found none.
    package static let placeholder = ServedCollection(name: "", uid: "", dimension: 1, metric: "cosine", shards: 1, columns: [],
                                                      payloadIndexes: [:], createdMilliseconds: 0)

    /// Largest shard count accepted at creation.
    package static let maximumShards = 256

    /// Whether `name` is acceptable as a collection name.
    package static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...128).contains(bytes.count), name != ".", name != ".." else { return false }
        return bytes.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b == 0x2D || b == 0x2E
        }
    }

    /// The distance metric.
    package var distanceMetric: DistanceMetric {
        DistanceMetric.allCases.first { $0.description == metric } ?? .cosine
    }

    /// Checks a vector name a request used: for the dense vector nil (the list form, or no
    /// `using`) or the collection's name (`""` when unnamed); for the sparse vector its name.
    /// A 400 as Qdrant words it otherwise.
    package func checkVectorName(_ name: String?, sparse: Bool, _ path: String) throws(QdrantError) {
        if sparse {
            guard let sparseName, name == sparseName else {
                throw .wrongInput("Not existing vector name error: \(name ?? "") (\(path); "
                                  + (sparseName.map { "the sparse vector is '\($0)')" } ?? "the collection has no sparse vector)"))
            }
        } else if let name, name != (vectorName ?? "") {
            throw .wrongInput("Not existing vector name error: \(name) (\(path); the dense vector is "
                              + (vectorName.map { "'\($0)')" } ?? "unnamed)") + (name == sparseName ? ", '\(name)' is sparse" : ""))
        }
    }

    /// `points` with their vectors named as the collection names its dense vector.
    package func naming(_ points: [PointOut]) -> [PointOut] {
        guard let vectorName else { return points }
        return points.map { p in
            var q = p
            if q.vector != nil { q.vectorName = vectorName }
            return q
        }
    }

    /// The payload columns as the engine's column specs (nullable).
    package var columnSpecs: [ColumnSpec] {
        columns.map { c in ColumnSpec(name: c.name, type: ColumnType.allCases.first { $0.description == c.type } ?? .string, nullable: true) }
    }

    /// The shards' schema.
    package var schema: SegmentSchema {
        SegmentSchema(dimension: dimension, elementType: .float32, metric: distanceMetric, columns: columnSpecs)
    }

    package func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(self)) ?? Data())
    }

    /// Decodes a stored definition; `.corrupt` naming `key` when it is not one.
    package static func decode(_ bytes: [UInt8], key: String) throws(StrataError) -> ServedCollection {
        guard let c = try? JSONDecoder().decode(ServedCollection.self, from: Data(bytes)),
              isValidName(c.name), c.dimension >= 1, c.dimension <= SegmentSchema.maximumDimension,
              (1...maximumShards).contains(c.shards), DistanceMetric.allCases.contains(where: { $0.description == c.metric }),
              c.columns.allSatisfy({ col in ColumnType.allCases.contains { $0.description == col.type } }) else {
            throw StrataError(.corrupt, "not a served collection definition", path: key)
        }
        return c
    }
}
