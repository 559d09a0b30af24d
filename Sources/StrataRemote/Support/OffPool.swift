// Long CPU-bound work (sealing a segment with its graph, building a compaction's output) run on a
// thread of its own instead of a thread of Swift's cooperative pool. The pool has one thread per
// core: on a small machine a 10-second index build holding one, while requests hold the others,
// starves every task, lease keepalives included, and a writer whose keepalive cannot run loses
// its lease (and is fenced out) though nothing failed.
import Foundation
import StrataFormat

/// Runs `body` on a dedicated thread and returns (or throws) what it does.
package func offPool<T: Sendable>(_ what: String, _ body: @escaping @Sendable () throws(StrataError) -> T) async throws(StrataError) -> T {
    let result: Result<T, StrataError> = await withCheckedContinuation { continuation in
        let thread = Thread {
            do throws(StrataError) {
                continuation.resume(returning: .success(try body()))
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
        thread.name = what
        thread.stackSize = 8 << 20
        thread.start()
    }
    return try result.get()
}
