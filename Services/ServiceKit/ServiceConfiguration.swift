import Configuration
import Foundation
import Logging
import Shared

/// A configuration problem found at start-up. The message names the variable and what is wrong.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "configuration error: \(self.message)" }
}

/// Reads environment-style keys (`STREAMHUB_INTERNAL_TOKEN`) through swift-configuration.
///
/// `Main` builds one from the process environment; tests build one from a dictionary. Nothing else
/// reads the environment.
public struct SettingsReader: Sendable {
    let reader: ConfigReader

    public init(reader: ConfigReader) {
        self.reader = reader
    }

    /// The process environment.
    public static func environment() -> SettingsReader {
        SettingsReader(reader: ConfigReader(provider: EnvironmentVariablesProvider()))
    }

    /// A fixed set of values (tests, the CLI).
    public static func values(_ values: [String: String]) -> SettingsReader {
        SettingsReader(reader: ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: values)))
    }

    static func key(_ name: String) -> Configuration.ConfigKey {
        Configuration.ConfigKey(name.lowercased().split(separator: "_").map(String.init))
    }

    /// A non-empty string value, or nil.
    public func string(_ name: String, isSecret: Bool = false) -> String? {
        guard let value = self.reader.string(forKey: Self.key(name), isSecret: isSecret)?.trimmingCharacters(in: .whitespaces),
            !value.isEmpty
        else { return nil }
        return value
    }

    public func string(_ name: String, default defaultValue: String) -> String {
        self.string(name) ?? defaultValue
    }

    /// A required secret of at least `minimumLength` bytes.
    public func requiredSecret(_ name: String, minimumLength: Int = 32) throws -> String {
        guard let value = self.string(name, isSecret: true) else {
            throw ConfigurationError(
                "\(name) is required and not set (use at least \(minimumLength) random characters; `streamhub up` generates one)")
        }
        guard value.utf8.count >= minimumLength else {
            throw ConfigurationError("\(name) must be at least \(minimumLength) bytes long (got \(value.utf8.count))")
        }
        return value
    }

    /// An optional secret: unset is nil; set, it must be at least `minimumLength` bytes.
    public func optionalSecret(_ name: String, minimumLength: Int = 32) throws -> String? {
        guard let value = self.string(name, isSecret: true) else { return nil }
        guard value.utf8.count >= minimumLength else {
            throw ConfigurationError("\(name) must be at least \(minimumLength) bytes long when set (got \(value.utf8.count))")
        }
        return value
    }

    /// `STREAMHUB_AUTHZ_ENFORCE`, read the one way every service reads it (default `log`).
    public func enforcementMode() throws -> EnforcementMode {
        let text = self.string(Shared.ConfigKey.authzEnforce, default: "log")
        guard let mode = EnforcementMode(rawValue: text.lowercased()) else {
            throw ConfigurationError("\(Shared.ConfigKey.authzEnforce) must be off, log or on (got \"\(text)\")")
        }
        return mode
    }

    /// An integer in `range`, or `defaultValue` when unset.
    public func int(_ name: String, default defaultValue: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = self.string(name) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError("\(name) must be an integer in \(range.lowerBound)...\(range.upperBound) (got \"\(text)\")")
        }
        return value
    }

    /// An absolute `http://` URL without a trailing slash.
    public func url(_ name: String, default defaultValue: String? = nil) throws -> String {
        guard let text = self.string(name) ?? defaultValue else {
            throw ConfigurationError("\(name) is required and not set")
        }
        guard let components = URLComponents(string: text), components.scheme == "http" || components.scheme == "https",
            components.host?.isEmpty == false
        else {
            throw ConfigurationError("\(name) must be an http(s) URL (got \"\(text)\")")
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    /// Where another service is: one base URL, a comma-separated list of replicas, or one URL
    /// whose host resolves to several addresses (``UpstreamTargets``).
    public func upstream(_ name: String, default defaultValue: String) throws -> UpstreamTargets {
        try UpstreamTargets(key: name, value: self.string(name) ?? defaultValue)
    }
}

/// What every service reads: where to listen, the internal token, metrics gating, logging.
/// (Storage is read by the services that have tables, through `ServiceStorage`.)
public struct CommonConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var internalToken: String
    public var metricsToken: String?
    public var logLevel: Logger.Level

    public init(host: String, port: Int, internalToken: String, metricsToken: String?, logLevel: Logger.Level = .info) {
        self.host = host
        self.port = port
        self.internalToken = internalToken
        self.metricsToken = metricsToken
        self.logLevel = logLevel
    }

    /// Reads `HOST`, `PORT`, `STREAMHUB_INTERNAL_TOKEN`, `METRICS_TOKEN` and `LOG_LEVEL`.
    /// - Parameter defaultPort: the service's own default port.
    public init(reader: SettingsReader, defaultPort: Int) throws {
        self.host = reader.string(Shared.ConfigKey.host, default: "127.0.0.1")
        self.port = try reader.int(Shared.ConfigKey.port, default: defaultPort, range: 0...65535)
        self.internalToken = try reader.requiredSecret(Shared.ConfigKey.internalToken)
        self.metricsToken = try reader.optionalSecret(Shared.ConfigKey.metricsToken)
        let levelText = reader.string(Shared.ConfigKey.logLevel, default: "info")
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw ConfigurationError(
                "\(Shared.ConfigKey.logLevel) must be one of trace, debug, info, notice, warning, error, critical (got \"\(levelText)\")")
        }
        self.logLevel = level
    }
}
