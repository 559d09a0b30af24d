// The key-value half of the metadata store on etcd: range, put, delete and txn
// (`/v3/kv/range`, `/v3/kv/put`, `/v3/kv/deleterange`, `/v3/kv/txn`).
import StrataFormat

extension EtcdClient {
    /// The key's value, or nil.
    public func get(_ key: String) async throws(StrataError) -> KeyValue? {
        let answer = try await send("/v3/kv/range", .object(["key": .key(key)]), subject: key, retry: true)
        let range = try decode(EtcdRangeResponse.self, answer, request: "range", subject: key)
        let values = try keyValues(range.kvs, request: "range", subject: key)
        guard values.count <= 1, values.first.map({ $0.key.utf8.elementsEqual(key.utf8) }) ?? true else {
            throw corrupt("a range on one key with \(values.count) other keys", subject: key)
        }
        return values.first
    }

    /// Every key that starts with `prefix`, in key order (an empty prefix: every key).
    public func range(prefix: String) async throws(StrataError) -> [KeyValue] {
        let start: [UInt8] = prefix.isEmpty ? [0] : Array(prefix.utf8)
        let body = EtcdJSON.object(["key": .bytes(start), "range_end": .bytes(etcdPrefixEnd(Array(prefix.utf8)))])
        let answer = try await send("/v3/kv/range", body, subject: prefix, retry: true)
        let range = try decode(EtcdRangeResponse.self, answer, request: "range", subject: prefix)
        let values = try keyValues(range.kvs, request: "range", subject: prefix)
        for (index, value) in values.enumerated() {
            // Bytes, as etcd compares keys (String's `hasPrefix` and `<` compare characters).
            guard value.key.utf8.starts(with: prefix.utf8), index == 0 || values[index - 1].key.utf8.lexicographicallyPrecedes(value.key.utf8) else {
                throw corrupt("a range on prefix '\(prefix)' with keys out of order or outside it", subject: prefix)
            }
        }
        return values
    }

    /// Puts a value (attached to `lease` when not 0); returns the revision. `.notFound` when the
    /// lease expired.
    @discardableResult
    public func put(_ key: String, value: [UInt8], lease: Int64) async throws(StrataError) -> Int64 {
        // Not retried: see `send`.
        let answer = try await send("/v3/kv/put", Self.putRequest(key, value, lease: lease), subject: key, retry: false)
        let put = try decode(EtcdHeaderOnlyResponse.self, answer, request: "put", subject: key)
        return try revision(put.header, request: "put", subject: key)
    }

    /// Deletes a key (no error when absent).
    public func delete(_ key: String) async throws(StrataError) {
        let answer = try await send("/v3/kv/deleterange", .object(["key": .key(key)]), subject: key, retry: false)
        _ = try decode(EtcdHeaderOnlyResponse.self, answer, request: "deleterange", subject: key)
    }

    /// Runs `success` when every comparison holds, else `failure`, atomically. Not retried on a
    /// connection error (the answer may be lost after the commit): the caller re-reads.
    public func txn(compare: [TxnCompare], success: [TxnOperation], failure: [TxnOperation]) async throws(StrataError) -> TxnResult {
        let subject = Self.subject(compare, success, failure)
        let body = EtcdJSON.object([
            "compare": .array(compare.map(Self.compareRequest)),
            "success": .array(success.map(Self.operationRequest)),
            "failure": .array(failure.map(Self.operationRequest)),
        ])
        let answer = try await send("/v3/kv/txn", body, subject: subject, retry: false)
        let txn = try decode(EtcdTxnResponse.self, answer, request: "txn", subject: subject)
        let revision = try revision(txn.header, request: "txn", subject: subject)
        // A failed txn leaves "succeeded" out (false is proto3's default).
        let succeeded = txn.succeeded ?? false
        let branch = succeeded ? success : failure
        let responses = txn.responses ?? []
        guard responses.count == branch.count else {
            throw corrupt("a txn with \(responses.count) results for \(branch.count) operations", subject: subject)
        }
        var reads: [KeyValue?] = []
        for (operation, response) in zip(branch, responses) {
            switch operation {
            case .get(let key):
                guard let range = response.responseRange else {
                    throw corrupt("a txn without the result of its get of '\(key)'", subject: subject)
                }
                let values = try keyValues(range.kvs, request: "txn", subject: subject)
                guard values.count <= 1, values.first.map({ $0.key.utf8.elementsEqual(key.utf8) }) ?? true else {
                    throw corrupt("a txn whose get of '\(key)' found other keys", subject: subject)
                }
                reads.append(values.first)
            case .put:
                guard response.responsePut != nil else { throw corrupt("a txn without the result of a put", subject: subject) }
            case .delete:
                guard response.responseDeleteRange != nil else { throw corrupt("a txn without the result of a delete", subject: subject) }
            }
        }
        return TxnResult(succeeded: succeeded, revision: revision, reads: reads)
    }

    // MARK: Request bodies

    static func putRequest(_ key: String, _ value: [UInt8], lease: Int64) -> EtcdJSON {
        var fields: [String: EtcdJSON] = ["key": .key(key), "value": .bytes(value)]
        if lease != 0 { fields["lease"] = .int(lease) }
        return .object(fields)
    }

    static func compareRequest(_ compare: TxnCompare) -> EtcdJSON {
        switch compare {
        case .modRevision(let key, let revision):
            return .object(["key": .key(key), "result": .string("EQUAL"), "target": .string("MOD"), "mod_revision": .int(revision)])
        case .createRevision(let key, let revision):
            return .object(["key": .key(key), "result": .string("EQUAL"), "target": .string("CREATE"), "create_revision": .int(revision)])
        case .value(let key, let bytes):
            return .object(["key": .key(key), "result": .string("EQUAL"), "target": .string("VALUE"), "value": .bytes(bytes)])
        }
    }

    static func operationRequest(_ operation: TxnOperation) -> EtcdJSON {
        switch operation {
        case .put(let key, let value, let lease): return .object(["request_put": putRequest(key, value, lease: lease)])
        case .delete(let key): return .object(["request_delete_range": .object(["key": .key(key)])])
        case .get(let key): return .object(["request_range": .object(["key": .key(key)])])
        }
    }

    /// The key a txn is about, for messages: the first compared (or written) key.
    static func subject(_ compare: [TxnCompare], _ success: [TxnOperation], _ failure: [TxnOperation]) -> String {
        for item in compare {
            switch item {
            case .modRevision(let key, _), .createRevision(let key, _), .value(let key, _): return key
            }
        }
        for operation in success + failure {
            switch operation {
            case .put(let key, _, _), .delete(let key), .get(let key): return key
            }
        }
        return "txn"
    }

    /// The protocol's values for a range answer's key-values.
    func keyValues(_ kvs: [EtcdKeyValue]?, request: String, subject: String) throws(StrataError) -> [KeyValue] {
        var values: [KeyValue] = []
        for kv in kvs ?? [] {
            do {
                values.append(try kv.keyValue())
            } catch {
                throw corrupt("\(request) with \(error.message)", subject: subject)
            }
        }
        return values
    }
}
