// The JSON that etcd's v3 gateway (grpc-gateway, etcd 3.4) sends and expects, as Swift types.
//
// Requests are small trees of `EtcdJSON` so that each body names etcd's fields exactly as they are
// spelled ("range_end", "ID", "TTL"). Answers are decoded into tolerant `Decodable` types that
// follow proto3's JSON mapping: a field at its default value is left out (a failed txn has no
// "succeeded", an empty value has no "value"), 64-bit integers arrive as strings (numbers are
// accepted too), bytes are base64. Anything else (a wrong type, an integer out of range, bad base64)
// fails decoding, which the client reports as `.corrupt`: a hostile answer never traps.
import Foundation
import StrataFormat

/// A request body.
indirect enum EtcdJSON: Encodable, Sendable {
    case string(String)
    case bool(Bool)
    case object([String: EtcdJSON])
    case array([EtcdJSON])

    /// Bytes, as proto3 JSON writes them: base64.
    static func bytes(_ bytes: [UInt8]) -> EtcdJSON { .string(Data(bytes).base64EncodedString()) }

    /// A key's UTF-8 bytes, base64.
    static func key(_ key: String) -> EtcdJSON { .bytes(Array(key.utf8)) }

    /// A 64-bit integer, as proto3 JSON writes it: a decimal string.
    static func int(_ value: Int64) -> EtcdJSON { .string(String(value)) }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        }
    }

    /// The UTF-8 JSON text.
    func encoded() -> [UInt8] {
        // Encoding strings, booleans, arrays and string-keyed objects cannot fail.
        (try? Array(JSONEncoder().encode(self))) ?? Array("{}".utf8)
    }
}

/// The first key after every key that starts with `prefix`: etcd's `range_end` for a prefix (the
/// prefix with its last byte below 0xff incremented and what follows dropped; `[0]`, "to the end
/// of the keyspace", when there is none).
func etcdPrefixEnd(_ prefix: [UInt8]) -> [UInt8] {
    var end = prefix
    while let last = end.last {
        if last < 0xff {
            end[end.count - 1] = last + 1
            return end
        }
        end.removeLast()
    }
    return [0]
}

// MARK: - Scalars

/// A 64-bit integer: a JSON string ("42", as the gateway sends it) or a JSON number.
struct EtcdInt: Decodable, Sendable {
    var value: Int64

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            guard let value = Int64(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a 64-bit integer: \"\(text.prefix(40))\"")
            }
            self.value = value
        } else {
            // Throws for a fraction, a number out of range, a boolean, an object...
            self.value = try container.decode(Int64.self)
        }
    }
}

/// Bytes: a base64 JSON string.
struct EtcdBytes: Decodable, Sendable {
    var value: [UInt8]

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let data = Data(base64Encoded: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not base64: \"\(text.prefix(40))\"")
        }
        value = Array(data)
    }
}

// MARK: - Answers

/// Every answer's header.
struct EtcdHeader: Decodable, Sendable {
    var revision: EtcdInt?
}

/// `mvccpb.KeyValue`.
struct EtcdKeyValue: Decodable, Sendable {
    var key: EtcdBytes?
    var value: EtcdBytes?
    var createRevision: EtcdInt?
    var modRevision: EtcdInt?
    var version: EtcdInt?
    var lease: EtcdInt?

    enum CodingKeys: String, CodingKey {
        case key, value, version, lease
        case createRevision = "create_revision"
        case modRevision = "mod_revision"
    }

    /// The protocol's value; throws a message when the key is missing or not UTF-8.
    func keyValue() throws(EtcdDecodeFailure) -> KeyValue {
        guard let bytes = key?.value, !bytes.isEmpty else { throw EtcdDecodeFailure("a key-value without a key") }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw EtcdDecodeFailure("a key that is not UTF-8")
        }
        return KeyValue(key: text, value: value?.value ?? [],
                        createRevision: createRevision?.value ?? 0, modRevision: modRevision?.value ?? 0,
                        version: version?.value ?? 0, lease: lease?.value ?? 0)
    }
}

/// A message about what in an answer is not what the protocol promises.
struct EtcdDecodeFailure: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// `RangeResponse`.
struct EtcdRangeResponse: Decodable, Sendable {
    var header: EtcdHeader?
    var kvs: [EtcdKeyValue]?
}

/// `PutResponse`, `DeleteRangeResponse`, `LeaseRevokeResponse`: only the header matters.
struct EtcdHeaderOnlyResponse: Decodable, Sendable {
    var header: EtcdHeader?
}

/// `TxnResponse`.
struct EtcdTxnResponse: Decodable, Sendable {
    var header: EtcdHeader?
    /// Absent when false (proto3 leaves defaults out).
    var succeeded: Bool?
    var responses: [Op]?

    /// `ResponseOp`: one of the three.
    struct Op: Decodable, Sendable {
        var responseRange: EtcdRangeResponse?
        var responsePut: EtcdHeaderOnlyResponse?
        var responseDeleteRange: EtcdHeaderOnlyResponse?

        enum CodingKeys: String, CodingKey {
            case responseRange = "response_range"
            case responsePut = "response_put"
            case responseDeleteRange = "response_delete_range"
        }
    }
}

/// `LeaseGrantResponse`.
struct EtcdLeaseGrantResponse: Decodable, Sendable {
    var header: EtcdHeader?
    var id: EtcdInt?
    var ttl: EtcdInt?
    var error: String?

    enum CodingKeys: String, CodingKey {
        case header, error
        case id = "ID"
        case ttl = "TTL"
    }
}

/// One message of a streaming call (keepalive, watch): `{"result": ...}` or `{"error": ...}`.
struct EtcdStreamMessage<Result: Decodable & Sendable>: Decodable, Sendable {
    var result: Result?
    var error: EtcdErrorBody?
}

/// `LeaseKeepAliveResponse`.
struct EtcdKeepAliveResponse: Decodable, Sendable {
    var header: EtcdHeader?
    var id: EtcdInt?
    /// Absent or 0 when the lease expired or never existed.
    var ttl: EtcdInt?

    enum CodingKeys: String, CodingKey {
        case header
        case id = "ID"
        case ttl = "TTL"
    }
}

/// `WatchResponse`.
struct EtcdWatchResponse: Decodable, Sendable {
    var header: EtcdHeader?
    var created: Bool?
    var canceled: Bool?
    var cancelReason: String?
    var compactRevision: EtcdInt?
    var events: [Event]?

    enum CodingKeys: String, CodingKey {
        case header, created, canceled, events
        case cancelReason = "cancel_reason"
        case compactRevision = "compact_revision"
    }

    /// `mvccpb.Event`.
    struct Event: Decodable, Sendable {
        var type: EventType?
        var kv: EtcdKeyValue?
    }

    /// "PUT" (or absent: the default) or "DELETE"; the enum's numbers (0, 1) are accepted too.
    enum EventType: Decodable, Sendable {
        case put, delete

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let name = try? container.decode(String.self) {
                switch name {
                case "PUT": self = .put
                case "DELETE": self = .delete
                default: throw DecodingError.dataCorruptedError(in: container, debugDescription: "unknown event type \"\(name.prefix(40))\"")
                }
            } else {
                switch try container.decode(Int64.self) {
                case 0: self = .put
                case 1: self = .delete
                default: throw DecodingError.dataCorruptedError(in: container, debugDescription: "unknown event type number")
                }
            }
        }
    }
}

/// An error answer. Unary calls send `{"error": "text", "code": N, "message": "text"}`; streaming
/// calls send `{"error": {"grpc_code": N, "http_code": N, "message": "text", "http_status": "..."}}`
/// inside the stream. Both shapes decode into this.
struct EtcdErrorBody: Decodable, Sendable {
    /// The gRPC status code (5: not found, 14: unavailable...).
    var code: Int64?
    var message: String?

    enum CodingKeys: String, CodingKey {
        case error, code, message
        case grpcCode = "grpc_code"
    }

    init(from decoder: any Decoder) throws {
        if let text = try? decoder.singleValueContainer().decode(String.self) {
            // The nested "error" of a unary answer: the text alone.
            message = text
            return
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        code = try container.decodeIfPresent(EtcdInt.self, forKey: .code)?.value
            ?? container.decodeIfPresent(EtcdInt.self, forKey: .grpcCode)?.value
        message = try container.decodeIfPresent(String.self, forKey: .message)
        if let nested = try? container.decodeIfPresent(EtcdErrorBody.self, forKey: .error) {
            code = code ?? nested.code
            message = message ?? nested.message
        }
    }

    /// gRPC's NOT_FOUND: etcd's answer to an unknown or expired lease.
    var isNotFound: Bool { code == 5 }
}

/// Decodes one JSON answer; a decoding failure becomes the message of a `.corrupt` error.
func decodeEtcd<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws(EtcdDecodeFailure) -> T {
    do {
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    } catch let error as DecodingError {
        throw EtcdDecodeFailure(describe(error))
    } catch {
        throw EtcdDecodeFailure("\(error)")
    }
}

/// One line for a decoding error: what was wrong and where.
private func describe(_ error: DecodingError) -> String {
    func at(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
    }
    switch error {
    case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context),
         .dataCorrupted(let context):
        return "not etcd's JSON (\(at(context).prefix(200)))"
    @unknown default:
        return "not etcd's JSON"
    }
}
