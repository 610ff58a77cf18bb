// swift-tools-version:6.0
// Benchmarks the request parser against the C http_parser (Debian's libhttp-parser-dev) in
// one run. Run it with `Scripts/bench-parser`, which builds it in release mode.
import PackageDescription

let package = Package(
    name: "HTTPParserBenchmarks",
    dependencies: [.package(name: "BaseHTTPServer", path: "..")],
    targets: [
        // The system's http_parser: a module map over <http_parser.h>, linked with -lhttp_parser.
        .systemLibrary(
            name: "CHTTPParser",
            providers: [.apt(["libhttp-parser-dev"])]
        ),
        // The C side's callbacks, written in C so they cost what a C server's would.
        .target(name: "CParserBench", dependencies: ["CHTTPParser"]),
        .executableTarget(
            name: "ParserBench",
            dependencies: ["CParserBench", "CHTTPParser", .product(name: "HTTPParser", package: "BaseHTTPServer")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
