// swift-tools-version:6.0
// Hummingbird 2's hello world, the async Swift server Scripts/bench compares with (the
// `hummingbird` server, S scenarios). A package of its own, so that the project does not
// depend on Hummingbird and SwiftNIO; Scripts/bench builds it (release) when it is asked for.
import PackageDescription

let package = Package(
    name: "hummingbird-hello",
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(name: "hummingbird-hello", dependencies: [
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
