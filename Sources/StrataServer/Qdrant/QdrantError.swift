// Errors of the Qdrant REST layer: an HTTP status and a message, rendered as Qdrant renders them,
// `{"status": {"error": "..."}, "time": t}`.
//
// Status codes follow Qdrant: 400 for a body that does not parse or does not fit the model
// (Qdrant: "Format error in JSON body: ..."), and for semantic refusals ("Wrong input: ..."); 404
// for a missing collection or point ("Not found: Collection `c` doesn't exist!"); 409 for creating
// a collection that exists; 401/403 for keys (the HTTP layer's); 500 for an internal failure; 503
// when a shard cannot answer. Qdrant uses 422 only for a few validation errors of its own
// (e.g. a collection name with '/'); this layer reports those as 400, which qdrant-client treats
// the same (any non-2xx raises UnexpectedResponse carrying the status and the body).

import StrataFormat

/// An error answer: an HTTP status and the text of Qdrant's `status.error`.
package struct QdrantError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP status code.
    package var status: Int
    /// The human-readable message (Qdrant's `status.error`).
    package var message: String

    /// Creates an error with `status` and `message`.
    package init(status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    /// "400: message".
    package var description: String { "\(status): \(message)" }

    /// 400 for a body that does not fit the model; `path` names the JSON field (`points[3].id`).
    package static func format(_ path: String, _ message: String) -> QdrantError {
        QdrantError(status: 400, "Format error in JSON body: \(path): \(message)")
    }

    /// 400 for a well-formed request this server refuses (an unsupported option, a type conflict).
    package static func wrongInput(_ message: String) -> QdrantError {
        QdrantError(status: 400, "Wrong input: \(message)")
    }

    /// 404 for a collection that does not exist, worded as Qdrant words it.
    package static func collectionNotFound(_ name: String) -> QdrantError {
        QdrantError(status: 404, "Not found: Collection `\(name)` doesn't exist!")
    }

    /// 409 for creating a collection that already exists.
    package static func collectionExists(_ name: String) -> QdrantError {
        QdrantError(status: 409, "Wrong input: Collection `\(name)` already exists!")
    }

    /// 404 for a point id that does not exist (GET /collections/{c}/points/{id}).
    package static func pointNotFound(_ id: UInt64) -> QdrantError {
        QdrantError(status: 404, "Not found: No point with id \(id) found")
    }

    /// A `StrataError` from the JSON reader or the engine as an answer: argument and value errors
    /// are the client's (400), a missing collection 404, anything else the server's (500).
    package init(_ error: StrataError) {
        switch error.code {
        case .invalidArgument, .invalidValue, .nonFiniteValue, .typeMismatch, .unknownColumn, .dimensionMismatch:
            self.init(status: 400, "Format error in JSON body: \(error.message)")
        case .notFound:
            self.init(status: 404, "Not found: \(error.message)")
        case .alreadyExists, .duplicateId:
            self.init(status: 409, "Wrong input: \(error.message)")
        case .busy:
            self.init(status: 503, "Service unavailable: \(error.message)")
        default:
            self.init(status: 500, "Service internal error: \(error.message)")
        }
    }
}
