// Watching a prefix on etcd (`/v3/watch`): a streaming POST whose answer is a sequence of JSON
// messages `{"result": {...}}`, the first confirming `created`, then one per batch of events.
// Messages are cut out of the HTTP chunks as they come (see JSONObjectSplitter).
import AsyncHTTPClient
import NIOCore
import StrataFormat
import Synchronization

extension EtcdClient {
    /// Changes to keys under `prefix` after `revision` (0: from now), until the consuming task is
    /// cancelled or stops iterating.
    ///
    /// The stream starts once etcd confirms the watch, within ``timeout``; after that it stays
    /// open without a deadline (a watch is silent while nothing changes). It ends by throwing a
    /// `StrataError`: `.io` when the connection drops, etcd cancels the watch (for a revision that
    /// was compacted away, say) or does not confirm it in time; `.corrupt` for an answer that is not
    /// etcd's. A watcher re-reads what it needs and watches again from the last revision it saw.
    ///
    /// An etcd that stops answering without closing the connection (a frozen process, a partition
    /// that drops packets) leaves a confirmed watch silent, not failed: code that must know etcd is
    /// alive holds a ``LeaseKeeper`` or reads, which have deadlines.
    public func watch(prefix: String, afterRevision revision: Int64) -> AsyncThrowingStream<WatchEvent, any Error> {
        var request: [String: EtcdJSON] = [
            "key": .bytes(prefix.isEmpty ? [0] : Array(prefix.utf8)),
            "range_end": .bytes(etcdPrefixEnd(Array(prefix.utf8))),
        ]
        if revision > 0 { request["start_revision"] = .int(revision + 1) }
        let body = EtcdJSON.object(["create_request": .object(request)]).encoded()
        let timeout = self.timeout
        return AsyncThrowingStream { continuation in
            let confirmation = WatchConfirmation()
            let task = Task {
                do throws(StrataError) {
                    try await self.runWatch(body, prefix: prefix, confirmation: confirmation) { continuation.yield($0) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            // etcd confirms a watch at once: a server that opens the stream and then says nothing
            // (or never answers) is cut off after the timeout instead of hanging the watcher.
            let watchdog = Task {
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                if confirmation.expireUnlessConfirmed() { task.cancel() }
            }
            continuation.onTermination = { _ in
                task.cancel()
                watchdog.cancel()
            }
        }
    }

    /// Opens the stream and hands every event to `deliver` until the stream ends (throws) or the
    /// task is cancelled (returns).
    private func runWatch(_ body: [UInt8], prefix: String, confirmation: WatchConfirmation,
                          deliver: (WatchEvent) -> Void) async throws(StrataError) {
        let subject = prefix
        let request = postRequest("/v3/watch", body)
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: Self.amount(timeout))
        } catch {
            if try endedQuietly(confirmation, subject: subject) { return }
            throw unreachable(Self.describe(error, timeout: timeout), subject: "watch \(subject)")
        }
        guard response.status.code == 200 else {
            let answer = (try? await response.body.collect(upTo: 64 << 10)).map { Array(buffer: $0) } ?? []
            let message = (try? decodeEtcd(EtcdErrorBody.self, from: answer))?.message ?? "\(answer.count) bytes that are not an etcd error"
            throw StrataError(.io, "etcd at \(endpoint) refused the watch (HTTP \(response.status.code)): \(message)", path: subject)
        }
        var splitter = JSONObjectSplitter(maximumObjectBytes: maximumAnswerBytes)
        var created = false
        do {
            for try await chunk in response.body {
                let messages: [[UInt8]]
                do {
                    messages = try splitter.append(chunk.readableBytesView)
                } catch {
                    throw corrupt("watch with \(error.message)", subject: subject)
                }
                for bytes in messages {
                    let message = try decode(EtcdStreamMessage<EtcdWatchResponse>.self, bytes, request: "watch", subject: subject)
                    let events = try watchEvents(message, created: &created, subject: subject)
                    if created, !confirmation.confirm() { _ = try endedQuietly(confirmation, subject: subject) }
                    for event in events { deliver(event) }
                }
            }
        } catch let error as StrataError {
            throw error
        } catch {
            if try endedQuietly(confirmation, subject: subject) { return }
            throw unreachable("the watch stream broke: \(Self.describe(error, timeout: timeout))", subject: "watch \(subject)")
        }
        if try endedQuietly(confirmation, subject: subject) { return }
        throw StrataError(.io, "etcd at \(endpoint) closed the watch on '\(prefix)'\(splitter.hasPartialObject ? " mid-message" : "")", path: subject)
    }

    /// True when the consumer cancelled the watch (it ends quietly); throws when the watchdog did,
    /// because etcd did not confirm the watch in time.
    private func endedQuietly(_ confirmation: WatchConfirmation, subject: String) throws(StrataError) -> Bool {
        if confirmation.expired {
            throw unreachable("the watch was not confirmed within \(timeout)", subject: "watch \(subject)")
        }
        return Task.isCancelled
    }

    /// The events of one message; checks `created` first and turns a cancellation or error into
    /// a `StrataError`.
    private func watchEvents(_ message: EtcdStreamMessage<EtcdWatchResponse>, created: inout Bool,
                             subject: String) throws(StrataError) -> [WatchEvent] {
        if let error = message.error {
            throw StrataError(.io, "etcd at \(endpoint) ended the watch: \(error.message ?? "an error without a message")", path: subject)
        }
        guard let result = message.result else { throw corrupt("a watch message without a result", subject: subject) }
        if result.canceled == true {
            var reason = result.cancelReason.flatMap { $0.isEmpty ? nil : $0 } ?? "no reason given"
            if let compacted = result.compactRevision?.value, compacted > 0 {
                reason += " (revisions before \(compacted) were compacted)"
            }
            throw StrataError(.io, "etcd at \(endpoint) cancelled the watch: \(reason)", path: subject)
        }
        if !created {
            guard result.created == true else { throw corrupt("a watch whose first message does not confirm it", subject: subject) }
            created = true
        }
        var events: [WatchEvent] = []
        for event in result.events ?? [] {
            guard let kv = event.kv else { throw corrupt("a watch event without a key", subject: subject) }
            let keyValue: KeyValue
            do {
                keyValue = try kv.keyValue()
            } catch {
                throw corrupt("a watch event with \(error.message)", subject: subject)
            }
            events.append(WatchEvent(kind: event.type == .delete ? .delete : .put, keyValue: keyValue))
        }
        return events
    }
}

/// Whether etcd confirmed a watch before its deadline: the watch task and its watchdog race to set it.
final class WatchConfirmation: Sendable {
    private enum State { case waiting, confirmed, expired }
    private let state = Mutex(State.waiting)

    /// Marks the watch confirmed; false when the deadline already passed.
    func confirm() -> Bool {
        state.withLock { state in
            if state == .expired { return false }
            state = .confirmed
            return true
        }
    }

    /// Marks the deadline passed unless the watch was confirmed; true when it was not.
    func expireUnlessConfirmed() -> Bool {
        state.withLock { state in
            if state == .confirmed { return false }
            state = .expired
            return true
        }
    }

    /// Whether the deadline passed first.
    var expired: Bool { state.withLock { $0 == .expired } }
}
