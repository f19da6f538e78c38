/// A Casbin `resource:action` permission such as `app:read` or `stream:write`.
public struct Permission: Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var resource: String
    public var action: String

    public init(resource: String, action: String) {
        self.resource = resource
        self.action = action
    }

    /// Parses `resource:action`; both parts must be non-empty.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        self.init(resource: String(parts[0]), action: String(parts[1]))
    }

    public init(stringLiteral value: String) {
        guard let parsed = Permission(parsing: value) else {
            preconditionFailure("invalid permission literal \(value)")
        }
        self = parsed
    }

    public var description: String { "\(resource):\(action)" }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = Permission(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "expected resource:action"))
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }
}
