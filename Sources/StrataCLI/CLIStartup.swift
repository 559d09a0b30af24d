import Foundation

/// Process-wide settings the CLI makes before parsing its arguments.
enum CLIStartup {
    /// Ignores SIGXFSZ, so that a write past the file-size limit (`ulimit -f`) fails with EFBIG, a
    /// typed `io` error (exit 2) after which the writers remove their temporary files, instead of
    /// killing the process (exit 153) with them left behind. Then refuses arguments that are not
    /// valid UTF-8 (see ``firstNonUTF8Argument()``): exit 2 with a message naming the argument.
    static func prepare() {
        signal(SIGXFSZ, SIG_IGN)
        if let (index, shown) = firstNonUTF8Argument() {
            FileHandle.standardError.write(Data("strata: argument \(index) is not valid UTF-8 (\(shown)); Strata takes paths and values as UTF-8 text only\n".utf8))
            exit(2)
        }
    }

    /// The first command-line argument that is not valid UTF-8, with its bytes shown (invalid ones
    /// as `\xFF`), or nil. Swift's `CommandLine.arguments` repairs such bytes into U+FFFD, so a
    /// path with them would be looked up (or created) under a different name: Strata works on
    /// `String` paths, whose C form is their UTF-8 bytes, and so refuses what it cannot name exactly.
    static func firstNonUTF8Argument() -> (index: Int, shown: String)? {
        for i in 1..<Int(CommandLine.argc) {
            guard let p = CommandLine.unsafeArgv[i] else { continue }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p))
            if String(validating: bytes, as: UTF8.self) == nil {
                let shown = bytes.map { $0 >= 0x20 && $0 < 0x7F ? String(UnicodeScalar($0)) : "\\x" + String(format: "%02X", $0) }.joined()
                return (i, shown)
            }
        }
        return nil
    }
}
