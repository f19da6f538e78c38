import CasbinEngine
import Foundation
import ServiceKit
import ServiceStorage
import Shared

/// Everything authz reads at start.
///
/// Keys: `HOST`, `PORT` (8082), `STREAMHUB_INTERNAL_TOKEN`, `METRICS_TOKEN`, `STREAMHUB_AUTHZ_ENFORCE`
/// (`off` | `log` | `on`, default `log`), `STREAMHUB_AUTHZ_MODEL` (a Casbin model file replacing the
/// built-in one), `AUTHZ_POLICY_STALENESS_S` (5), `DATABASE_URL` or `STREAMHUB_DATA_DIR` (SQLite file
/// `authz.sqlite`), `DATABASE_QUERY_TIMEOUT_S`, `LOG_LEVEL`, `IDENTITY_URL` (whether a tenant named by a
/// global caller's write exists).
public struct AuthzConfiguration: Sendable {
    public var common: CommonConfiguration
    public var storage: StorageLocation
    public var enforcement: EnforcementMode
    /// The model decisions use: `config/authz/default_model.conf` unless `STREAMHUB_AUTHZ_MODEL` names another.
    public var model: CasbinModel
    /// The model file named by `STREAMHUB_AUTHZ_MODEL`; nil for the built-in one.
    public var modelFile: String?
    /// How long the replica may go without confirming its policy version against the store before
    /// readiness fails (`AUTHZ_POLICY_STALENESS_S`, default 5, 1…3600).
    public var policyStalenessBound: Duration
    /// Where identity is reached (`IDENTITY_URL`): a global caller's policy write names a tenant
    /// that must exist there.
    public var identity: UpstreamTargets
    public var identityURL: String { self.identity.configured }

    public init(reader: SettingsReader) throws {
        self.common = try CommonConfiguration(reader: reader, defaultPort: DefaultPort.authz)
        self.storage = try StorageLocation(reader: reader, name: "authz")
        self.enforcement = try reader.enforcementMode()
        self.policyStalenessBound = .seconds(try reader.int(ConfigKey.authzPolicyStaleness, default: 5, range: 1...3600))
        self.identity = try reader.upstream(ConfigKey.identityURL, default: "http://127.0.0.1:\(DefaultPort.identity)")
        if let path = reader.string(ConfigKey.authzModel), !path.isEmpty {
            self.model = try Self.loadModel(path: path)
            self.modelFile = path
        } else {
            self.model = try CasbinModel(text: DefaultPolicy.model, file: "default_model.conf")
        }
    }

    /// Reads an operator's model file. The service maps each decision onto `r = sub, dom, obj, act`
    /// and its policy API writes `p = sub, dom, obj, act` rules and `g = _, _, _` assignments, so
    /// those three definitions keep their sizes; the matcher, the effect and any further sections
    /// are the operator's. Anything else is a start-up error naming the variable, file and reason.
    public static func loadModel(path: String) throws -> CasbinModel {
        let key = ConfigKey.authzModel
        let model = try Self.parseModel(path: path)
        for (section, name, size) in [
            ("request_definition", "r", model.requestDefinitions["r"]?.count), ("policy_definition", "p", model.policyDefinitions["p"]?.count),
        ] where size != 4 {
            throw ConfigurationError("\(key): \(path): [\(section)] \(name) must have 4 fields (sub, dom, obj, act), has \(size ?? 0)")
        }
        guard model.roleDefinitions["g"] == 3 else {
            throw ConfigurationError("\(key): \(path): [role_definition] g must be g = _, _, _ (role assignments per tenant)")
        }
        return model
    }

    /// Reads and checks any Casbin model the way the service does before it decides with one: the
    /// file readable, the syntax valid, the matcher evaluable. (`streamhub-authz eval` uses this, so
    /// a model it accepts never fails per request; the four-field shape is the service's own rule.)
    public static func parseModel(path: String) throws -> CasbinModel {
        let key = ConfigKey.authzModel
        let text: String
        do {
            text = try TextFile.read(path)
        } catch let error as TextFile.ReadError {
            throw ConfigurationError("\(key): \(error)")
        }
        let model: CasbinModel
        do {
            model = try CasbinModel(text: text, file: path)
        } catch let error as CasbinError {
            throw ConfigurationError("\(key): \(error)")
        }
        do {
            try Enforcer(model: model).checkMatcher()
        } catch let error as CasbinError {
            throw ConfigurationError("\(key): \(path): \(error)")
        }
        return model
    }
}
