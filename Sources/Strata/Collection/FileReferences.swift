// The process-wide reference counts that keep obsolete collection files alive while a version
// (Version.swift) of this process holds them: garbage collection skips a referenced file.
import Synchronization

/// Process-wide reference counts of collection files held by open versions, so that an obsolete
/// file is never removed while a reader of this process may use it.
package final class FileReferences: Sendable {
    package static let shared = FileReferences()
    private let counts = Mutex<[String: Int]>([:])

    package func retain(_ paths: [String]) { counts.withLock { c in for p in paths { c[p, default: 0] += 1 } } }
    package func release(_ paths: [String]) {
        counts.withLock { c in
            for p in paths {
                let n = (c[p] ?? 1) - 1
                c[p] = n > 0 ? n : nil
            }
        }
    }
    package func isReferenced(_ path: String) -> Bool { counts.withLock { $0[path] != nil } }
}
