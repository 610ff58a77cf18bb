// swift-tools-version:6.0
// The libFuzzer target for the request parser. Run it with `Scripts/fuzz-parser`, which builds
// it with `-sanitize=fuzzer,address`; libFuzzer supplies `main`, hence `-parse-as-library`.
import PackageDescription

let package = Package(
    name: "HTTPParserFuzz",
    dependencies: [.package(name: "BaseHTTPServer", path: "..")],
    targets: [
        .executableTarget(
            name: "FuzzHTTPParser",
            dependencies: [.product(name: "HTTPParser", package: "BaseHTTPServer")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        )
    ],
    swiftLanguageModes: [.v6]
)
