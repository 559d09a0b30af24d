// `strata-soak remote-writer`: the child process of the remote crash tests
// (Tests/StrataTests/Remote/RemoteCrashTests.swift). It writes batches of fresh ids to a remote
// collection, deletes one id now and then and flushes every few batches, printing a line after each
// acknowledgement ("A first last", "D id", "F generation"). The test kills it (SIGKILL) or arms a
// fault point (STRATA_FAULT_EXIT_AT) at which it exits mid-protocol, then checks that everything
// printed is in the collection exactly once and every printed delete is absent.
import ArgumentParser
import Foundation
import Strata
import StrataRemote

extension SoakDriverCommand {
    func remoteWriter() throws {
        let env = ProcessInfo.processInfo.environment
        guard let address = env["STRATA_SOAK_ADDRESS"], let etcdEndpoint = env["STRATA_ETCD"] else {
            throw ValidationError("remote-writer needs STRATA_SOAK_ADDRESS (s3://bucket/prefix), STRATA_ETCD and the S3 environment")
        }
        let parsed = try S3Address(parsing: address)
        let config = try S3Configuration.fromEnvironment(endpoint: nil, bucket: parsed.bucket)
        let layout = RemoteLayout(bucket: parsed.bucket, prefix: parsed.path)
        let (ops, flushEvery, cache, base) = (self.ops, self.flushRows, directory, UInt64(max(0, opBase)))
        let done = DispatchSemaphore(value: 0)
        let failure = FailureBox()
        Task {
            do throws(StrataError) {
                let s3 = S3Client(configuration: config)
                let etcd = try EtcdClient(endpoint: etcdEndpoint)
                var options = RemoteOptions(cache: SegmentCacheOptions(directory: cache))
                options.collection.index = nil
                options.collection.flushThresholdRows = Int.max
                options.writerLeaseSeconds = 2
                let c = try await RemoteCollection.open(layout: layout, store: s3, metadata: etcd, options: options)
                let dim = c.schema.dimension
                for n in 0..<UInt64(ops) {
                    let first = base + n * 10
                    try await c.insert((first..<first + 10).map { id in
                        SegmentRow(id: id, vector: Self.vector(id: id, version: 0, dimension: dim))
                    })
                    Self.say("A \(first) \(first + 9)")
                    if n % 3 == 2 {
                        let victim = first - 10
                        _ = try await c.delete(ids: [victim])
                        Self.say("D \(victim)")
                    }
                    if flushEvery > 0, n % UInt64(flushEvery) == UInt64(flushEvery - 1), let s = try await c.flush() {
                        Self.say("F \(s.generation)")
                    }
                }
                await c.close()
            } catch {
                failure.error = error
            }
            done.signal()
        }
        done.wait()
        if let e = failure.error { throw e }
    }
}

private final class FailureBox: @unchecked Sendable {
    // Written by the task before the semaphore is signalled, read after the wait.
    var error: StrataError?
}
