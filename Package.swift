// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "BaseHTTPServer",
    products: [
        .library(name: "BaseHTTPServer", targets: ["BaseHTTPServer"]),
        .library(name: "UVLoop", targets: ["UVLoop"]),
        .library(name: "HTTPParser", targets: ["HTTPParser"]),
        // An HTTPServer as a swift-service-lifecycle Service, kept apart so that the core
        // library does not depend on it.
        .library(name: "BaseHTTPServerService", targets: ["BaseHTTPServerService"]),
        .executable(name: "http-server", targets: ["http-server"]),
    ],
    dependencies: [
        // Logger, the logging API Swift server libraries share: an embedding program hands
        // the server its own (HTTPServer.logger).
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // ServiceGroup: how Swift server programs start their services and shut them down
        // gracefully on SIGTERM; BaseHTTPServerService makes a server one of them.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // `swift package generate-documentation`, for Scripts/docs (a plugin: nothing of it is
        // linked into the products).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // libuv, found through pkg-config. Only UVLoop imports it.
        .systemLibrary(
            name: "CLibUV",
            path: "CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        .target(name: "UVLoop", dependencies: ["CLibUV"]),
        // OpenSSL, found through pkg-config. Only TLSTransport imports it.
        .systemLibrary(
            name: "COpenSSL",
            path: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // TLS as a Transport over a UVLoop TCP stream, with OpenSSL behind a custom BIO.
        .target(name: "TLSTransport", dependencies: ["UVLoop", "COpenSSL"]),
        // The request parser is pure Swift over bytes, so it can be fuzzed and benchmarked alone.
        .target(name: "HTTPParser"),
        .target(name: "BaseHTTPServer", dependencies: [
            "UVLoop", "HTTPParser", "TLSTransport", .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "BaseHTTPServerService", dependencies: [
            "BaseHTTPServer", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(name: "http-server", dependencies: ["BaseHTTPServer", "UVLoop"]),
        // The handler Scripts/bench measures: "Hello, World!" through BaseHTTPRequestHandler.
        .executableTarget(name: "bench-server", dependencies: ["BaseHTTPServer"]),
        .executableTarget(name: "soak-server", dependencies: ["BaseHTTPServer", "UVLoop"]),
        .testTarget(name: "UVLoopTests", dependencies: ["UVLoop"]),
        .testTarget(name: "HTTPParserTests", dependencies: ["HTTPParser"]),
        .testTarget(name: "BaseHTTPServerTests", dependencies: [
            "BaseHTTPServer", "BaseHTTPServerService", "UVLoop",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Runs the built http-server binary as a child process (the dependency builds it).
        .testTarget(name: "HTTPServerCLITests", dependencies: ["http-server"]),
    ],
    swiftLanguageModes: [.v6]
)
