// Collections in an object store on the command line: wherever a collection directory is accepted,
// `s3://BUCKET/PATH` is accepted too. This file is the one place that knows how: the flags (and
// their environment variables) that say where the store, etcd and the node-local cache are, the
// parsing of the address, the two clients, and their shutdown at the end whatever happened.
import ArgumentParser
import Foundation
import Strata
import StrataFormat
import StrataRemote

/// Where the object store, etcd and the segment cache are, for `s3://` addresses (ignored for a
/// local directory). Each flag falls back to an environment variable; the credentials and region
/// come from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_REGION` (default us-east-1).
struct RemoteFlags: ParsableArguments {
    @Option(name: .customLong("s3-endpoint"), help: "S3 endpoint for s3:// addresses, http(s)://host:port (default: $STRATA_S3_ENDPOINT).")
    var s3Endpoint: String?

    @Option(name: .customLong("etcd"), help: "etcd endpoint for s3:// addresses, http://host:port (default: $STRATA_ETCD).")
    var etcd: String?

    @Option(name: .customLong("cache-dir"),
            help: "Segment cache for s3:// addresses (default: $STRATA_CACHE_DIR, else $XDG_CACHE_HOME/strata or ~/.cache/strata).")
    var cacheDir: String?

    @Option(name: .customLong("cache-bytes"), help: "Segment cache capacity, e.g. 8G (default: $STRATA_CACHE_BYTES, else 8G).")
    var cacheBytes: String?

    func validate() throws {
        if let cacheBytes, CollectionCompactCommand.parseBytes(cacheBytes) == nil {
            throw ValidationError("--cache-bytes must be a size such as 512M, 8G or a number of bytes")
        }
    }

    /// The cache settings: flags, then the environment, then the defaults. Throws
    /// `.invalidArgument` for a bad `STRATA_CACHE_BYTES` or when no directory can be chosen.
    func cacheOptions(environment: [String: String]) throws(StrataError) -> SegmentCacheOptions {
        func value(_ name: String) -> String? {
            guard let v = environment[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        let directory: String
        if let d = cacheDir ?? value("STRATA_CACHE_DIR") {
            directory = d
        } else if let xdg = value("XDG_CACHE_HOME") {
            directory = xdg + "/strata"
        } else if let home = value("HOME") {
            directory = home + "/.cache/strata"
        } else {
            throw StrataError(.invalidArgument, "no cache directory: pass --cache-dir or set STRATA_CACHE_DIR (HOME is not set)")
        }
        var options = SegmentCacheOptions(directory: directory)
        if let text = cacheBytes ?? value("STRATA_CACHE_BYTES") {
            guard let bytes = CollectionCompactCommand.parseBytes(text) else {
                throw StrataError(.invalidArgument, "STRATA_CACHE_BYTES '\(text.prefix(40))' is not a size such as 512M, 8G or a number of bytes")
            }
            options.capacityBytes = UInt64(bytes)
        }
        return options
    }

    /// The etcd endpoint: `--etcd`, else `STRATA_ETCD`.
    func etcdEndpoint(environment: [String: String]) throws(StrataError) -> String {
        guard let e = etcd ?? environment["STRATA_ETCD"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw StrataError(.invalidArgument, "no etcd endpoint for an s3:// address: pass --etcd or set STRATA_ETCD (e.g. http://127.0.0.1:2379)")
        }
        return e
    }
}

/// What a collection argument names: a local directory or a collection in an object store.
enum CollectionLocation {
    case local(String)
    case remote(S3Address)

    /// `s3://BUCKET/PATH` is remote (and must parse: a bad address is a usage error, exit 2);
    /// anything else is a local path.
    init(_ text: String) throws(StrataError) {
        guard S3Address.isAddress(text) else {
            self = .local(text)
            return
        }
        let address = try S3Address(parsing: text)
        guard !address.path.isEmpty else {
            throw StrataError(.invalidArgument, "bad S3 address '\(text)': it names a bucket but no collection path; expected s3://BUCKET/PATH")
        }
        self = .remote(address)
    }
}

/// The clients and settings for one remote collection. Make it with ``with(_:flags:collection:_:)``,
/// which shuts the clients down when the body ends, however it ends.
final class RemoteTarget {
    /// The address as parsed.
    let address: S3Address
    /// Where the collection's objects and keys are.
    let layout: RemoteLayout
    /// The bucket.
    let s3: S3Client
    /// etcd.
    let etcd: EtcdClient
    /// Cache and collection options.
    let options: RemoteOptions

    private init(address: S3Address, s3: S3Client, etcd: EtcdClient, options: RemoteOptions) {
        self.address = address
        self.layout = RemoteLayout(bucket: address.bucket, prefix: address.path)
        self.s3 = s3
        self.etcd = etcd
        self.options = options
    }

    /// Runs `body` with clients for `address` (settings from `flags` and the environment;
    /// `collection`: flush and index options for what the command writes), then shuts them down.
    static func with<T>(_ address: S3Address, flags: RemoteFlags, collection: CollectionOptions = CollectionOptions(),
                        environment: [String: String] = ProcessInfo.processInfo.environment,
                        _ body: (RemoteTarget) async throws -> T) async throws -> T {
        // Everything that can be wrong with the settings is found before a client exists.
        let configuration = try S3Configuration.fromEnvironment(endpoint: flags.s3Endpoint, bucket: address.bucket, environment: environment)
        let etcdEndpoint = try flags.etcdEndpoint(environment: environment)
        var options = RemoteOptions(cache: try flags.cacheOptions(environment: environment))
        options.collection = collection
        let etcd = try EtcdClient(endpoint: etcdEndpoint)
        let target = RemoteTarget(address: address, s3: S3Client(configuration: configuration), etcd: etcd, options: options)
        let result: T
        do {
            result = try await body(target)
        } catch {
            await target.shutdown()
            throw error
        }
        await target.shutdown()
        return result
    }

    /// Closes both clients' connections (errors here change nothing the command did).
    private func shutdown() async {
        try? await s3.shutdown()
        await etcd.shutdown()
    }

    /// Opens the collection (`.readWrite` takes the writer lease; `.readOnly` pins the head).
    func open(_ access: CollectionAccess) async throws(StrataError) -> RemoteCollection {
        try await mapMissing { () async throws(StrataError) in
            try await RemoteCollection.open(layout: layout, access: access, store: s3, metadata: etcd, options: options)
        }
    }

    /// Checks the collection (`strata verify`): damage is reported, not thrown.
    func verify() async throws(StrataError) -> RemoteVerifyReport {
        try await mapMissing { () async throws(StrataError) in
            try await RemoteCollection.verify(layout: layout, store: s3, metadata: etcd, options: options)
        }
    }

    /// Runs `body`, where no collection at the address is an I/O error (exit 2), as a missing
    /// directory is for a local collection; other errors are unchanged.
    func mapMissing<T>(_ body: () async throws(StrataError) -> T) async throws(StrataError) -> T {
        do {
            return try await body()
        } catch where error.code == .notFound && error.path == layout.address {
            var e = error
            e.code = .io
            throw e
        }
    }

    /// Creates the collection and opens it for writing.
    func create(schema: SegmentSchema) async throws(StrataError) -> RemoteCollection {
        try await RemoteCollection.create(layout: layout, schema: schema, store: s3, metadata: etcd, options: options)
    }
}
