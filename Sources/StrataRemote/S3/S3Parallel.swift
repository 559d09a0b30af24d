// Runs the parts of one transfer (upload parts, download ranges) with at most `width` in flight,
// and stops the others at the first failure.

import StrataFormat

/// `body(0) ... body(count - 1)`, at most `width` at a time; the results in index order. The first
/// error cancels the tasks still running and is the one thrown.
package func inParallel<T: Sendable>(count: Int, width: Int, what: String,
                             _ body: @escaping @Sendable (Int) async throws(StrataError) -> T) async throws(StrataError) -> [T] {
    do {
        return try await withThrowingTaskGroup(of: (Int, T).self) { group in
            var results = [T?](repeating: nil, count: count)
            var next = 0
            func start() {
                let index = next
                group.addTask { (index, try await body(index)) }
                next += 1
            }
            while next < min(width, count) { start() }
            while let (index, value) = try await group.next() {
                results[index] = value
                if next < count { start() }
            }
            return results.map { $0! }
        }
    } catch let error as StrataError {
        throw error
    } catch {
        throw StrataError(.io, "transfer interrupted: \(error)", path: what)
    }
}
