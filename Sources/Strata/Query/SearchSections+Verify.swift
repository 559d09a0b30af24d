// Deep checks of the format-1.2 search sections for `Segment.verify()` (open checks only sizes):
// payload indexes (sorted keys, ascending postings per key, row ids < N, forward array consistent
// with the postings, null rows), sparse and text postings (rows ascending and < N, block maxima).

import StrataFormat
import StrataIndex

extension Segment {
    func verifySearchSections(fail: (StrataError) -> Void) {
        guard let extras = searchExtras else { return }
        let n = rowCount
        for case let v? in extras.payload?.byOrdinal ?? [] {
            let where_ = "payload index of '\(v.column.name)'"
            func bad(_ m: String) { fail(StrataError(.corrupt, "\(where_): \(m)", section: "payload_index")) }
            var seen = [UInt8](repeating: 0, count: n)
            var problems = 0
            for d in 0..<v.distinctCount {
                if d > 0 {
                    let ordered: Bool
                    switch v.keyType {
                    case .string: ordered = FilterCompare.compareBytes(v.stringKey(d - 1), v.stringKey(d)) < 0
                    case .int64, .bool: ordered = Int64(bitPattern: v.numberBits(d - 1)) < Int64(bitPattern: v.numberBits(d))
                    case .float64: ordered = Double(bitPattern: v.numberBits(d - 1)) < Double(bitPattern: v.numberBits(d))
                    }
                    if !ordered { bad("keys \(d - 1) and \(d) are not strictly ascending"); problems += 1 }
                }
                let a = v.start(d), b = v.start(d + 1)
                guard a <= b, b <= UInt64(v.postingCount) else { bad("posting starts of key \(d) out of order"); problems += 1; break }
                var previous = -1
                for row in v.rows(ordinals: d..<(d + 1)) {
                    let r = Int(row)
                    guard r < n, r > previous else { bad("key \(d): row \(r) out of range or order"); problems += 1; break }
                    previous = r
                    if let f = v.forward, Int(f[r]) != d { bad("forward array says row \(r) holds key \(f[r]), postings say \(d)"); problems += 1 }
                    seen[r] = 1
                }
                if problems > 20 { return }
            }
            var previous = -1
            for row in v.nulls {
                let r = Int(row)
                guard r < n, r > previous, seen[r] == 0 else { bad("null row \(r) out of range, order, or also holding a key"); break }
                previous = r
                if let f = v.forward, f[r] != .max { bad("forward array gives null row \(r) a key") }
            }
        }
        func checkLists(_ lists: PostingLists, _ section: String) {
            for t in 0..<lists.termCount {
                var previous = -1
                let a = lists.start(t), e = lists.start(t + 1), firstBlock = lists.blockStart(t)
                for p in a..<e {
                    let r = Int(lists.rows[p])
                    guard r < n, r > previous else {
                        fail(StrataError(.corrupt, "term \(t): row \(r) out of range or order", section: section)); return
                    }
                    previous = r
                    if lists.values[p] > lists.blockMax[firstBlock + (p - a) / PostingLists.blockSize] {
                        fail(StrataError(.corrupt, "term \(t): a value exceeds its block maximum", section: section)); return
                    }
                }
            }
        }
        if let s = extras.sparse { checkLists(s.lists, "sparse_index") }
        for t in extras.text { checkLists(t.lists, "text_index") }
    }
}
