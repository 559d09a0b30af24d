// What a benchmark reports about its own process: bytes read from storage and anonymous resident
// memory, from /proc (Linux); nil elsewhere.
import Foundation
import StrataFormat

/// Figures of the running process, for benchmark output.
package enum ProcessStatistics {
    /// Bytes this process read from storage (`read_bytes` of /proc/self/io).
    package static func diskReadBytes() -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("read_bytes:") {
            return line.split(separator: " ").last.flatMap { UInt64($0) }
        }
        return nil
    }

    /// Anonymous resident memory (RssAnon from /proc/self/status) in MB.
    package static func residentAnonymousMB() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("RssAnon:") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first
            return kb.map { $0 / 1024 }
        }
        return nil
    }
}
