// `strata serve`: the process. Binds the HTTP server first (so that `--listen HOST:0` works and
// the node registers the port it got), then joins the cluster, opens the shards it owns and
// starts answering; on SIGTERM or SIGINT it stops accepting connections, finishes the requests in
// flight, closes its shards (releasing their writer leases, so the next owners take over at once)
// and leaves the cluster.
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import Strata
import StrataFormat
import StrataRemote
import Synchronization

/// Everything `strata serve` is started with.
package struct ServeConfiguration: Sendable {
    /// Listen address (loopback unless told otherwise) and port (0: any free one).
    package var host = "127.0.0.1"
    package var port = 6333
    /// This node's id in the cluster (unique among live nodes).
    package var nodeID: String
    /// The URL other nodes reach this one at (default `http://<host>:<bound port>`).
    package var advertiseURL: String?
    /// Where the cluster's data is: bucket and prefix.
    package var bucket: String
    package var prefix: String
    package var s3: S3Configuration
    package var etcdEndpoint: String
    package var cache: SegmentCacheOptions
    package var apiKey: String?
    package var readOnlyApiKey: String?
    /// TTL of the node's and the shard writers' leases, seconds: a dead node's shards move this
    /// long after its last keepalive at the latest.
    package var leaseSeconds = 3
    package var limits = ServerLimits()
    /// Largest request body.
    package var maxBodyBytes = 64 << 20
    /// How often the node compacts the shards it owns (0: never).
    package var compactIntervalSeconds = 30.0
    /// Buffered rows per shard before a flush.
    package var flushThresholdRows = 100_000
    /// A file the node writes its URL to once it serves (for scripts and tests).
    package var readyFile: String?

    package init(nodeID: String, bucket: String, prefix: String, s3: S3Configuration, etcdEndpoint: String, cache: SegmentCacheOptions) {
        self.nodeID = nodeID
        self.bucket = bucket
        self.prefix = prefix
        self.s3 = s3
        self.etcdEndpoint = etcdEndpoint
        self.cache = cache
    }
}

/// The `strata serve` process.
package enum StrataServe {
    private static let metricsBootstrapped = Mutex(false)

    /// The Prometheus registry the process's metrics go to (bootstrapped once per process).
    package static let registry: PrometheusCollectorRegistry = {
        let r = PrometheusCollectorRegistry()
        metricsBootstrapped.withLock { done in
            if !done {
                MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: r))
                done = true
            }
        }
        return r
    }()

    /// Runs a node until SIGTERM or SIGINT. Throws when it cannot start (etcd or the store
    /// unreachable, the port taken, the node id in use).
    package static func run(_ config: ServeConfiguration, logger: Logger) async throws {
        guard ServedCollection.isValidName(config.nodeID) else {
            throw StrataError(.invalidArgument, "--node-id '\(config.nodeID.prefix(100))' must be 1-128 characters of A-Z a-z 0-9 _ - .")
        }
        let registry = Self.registry
        let s3 = S3Client(configuration: config.s3)
        let etcd = try EtcdClient(endpoint: config.etcdEndpoint)
        let holder = NodeHolder()
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: MetricsMiddleware())
        if let key = config.apiKey { router.add(middleware: ApiKeyMiddleware(key: key, readOnlyKey: config.readOnlyApiKey)) }
        router.get("/metrics") { _, _ -> Response in
            if let node = try? holder.get() { await node.refreshGauges() }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        addQdrantRoutes(to: router, holder: holder, limits: config.limits, maxBodyBytes: config.maxBodyBytes)
        addInternalRoutes(to: router, holder: holder, limits: config.limits, maxBodyBytes: config.maxBodyBytes)
        let bound = BoundPort()
        let app = Application(router: router,
                              configuration: .init(address: .hostname(config.host, port: config.port), serverName: "strata"),
                              onServerRunning: { channel in bound.set(channel.localAddress?.port ?? config.port) },
                              logger: logger)
        let node = NodeService(config: config, s3: s3, etcd: etcd, holder: holder, bound: bound, logger: logger)
        // Shut down in reverse order: the HTTP server first (it drains requests in flight), then the node.
        let group = ServiceGroup(services: [node, app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        do {
            try await group.run()
        } catch {
            try? await s3.shutdown()
            await etcd.shutdown()
            throw error
        }
        try? await s3.shutdown()
        await etcd.shutdown()
    }
}

/// The port the server got, once it is bound.
final class BoundPort: Sendable {
    private let state = Mutex<(port: Int?, waiters: [CheckedContinuation<Int, Never>])>((nil, []))
    func set(_ port: Int) {
        let waiters = state.withLock { s in
            s.port = port
            let w = s.waiters
            s.waiters = []
            return w
        }
        for w in waiters { w.resume(returning: port) }
    }
    /// The port, or 0 when the waiting task is cancelled first (the server failed to bind).
    func wait() async -> Int {
        await withTaskCancellationHandler {
            await withCheckedContinuation { c in
                let ready = state.withLock { s -> Int? in
                    if let p = s.port { return p }
                    s.waiters.append(c)
                    return nil
                }
                if let ready { c.resume(returning: ready) }
            }
        } onCancel: {
            set(0)
        }
    }
}

/// The node as a service: joins once the server is bound, leaves at graceful shutdown.
struct NodeService: Service {
    let config: ServeConfiguration
    let s3: S3Client
    let etcd: EtcdClient
    let holder: NodeHolder
    let bound: BoundPort
    let logger: Logger

    func run() async throws {
        let port = await bound.wait()
        guard port > 0 else { return }  // the server did not start (its error ends the group)
        let url = config.advertiseURL ?? (config.host.contains(":") ? "http://[\(config.host)]:\(port)" : "http://\(config.host):\(port)")
        // The store must answer before the node joins (a wrong endpoint or credentials fail here).
        _ = try await s3.head(RemoteLayout.randomHex())
        let keys = ServeKeys(bucket: config.bucket, prefix: config.prefix)
        let view = try await ClusterView.start(metadata: etcd, keys: keys, me: NodeInfo(id: config.nodeID, url: url),
                                              ttlSeconds: config.leaseSeconds, logger: logger)
        var options = RemoteOptions(cache: config.cache)
        options.nodeName = config.nodeID
        options.writerLeaseSeconds = config.leaseSeconds
        options.collection.flushThresholdRows = config.flushThresholdRows
        let host = ShardHost(view: view, store: s3, options: options, logger: logger)
        let node = ServeNode(view: view, host: host, peers: PeerClient(apiKey: config.apiKey), limits: config.limits,
                             metrics: ServeMetrics(), logger: logger,
                             writeDeadlineSeconds: Double(config.leaseSeconds) * 4 + 20)
        host.start()
        holder.set(node)
        let compaction = Task { await node.compactionLoop(intervalSeconds: config.compactIntervalSeconds) }
        if let file = config.readyFile {
            try? Data((url + "\n").utf8).write(to: URL(fileURLWithPath: file + ".tmp"))
            _ = rename(file + ".tmp", file)
        }
        logger.info("serving", metadata: ["node": "\(config.nodeID)", "url": "\(url)"])
        try? await gracefulShutdown()
        logger.info("shutting down", metadata: ["node": "\(config.nodeID)"])
        compaction.cancel()
        await node.shutdown()
    }
}
