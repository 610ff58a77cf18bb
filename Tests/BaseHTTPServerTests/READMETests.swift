import Foundation
import Testing

/// The README's Swift blocks, as a reader copies them.
///
/// A block stands alone, unless its first line is `// Continues the block above.`: then it is
/// compiled after the blocks it continues, as one program. A block that starts with
/// `// swift-tools-version` is a package manifest.
struct READMEBlock: CustomTestStringConvertible, Sendable {
    /// The README line the block starts on (its opening fence).
    let line: Int
    let code: String
    var testDescription: String { "README.md line \(line)" }

    static let continuation = "// Continues the block above."

    var isManifest: Bool { code.hasPrefix("// swift-tools-version") }
    var continuesTheOneAbove: Bool { code.hasPrefix(READMEBlock.continuation) }

    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let all: [READMEBlock] = {
        let text = (try? String(contentsOf: repository.appendingPathComponent("README.md"), encoding: .utf8)) ?? ""
        var blocks: [READMEBlock] = []
        var open: (line: Int, lines: [Substring])?
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if let block = open {
                if line == "```" {
                    blocks.append(READMEBlock(line: block.line, code: block.lines.joined(separator: "\n") + "\n"))
                    open = nil
                } else {
                    open?.lines.append(line)
                }
            } else if line == "```swift" {
                open = (index + 1, [])
            }
        }
        return blocks
    }()

    /// The program this block is compiled in: it and the blocks it continues, in order.
    var program: String {
        let blocks = READMEBlock.all
        guard var start = blocks.firstIndex(where: { $0.line == line }) else { return code }
        while start > 0 && blocks[start].continuesTheOneAbove { start -= 1 }
        let end = blocks.firstIndex(where: { $0.line == line })!
        return blocks[start...end].map(\.code).joined(separator: "\n")
    }
}

/// Where this build's modules are: beside the test binary, in `Modules`.
private let modulesDirectory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    .deletingLastPathComponent().appendingPathComponent("Modules").path

/// Type-checks `program` as a program's main file against this build's modules, as a user's
/// code that imports them would be: the compiler's exit status and what it printed.
func typeCheck(_ program: String, name: String) throws -> (status: Int32, output: String) {
    let directory = NSTemporaryDirectory() + "\(name)-\(getpid())"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    // main.swift: top-level statements are allowed, as in a program's main file.
    let file = directory + "/main.swift"
    try program.write(toFile: file, atomically: true, encoding: .utf8)
    let repository = READMEBlock.repository.path
    return runCommand([
        "/usr/bin/env", "swiftc", "-typecheck", "-swift-version", "6", "-I", modulesDirectory,
        "-Xcc", "-fmodule-map-file=\(repository)/CLibUV/module.modulemap",
        "-Xcc", "-fmodule-map-file=\(repository)/COpenSSL/module.modulemap",
        "-module-cache-path", directory + "/cache", file,
    ])
}

@Suite("README: every Swift block compiles as written")
struct READMETests {
    @Test func theREADMEHasItsBlocks() {
        #expect(READMEBlock.all.count >= 10)
        #expect(READMEBlock.all.contains { $0.isManifest })
        #expect(READMEBlock.all.contains { $0.continuesTheOneAbove })
        #expect(!(READMEBlock.all.first?.continuesTheOneAbove ?? true))
    }

    @Test(arguments: READMEBlock.all.filter { !$0.isManifest })
    func aBlockTypeChecksWithoutAWarning(_ block: READMEBlock) throws {
        let result = try typeCheck(block.program, name: "readme-\(block.line)")
        #expect(result.status == 0, "\(result.output)")
        #expect(!result.output.contains("warning:"), "\(result.output)")
    }

    @Test func thePackageManifestIsValid() throws {
        let manifest = try #require(READMEBlock.all.first { $0.isManifest })
        let directory = NSTemporaryDirectory() + "readme-manifest-\(getpid())"
        // The dependency's path, as the manifest names it, next to the package.
        let package = directory + "/StubbedTool"
        try FileManager.default.createDirectory(atPath: package + "/Sources/StubbedTool", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createSymbolicLink(atPath: directory + "/BaseHTTPServer",
                                                   withDestinationPath: READMEBlock.repository.path)
        try manifest.code.write(toFile: package + "/Package.swift", atomically: true, encoding: .utf8)
        try "import BaseHTTPServer\n".write(toFile: package + "/Sources/StubbedTool/main.swift",
                                            atomically: true, encoding: .utf8)
        let result = runCommand(["/usr/bin/env", "swift", "package", "--package-path", package, "dump-package"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("\"BaseHTTPServer\""), "\(result.output)")
    }
}
