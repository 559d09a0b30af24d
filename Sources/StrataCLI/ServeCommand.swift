import ArgumentParser
import Foundation
import Logging
import StrataFormat
import StrataRemote
import StrataServer

/// `strata serve`: a node of a serving cluster (Qdrant's REST API over sharded collections in an
/// object store, with etcd for membership and commit points). Runs until SIGTERM or SIGINT
/// (exit 0); exit 2 when it cannot start (bad flags, etcd or the store unreachable, port taken).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve collections over Qdrant's REST API, as one node of a cluster sharing an object store and etcd.",
        discussion: """
        Any number of nodes may serve the same --store and --etcd: they find each other in etcd, each owns (writes) the shards rendezvous hashing gives it, and any node answers any request, fanning searches out to every shard. A node that dies is replaced by the next owner of each of its shards once its lease expires (--lease-seconds); no acknowledged write is lost. See docs/SERVE.md.
        """)

    @Option(name: .customLong("listen"), help: "HOST:PORT to listen on (default: $STRATA_LISTEN, else 127.0.0.1:6333; port 0 picks a free one).")
    var listen: String?

    @Option(name: .customLong("node-id"), help: "This node's id, unique among live nodes (default: $STRATA_NODE_ID, else the host name).")
    var nodeID: String?

    @Option(name: .customLong("store"), help: "Where the cluster's data lives, s3://BUCKET/PREFIX (default: $STRATA_STORE).")
    var store: String?

    @Option(name: .customLong("advertise"), help: "The URL other nodes reach this one at (default: http://HOST:PORT of --listen).")
    var advertise: String?

    @Option(name: .customLong("api-key"), help: "Require this key in the api-key header of every request (default: $STRATA_API_KEY).")
    var apiKey: String?

    @Option(name: .customLong("read-only-api-key"), help: "A second key that opens reads only (default: $STRATA_READ_ONLY_API_KEY).")
    var readOnlyApiKey: String?

    @Option(name: .customLong("lease-seconds"), help: "TTL of the node's and shard writers' leases in etcd.")
    var leaseSeconds = 3

    @Option(name: .customLong("compact-interval"), help: "Seconds between compactions of the shards this node owns (0: never).")
    var compactInterval = 30.0

    @Option(name: .customLong("flush-rows"), help: "Buffered rows per shard before a flush writes a segment.")
    var flushRows = 100_000

    @Option(name: .customLong("max-body-bytes"), help: "Largest request body accepted.")
    var maxBodyBytes = 64 << 20

    @Option(name: .customLong("ready-file"), help: "Write this node's URL to this file once it serves.")
    var readyFile: String?

    @OptionGroup var remote: RemoteFlags

    func validate() throws {
        guard (1...3600).contains(leaseSeconds) else { throw ValidationError("--lease-seconds must be 1...3600") }
        guard compactInterval.isFinite, compactInterval >= 0 else { throw ValidationError("--compact-interval must be 0 or more seconds") }
        guard flushRows >= 1 else { throw ValidationError("--flush-rows must be at least 1") }
        guard (1024...(1 << 30)).contains(maxBodyBytes) else { throw ValidationError("--max-body-bytes must be 1 KiB...1 GiB") }
    }

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        func value(_ flag: String?, _ name: String) -> String? { flag ?? env[name].flatMap { $0.isEmpty ? nil : $0 } }
        let listenText = value(listen, "STRATA_LISTEN") ?? "127.0.0.1:6333"
        guard let colon = listenText.lastIndex(of: ":"), let port = Int(listenText[listenText.index(after: colon)...]),
              (0...65535).contains(port), colon > listenText.startIndex else {
            throw ValidationError("--listen must be HOST:PORT, not '\(listenText)'")
        }
        let host = String(listenText[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if advertise == nil, ["0.0.0.0", "::", ""].contains(host) {
            throw ValidationError("--listen on every address needs --advertise http://HOST:PORT: the URL other nodes reach this one at")
        }
        if value(readOnlyApiKey, "STRATA_READ_ONLY_API_KEY") != nil, value(apiKey, "STRATA_API_KEY") == nil {
            throw ValidationError("--read-only-api-key needs --api-key too (without it nothing would require a key for writes)")
        }
        guard let storeText = value(store, "STRATA_STORE") else { throw ValidationError("--store s3://BUCKET/PREFIX is required (or $STRATA_STORE)") }
        let address = try S3Address(parsing: storeText)
        guard !address.path.isEmpty else { throw ValidationError("--store must name a prefix: s3://BUCKET/PREFIX") }
        let nodeID = value(nodeID, "STRATA_NODE_ID") ?? ProcessInfo.processInfo.hostName
        var config = ServeConfiguration(nodeID: nodeID, bucket: address.bucket, prefix: address.path,
                                        s3: try S3Configuration.fromEnvironment(endpoint: remote.s3Endpoint, bucket: address.bucket, environment: env),
                                        etcdEndpoint: try remote.etcdEndpoint(environment: env),
                                        cache: try remote.cacheOptions(environment: env))
        config.host = host
        config.port = port
        config.advertiseURL = advertise
        config.apiKey = value(apiKey, "STRATA_API_KEY")
        config.readOnlyApiKey = value(readOnlyApiKey, "STRATA_READ_ONLY_API_KEY")
        config.leaseSeconds = leaseSeconds
        config.compactIntervalSeconds = compactInterval
        config.flushThresholdRows = flushRows
        config.maxBodyBytes = maxBodyBytes
        config.readyFile = readyFile
        var logger = Logger(label: "strata.serve")
        logger.logLevel = env["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
        try await StrataServe.run(config, logger: logger)
    }
}
