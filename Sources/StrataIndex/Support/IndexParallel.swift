// A deterministic parallel loop for index builds and dataset scans.
import Dispatch
import Synchronization
#if os(Linux)
import Glibc
#else
import Foundation
#endif

/// Deterministic data-parallel loops. Work items are handed out dynamically, but each item's result
/// depends only on its index and on data frozen for the loop, so the outcome does not depend on the
/// number of threads or on scheduling.
package enum IndexParallel {
    /// The number of worker threads to use when the caller does not say: the active processor count.
    package static var defaultThreadCount: Int {
        #if os(Linux)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
        #endif
    }

    /// Runs `body(worker, item)` for every item in `0..<count` on up to `threads` workers.
    /// `worker` is in `0..<threads` and identifies per-thread scratch; `chunk` items are claimed at a time.
    package static func forEach(count: Int, threads: Int, chunk: Int = 1,
                        _ body: (_ worker: Int, _ item: Int) -> Void) {
        if count <= 0 { return }
        let workers = max(1, min(threads, (count + chunk - 1) / chunk))
        if workers == 1 {
            for i in 0..<count { body(0, i) }
            return
        }
        let nextItem = Atomic<Int>(0)
        withoutActuallyEscaping(body) { body in
            let box = UncheckedBox(body)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                while true {
                    let start = nextItem.wrappingAdd(chunk, ordering: .relaxed).oldValue
                    if start >= count { break }
                    for i in start..<min(count, start + chunk) { box.value(worker, i) }
                }
            }
        }
    }
}
