// TEMPORARY (lead's compile shim; replaced by the etcd helper's LeaseKeeper at merge).
import StrataFormat
import Synchronization

final class LeaseKeeper: Sendable {
    let id: Int64
    let store: any MetadataStore
    private let alive = Mutex(true)
    private let task = Mutex<Task<Void, Never>?>(nil)
    var isAlive: Bool { alive.withLock { $0 } }

    private init(id: Int64, store: any MetadataStore) { self.id = id; self.store = store }

    static func start(store: any MetadataStore, ttlSeconds: Int) async throws(StrataError) -> LeaseKeeper {
        let id = try await store.grantLease(ttlSeconds: ttlSeconds)
        let k = LeaseKeeper(id: id, store: store)
        let t = Task { [k] in
            var lastOK = monotonicSeconds()
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(ttlSeconds) * 1_000_000_000 / 3)
                do throws(StrataError) { _ = try await store.keepAlive(lease: id); lastOK = monotonicSeconds() }
                catch where error.code == .notFound { k.alive.withLock { $0 = false }; return }
                catch { if monotonicSeconds() - lastOK > Double(ttlSeconds) { k.alive.withLock { $0 = false }; return } }
            }
        }
        k.task.withLock { $0 = t }
        return k
    }

    func revoke() async {
        task.withLock { $0?.cancel() }
        alive.withLock { $0 = false }
        try? await store.revoke(lease: id)
    }
}
