// The state behind a collection: the process-wide file reference counts that keep obsolete files
// alive while a version (Version.swift) holds them, and the lock that guards a collection's state.
import StrataFormat
import StrataIndex
import CStrataKernels
#if canImport(Glibc)
import Glibc
#endif

/// Process-wide reference counts of collection files held by open versions, so that an obsolete
/// file is never removed while a reader of this process may use it.
final class FileReferences: @unchecked Sendable {
    static let shared = FileReferences()
    private let lock = PThreadLock()
    private var counts: [String: Int] = [:]

    func retain(_ paths: [String]) { lock.locked { for p in paths { counts[p, default: 0] += 1 } } }
    func release(_ paths: [String]) {
        lock.locked {
            for p in paths {
                let n = (counts[p] ?? 1) - 1
                counts[p] = n > 0 ? n : nil
            }
        }
    }
    func isReferenced(_ path: String) -> Bool { lock.locked { counts[path] != nil } }
}

/// A plain pthread mutex (no `sending` constraints on the closure).
final class PThreadLock: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>
    init() {
        m = .allocate(capacity: 1)
        pthread_mutex_init(m, nil)
    }
    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }
    @inline(__always)
    func locked<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }
}
