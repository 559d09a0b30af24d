// A fault-injecting twin of the POSIX file layer (StrataFormat/IO/FileLayer.swift). It passes every
// operation to the real files and fails the ones a test arms: a short write (part of the bytes reach
// the file, then ENOSPC), EIO or ENOSPC from any operation, or a crash right after a rename, before
// the directory fsync (with the rename kept or lost, as a power cut may do either). After a crash
// every operation fails: the "process" is gone, and the test reopens the collection with the POSIX
// layer to see what a restart would find.
//
// Usage: `try layer.run { try collection.flush() }`. Files opened inside `run` (a collection's WAL,
// say) keep using the twin after it returns, so faults can be armed on them later.
import Synchronization
@testable import StrataFormat

#if canImport(Glibc)
import Glibc
#endif

final class FaultInjectingFileLayer: FileLayer {
    /// The operations a fault can be armed on.
    enum Operation: String, Sendable { case create, openForWriting, write, sync, syncData, truncate, rename, syncDirectory }

    /// What an armed operation does instead of (or besides) its work.
    enum Fault: Sendable {
        /// Fails with `errno`, changing nothing.
        case fail(Int32)
        /// A write: the first half of the bytes reach the file, then it fails with `errno`.
        case shortWrite(Int32)
        /// A rename: returns success (the rename is done when `renameLost` is false, not done when
        /// true), then the process crashes: every later operation fails, the directory fsync included.
        case crashBeforeDirectorySync(renameLost: Bool)
    }

    private struct Rule {
        var operation: Operation
        var matches: @Sendable (String) -> Bool
        var skip: Int
        var fault: Fault
    }

    private struct State {
        var rules: [Rule] = []
        var crashed = false
        var fired: [String] = []
    }

    private let base = POSIXFileLayer()
    private let state = Mutex(State())

    /// Arms `fault` on the `skipping + 1`-th `operation` on a path whose file name satisfies
    /// `name` (for a rename, the destination's). Each armed fault fires once.
    func inject(_ fault: Fault, on operation: Operation, skipping: Int = 0,
                name: @escaping @Sendable (String) -> Bool = { _ in true }) {
        state.withLock { $0.rules.append(Rule(operation: operation, matches: name, skip: skipping, fault: fault)) }
    }

    /// Disarms every fault that has not fired.
    func disarm() { state.withLock { $0.rules.removeAll() } }

    /// The faults that fired, as "operation name", in order.
    var fired: [String] { state.withLock { $0.fired } }

    /// Whether a simulated crash happened.
    var crashed: Bool { state.withLock { $0.crashed } }

    /// Runs `body` with this layer under every durable write.
    func run<R>(_ body: () throws -> R) rethrows -> R {
        try FileLayerScope.$current.withValue(self, operation: body)
    }

    /// The fault armed for this operation on `path`, if it fires now. Throws after a crash.
    fileprivate func check(_ operation: Operation, _ path: String) throws(StrataError) -> Fault? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let (crashed, fault) = state.withLock { s -> (Bool, Fault?) in
            if s.crashed { return (true, nil) }
            guard let i = s.rules.firstIndex(where: { $0.operation == operation && $0.matches(name) }) else { return (false, nil) }
            if s.rules[i].skip > 0 {
                s.rules[i].skip -= 1
                return (false, nil)
            }
            let fault = s.rules.remove(at: i).fault
            s.fired.append("\(operation.rawValue) \(name)")
            if case .crashBeforeDirectorySync = fault { s.crashed = true }
            return (false, fault)
        }
        if crashed { throw Self.error(operation, path, EIO, note: "after a simulated crash") }
        return fault
    }

    fileprivate static func error(_ operation: Operation, _ path: String, _ code: Int32, offset: UInt64? = nil,
                                  note: String = "injected") -> StrataError {
        StrataError(.io, "\(operation.rawValue) failed: \(String(cString: strerror(code))) (\(note))", path: path, offset: offset, errno: code)
    }

    private func failIfArmed(_ operation: Operation, _ path: String) throws(StrataError) {
        if case .fail(let code) = try check(operation, path) { throw Self.error(operation, path, code) }
    }

    func create(_ path: String) throws(StrataError) -> any WritableFile {
        try failIfArmed(.create, path)
        return FaultInjectingFile(try base.create(path), layer: self)
    }

    func openForWriting(_ path: String) throws(StrataError) -> any WritableFile {
        try failIfArmed(.openForWriting, path)
        return FaultInjectingFile(try base.openForWriting(path), layer: self)
    }

    func rename(_ from: String, to: String) throws(StrataError) {
        switch try check(.rename, to) {
        case .fail(let code): throw Self.error(.rename, to, code)
        case .crashBeforeDirectorySync(let renameLost): if !renameLost { try base.rename(from, to: to) }
        case .shortWrite, nil: try base.rename(from, to: to)
        }
    }

    func syncDirectory(_ directory: String) throws(StrataError) {
        try failIfArmed(.syncDirectory, directory)
        try base.syncDirectory(directory)
    }

    func remove(_ path: String) {
        // A crashed process removes nothing (its cleanup never runs).
        guard !crashed else { return }
        base.remove(path)
    }
}

/// A file opened through ``FaultInjectingFileLayer``.
private final class FaultInjectingFile: WritableFile {
    let file: any WritableFile
    let layer: FaultInjectingFileLayer

    init(_ file: any WritableFile, layer: FaultInjectingFileLayer) {
        self.file = file
        self.layer = layer
    }

    var path: String { file.path }

    func write(_ bytes: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(StrataError) {
        switch try layer.check(.write, path) {
        case .fail(let code):
            throw FaultInjectingFileLayer.error(.write, path, code, offset: offset)
        case .shortWrite(let code):
            let half = bytes.count / 2
            if half > 0 { try file.write(UnsafeRawBufferPointer(rebasing: bytes[..<half]), atAbsoluteOffset: offset) }
            throw FaultInjectingFileLayer.error(.write, path, code, offset: offset + UInt64(half))
        case .crashBeforeDirectorySync, nil:
            try file.write(bytes, atAbsoluteOffset: offset)
        }
    }

    func sync() throws(StrataError) {
        if case .fail(let code) = try layer.check(.sync, path) { throw FaultInjectingFileLayer.error(.sync, path, code) }
        try file.sync()
    }

    func syncData() throws(StrataError) {
        if case .fail(let code) = try layer.check(.syncData, path) { throw FaultInjectingFileLayer.error(.syncData, path, code) }
        try file.syncData()
    }

    func truncate(to length: UInt64) throws(StrataError) {
        if case .fail(let code) = try layer.check(.truncate, path) { throw FaultInjectingFileLayer.error(.truncate, path, code) }
        try file.truncate(to: length)
    }

    func size() throws(StrataError) -> UInt64 { try file.size() }

    func close() { file.close() }
}
