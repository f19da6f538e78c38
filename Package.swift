// swift-tools-version: 6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "streamhub",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "streamhub-gateway", targets: ["GatewayMain"]),
        .executable(name: "streamhub-identity", targets: ["IdentityMain"]),
        .executable(name: "streamhub-authz", targets: ["AuthzMain"]),
        .executable(name: "streamhub-media", targets: ["MediaMain"]),
        .executable(name: "streamhub", targets: ["StreamHubCLI"]),
        .executable(name: "streamhub-casbin-bench", targets: ["CasbinBench"]),
        .library(name: "Shared", targets: ["Shared"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/vapor/sql-kit", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit", from: "2.17.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.2"),
    ],
    targets: [
        // Wire types only: no I/O, no logic beyond encoding.
        .target(
            name: "Shared",
            path: "Shared",
            swiftSettings: swiftSettings
        ),
        // Server glue every service shares: errors, request context, health, metrics, internal token and
        // internal calls, session tokens, configuration. No database driver: the gateway links only this.
        .target(
            name: "ServiceKit",
            dependencies: [
                "Shared",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
            ],
            path: "Services/ServiceKit",
            swiftSettings: swiftSettings
        ),
        // Storage every service with tables shares: SQLKit over SQLite or PostgreSQL, migrations,
        // readiness of the database, change notification. The gateway does not link it.
        .target(
            name: "ServiceStorage",
            dependencies: [
                "Shared", "ServiceKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Services/ServiceStorage",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "GatewayApp",
            dependencies: [
                "Shared", "ServiceKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            path: "Services/Gateway/App",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "GatewayMain",
            dependencies: ["GatewayApp", "ServiceKit"],
            path: "Services/Gateway/Main",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "IdentityApp",
            dependencies: [
                "Shared", "ServiceKit", "ServiceStorage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SQLKit", package: "sql-kit"),
            ],
            path: "Services/Identity/App",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "IdentityMain",
            dependencies: ["IdentityApp", "ServiceKit"],
            path: "Services/Identity/Main",
            swiftSettings: swiftSettings
        ),
        // The Casbin-compatible engine: no HTTP, no I/O beyond what callers pass in.
        .target(
            name: "CasbinEngine",
            path: "Services/Authz/Engine",
            swiftSettings: swiftSettings
        ),
        // Engine benchmark for Casbin's standard scenarios (run-baseline.sh --extra-cmd).
        .executableTarget(
            name: "CasbinBench",
            dependencies: ["CasbinEngine"],
            path: "benchmarks/CasbinBench",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AuthzApp",
            dependencies: [
                "Shared", "ServiceKit", "ServiceStorage", "CasbinEngine",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "SQLKit", package: "sql-kit"),
            ],
            path: "Services/Authz/App",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "AuthzMain",
            dependencies: [
                "AuthzApp", "ServiceKit", "CasbinEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Services/Authz/Main",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MediaApp",
            dependencies: [
                "Shared", "ServiceKit", "ServiceStorage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Services/Media/App",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "MediaMain",
            dependencies: ["MediaApp", "ServiceKit"],
            path: "Services/Media/Main",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "StreamHubCLI",
            dependencies: [
                "Shared", "ServiceKit", "ServiceStorage", "IdentityApp",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Services/CLI",
            swiftSettings: swiftSettings
        ),
        // Helpers shared by test targets: temporary SQLite files, an isolated Postgres schema per test.
        .target(
            name: "TestSupport",
            dependencies: ["ServiceKit", "ServiceStorage", "Shared", .product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "SharedTests",
            dependencies: ["Shared"],
            path: "Tests/SharedTests"
        ),
        .testTarget(
            name: "ServiceKitTests",
            dependencies: [
                "TestSupport", "ServiceKit", "ServiceStorage", "Shared", .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/ServiceKitTests"
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "TestSupport",
                "GatewayApp", "ServiceKit", "Shared",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/GatewayTests"
        ),
        .testTarget(
            name: "IdentityTests",
            dependencies: [
                "TestSupport",
                "IdentityApp", "ServiceKit", "ServiceStorage", "Shared",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/IdentityTests"
        ),
        .testTarget(
            name: "MediaTests",
            dependencies: [
                "TestSupport",
                "MediaApp", "ServiceKit", "ServiceStorage", "Shared",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/MediaTests"
        ),
        .testTarget(
            name: "AuthzTests",
            dependencies: [
                "TestSupport", "AuthzApp", "CasbinEngine", "ServiceKit", "ServiceStorage", "Shared",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/AuthzTests"
        ),
        .testTarget(
            name: "EngineTests",
            dependencies: ["CasbinEngine"],
            path: "Tests/EngineTests",
            resources: [.copy("Casbin")]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "Shared", "ServiceKit", "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/EndToEndTests"
        ),
    ]
)
