import CasbinEngine
import Foundation
import ServiceKit
import Shared

/// Everything authz reads at start.
///
/// Keys: `HOST`, `PORT` (8082), `STREAMHUB_INTERNAL_TOKEN`, `METRICS_TOKEN`, `STREAMHUB_AUTHZ_ENFORCE`
/// (`off` | `log` | `on`, default `log`), `STREAMHUB_AUTHZ_MODEL` (a Casbin model file replacing the
/// built-in one), `DATABASE_URL` or `STREAMHUB_DATA_DIR` (SQLite file `authz.sqlite`), `LOG_LEVEL`.
public struct AuthzConfiguration: Sendable {
    public var common: CommonConfiguration
    public var enforcement: EnforcementMode
    /// The model decisions use: `config/authz/default_model.conf` unless `STREAMHUB_AUTHZ_MODEL` names another.
    public var model: CasbinModel

    public init(reader: SettingsReader) throws {
        self.common = try CommonConfiguration(reader: reader, defaultPort: DefaultPort.authz, storageName: "authz")
        let mode = reader.string(ConfigKey.authzEnforce, default: "log").lowercased()
        guard let enforcement = EnforcementMode(rawValue: mode) else {
            throw ConfigurationError("\(ConfigKey.authzEnforce) must be off, log or on (got \"\(mode)\")")
        }
        self.enforcement = enforcement
        if let path = reader.string(ConfigKey.authzModel), !path.isEmpty {
            self.model = try Self.loadModel(path: path)
        } else {
            self.model = try CasbinModel(text: DefaultPolicy.model, file: "default_model.conf")
        }
    }

    /// Reads an operator's model file. The service maps each decision onto `r = sub, dom, obj, act`
    /// and its policy API writes `p = sub, dom, obj, act` rules and `g = _, _, _` assignments, so
    /// those three definitions keep their sizes; the matcher, the effect and any further sections
    /// are the operator's. Anything else is a start-up error naming the variable, file and reason.
    static func loadModel(path: String) throws -> CasbinModel {
        let key = ConfigKey.authzModel
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError("\(key): cannot read \(path)")
        }
        let model: CasbinModel
        do {
            model = try CasbinModel(text: text, file: path)
        } catch let error as CasbinError {
            throw ConfigurationError("\(key): \(error)")
        }
        for (section, name, size) in [
            ("request_definition", "r", model.requestDefinitions["r"]?.count), ("policy_definition", "p", model.policyDefinitions["p"]?.count),
        ] where size != 4 {
            throw ConfigurationError("\(key): \(path): [\(section)] \(name) must have 4 fields (sub, dom, obj, act), has \(size ?? 0)")
        }
        guard model.roleDefinitions["g"] == 3 else {
            throw ConfigurationError("\(key): \(path): [role_definition] g must be g = _, _, _ (role assignments per tenant)")
        }
        do {
            try Enforcer(model: model).checkMatcher()
        } catch let error as CasbinError {
            throw ConfigurationError("\(key): \(path): \(error)")
        }
        return model
    }
}
