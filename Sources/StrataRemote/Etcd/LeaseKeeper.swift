// Holds an etcd lease: grants it, refreshes it every third of its TTL from a task, and says when it
// is lost. The collection writer's lease and readers' pins are leased keys kept alive this way.
//
// The keeper is conservative about time: it counts a lease's TTL from the moment the keepalive that
// renewed it was *sent* (etcd restarted the TTL no earlier than that), so `isAlive` turns false no
// later than the lease really expires, even while a keepalive is still waiting for its answer.
import StrataFormat
import Synchronization

/// A lease kept alive in the background until it is revoked or lost.
///
/// Lost means: etcd says the lease is gone (a keepalive answered `.notFound`), or keepalives kept
/// failing until the TTL ran out. Once lost it stays lost; `onLost` runs once, and
/// ``waitUntilLost()`` returns. ``revoke()`` stops the keeper and revokes the lease; that is not a
/// loss.
public final class LeaseKeeper: Sendable {
    /// The lease id, to attach keys to.
    public let lease: Int64
    /// The TTL it was granted with, in seconds.
    public let ttlSeconds: Int

    private struct State {
        /// When the lease expires at the latest, if no keepalive succeeds before.
        var expiry: ContinuousClock.Instant
        var lost: StrataError?
        var stopped = false
        var waiters: [CheckedContinuation<StrataError?, Never>] = []
        var refresher: Task<Void, Never>?
    }

    private let store: any MetadataStore
    private let state: Mutex<State>
    private let onLost: (@Sendable (StrataError) -> Void)?

    /// Grants a lease of `ttlSeconds` on `store` and starts keeping it alive (every `ttlSeconds / 3`).
    /// `onLost` runs once, from the keeper's task, if the lease is lost.
    public static func start(store: any MetadataStore, ttlSeconds: Int,
                             onLost: (@Sendable (StrataError) -> Void)? = nil) async throws(StrataError) -> LeaseKeeper {
        guard ttlSeconds >= 1 else {
            throw StrataError(.invalidArgument, "a lease TTL must be at least 1 s, not \(ttlSeconds)", path: store.endpoint)
        }
        let sent = ContinuousClock.now
        let lease = try await store.grantLease(ttlSeconds: ttlSeconds)
        let keeper = LeaseKeeper(store: store, lease: lease, ttlSeconds: ttlSeconds,
                                 expiry: sent + .seconds(ttlSeconds), onLost: onLost)
        keeper.startRefreshing()
        return keeper
    }

    private init(store: any MetadataStore, lease: Int64, ttlSeconds: Int, expiry: ContinuousClock.Instant,
                 onLost: (@Sendable (StrataError) -> Void)?) {
        self.store = store
        self.lease = lease
        self.ttlSeconds = ttlSeconds
        self.onLost = onLost
        state = Mutex(State(expiry: expiry))
    }

    deinit {
        state.withLock { $0.refresher?.cancel() }
    }

    /// Whether the lease is held: not lost, not revoked, and its TTL has not run out since the last
    /// keepalive that succeeded.
    public var isAlive: Bool {
        state.withLock { $0.lost == nil && !$0.stopped && ContinuousClock.now < $0.expiry }
    }

    /// Why the lease was lost, or nil while it is held (or after ``revoke()``).
    public var lossReason: StrataError? { state.withLock { $0.lost } }

    /// Returns when the lease is lost (with the reason) or revoked (nil); until then it waits, even
    /// when the calling task is cancelled (race it with other work in a task group if needed).
    public func waitUntilLost() async -> StrataError? {
        await withCheckedContinuation { continuation in
            let ready: StrataError?? = state.withLock { state in
                if state.lost != nil || state.stopped { return .some(state.lost) }
                state.waiters.append(continuation)
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Stops refreshing and revokes the lease (its keys are deleted). A lease that already expired
    /// is not an error. Throws `.io` when etcd cannot be reached: the lease then expires on its own
    /// within its TTL.
    public func revoke() async throws(StrataError) {
        let waiters = state.withLock { state in
            state.stopped = true
            state.refresher?.cancel()
            state.refresher = nil
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
        do {
            try await store.revoke(lease: lease)
        } catch where error.code == .notFound {
            return
        }
    }

    // MARK: Refreshing

    private func startRefreshing() {
        // Every third of the TTL, so that two keepalives can fail before the lease expires.
        let interval = Duration.milliseconds(max(ttlSeconds * 1000 / 3, 200))
        let task = Task { [weak self] in
            var pause = interval
            while !Task.isCancelled {
                try? await Task.sleep(for: pause)
                guard !Task.isCancelled, let keeper = self else { return }
                guard let next = await keeper.refresh(interval: interval) else { return }
                pause = next
            }
        }
        state.withLock { state in
            if state.stopped { task.cancel() } else { state.refresher = task }
        }
    }

    /// Sends one keepalive; returns the pause before the next, or nil when the keeper is done.
    private func refresh(interval: Duration) async -> Duration? {
        let sent = ContinuousClock.now
        do {
            let ttl = try await store.keepAlive(lease: lease)
            let extended = state.withLock { state -> Bool in
                guard state.lost == nil, !state.stopped else { return false }
                state.expiry = max(state.expiry, sent + .seconds(ttl))
                return true
            }
            return extended ? interval : nil
        } catch {
            if error.code == .notFound {
                markLost(StrataError(.notFound, "lease \(lease) expired: \(error.message)", path: error.path ?? store.endpoint))
                return nil
            }
            // etcd unreachable: try again soon, until the TTL has surely run out.
            let expiry = state.withLock { $0.expiry }
            if ContinuousClock.now >= expiry {
                markLost(StrataError(.io, "lease \(lease) lost: no keepalive succeeded within its TTL of \(ttlSeconds) s (last error: \(error.message))",
                                     path: error.path ?? store.endpoint))
                return nil
            }
            return max(.milliseconds(50), min(interval, ContinuousClock.now.duration(to: expiry), .milliseconds(500)))
        }
    }

    private func markLost(_ reason: StrataError) {
        let waiters: [CheckedContinuation<StrataError?, Never>]? = state.withLock { state in
            guard state.lost == nil, !state.stopped else { return nil }
            state.lost = reason
            defer { state.waiters = [] }
            return state.waiters
        }
        guard let waiters else { return }
        for waiter in waiters { waiter.resume(returning: reason) }
        onLost?(reason)
    }
}
