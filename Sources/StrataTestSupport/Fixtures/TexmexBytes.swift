// texmex .fvecs / .ivecs bytes for test inputs.
import Foundation
import Strata

/// `.fvecs` bytes: per vector, its dimension (Int32 LE) then its floats (LE).
package func fvecsData(_ vectors: [[Float]]) -> Data {
    var d = Data()
    for v in vectors {
        withUnsafeBytes(of: Int32(v.count).littleEndian) { d.append(contentsOf: $0) }
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
    }
    return d
}

/// `.ivecs` bytes: per record, its length (Int32 LE) then its values (LE).
package func ivecsData(_ rows: [[Int32]]) -> Data {
    var d = Data()
    for r in rows {
        withUnsafeBytes(of: Int32(r.count).littleEndian) { d.append(contentsOf: $0) }
        for x in r { withUnsafeBytes(of: x.littleEndian) { d.append(contentsOf: $0) } }
    }
    return d
}
