/// A JSON value built in code, encoded with sorted keys so documents are byte-for-byte repeatable.
public indirect enum JSONValue: Sendable, Equatable, Encodable, ExpressibleByStringLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByIntegerLiteral
{
    case string(String)
    case int(Int)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { self.stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .string(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .int(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .bool(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .array(let values):
            var container = encoder.unkeyedContainer()
            for value in values { try container.encode(value) }
        case .object(let members):
            var container = encoder.container(keyedBy: Key.self)
            for (key, value) in members { try container.encode(value, forKey: Key(key)) }
        }
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members[key]
    }
}

/// A JSON Schema (the 2020-12 dialect OpenAPI 3.1 uses) for a wire type, written next to the type
/// so the document and the code change together.
public indirect enum Schema: Sendable, Equatable {
    case string(format: String? = nil, pattern: String? = nil, enumeration: [String]? = nil, maxLength: Int? = nil)
    case integer(minimum: Int? = nil, maximum: Int? = nil)
    case boolean
    case array(Schema)
    /// An object: its properties in order, which of them are required, and the schema of any
    /// further member (`nil`: none allowed is not claimed, further members are left open).
    case object([Property], additionalProperties: Schema? = nil)
    /// A member that may be absent or `null`.
    case nullable(Schema)
    /// A reference to a named component (`#/components/schemas/Name`).
    case ref(String)
    /// Any JSON value.
    case any

    public struct Property: Sendable, Equatable {
        public var name: String
        public var schema: Schema
        public var isRequired: Bool
        public var description: String?

        public init(_ name: String, _ schema: Schema, required: Bool = true, description: String? = nil) {
            self.name = name
            self.schema = schema
            self.isRequired = required
            self.description = description
        }

        /// A required property.
        public static func required(_ name: String, _ schema: Schema, _ description: String? = nil) -> Property {
            Property(name, schema, required: true, description: description)
        }

        /// A property that may be absent or `null`.
        public static func optional(_ name: String, _ schema: Schema, _ description: String? = nil) -> Property {
            Property(name, .nullable(schema), required: false, description: description)
        }
    }

    /// A plain string.
    public static let text = Schema.string()
    /// An RFC 3339 time as the services write it.
    public static let timestamp = Schema.string(format: "date-time")
    /// An identifier of the house grammar (docs/architecture.md).
    public static let identifier = Schema.string(pattern: "^[A-Za-z0-9._:@-]{1,128}$")

    /// A reference to a wire type's component.
    public static func ref<T: WireType>(_ type: T.Type) -> Schema { .ref(T.schemaName) }

    public var json: JSONValue {
        switch self {
        case .string(let format, let pattern, let enumeration, let maxLength):
            var members: [String: JSONValue] = ["type": "string"]
            if let format { members["format"] = .string(format) }
            if let pattern { members["pattern"] = .string(pattern) }
            if let enumeration { members["enum"] = .array(enumeration.map(JSONValue.string)) }
            if let maxLength { members["maxLength"] = .int(maxLength) }
            return .object(members)
        case .integer(let minimum, let maximum):
            var members: [String: JSONValue] = ["type": "integer"]
            if let minimum { members["minimum"] = .int(minimum) }
            if let maximum { members["maximum"] = .int(maximum) }
            return .object(members)
        case .boolean:
            return .object(["type": "boolean"])
        case .array(let items):
            return .object(["type": "array", "items": items.json])
        case .object(let properties, let additional):
            var members: [String: JSONValue] = ["type": "object"]
            var propertySchemas: [String: JSONValue] = [:]
            for property in properties {
                var schema = property.schema.json
                if let description = property.description, case .object(var fields) = schema {
                    fields["description"] = .string(description)
                    schema = .object(fields)
                }
                propertySchemas[property.name] = schema
            }
            members["properties"] = .object(propertySchemas)
            let required = properties.filter(\.isRequired).map(\.name)
            if !required.isEmpty { members["required"] = .array(required.map(JSONValue.string)) }
            if let additional { members["additionalProperties"] = additional.json }
            return .object(members)
        case .nullable(let inner):
            return .object(["anyOf": .array([inner.json, .object(["type": "null"])])])
        case .ref(let name):
            return .object(["$ref": .string("#/components/schemas/\(name)")])
        case .any:
            return .object([:])
        }
    }

    /// Names of the components this schema refers to, directly or through its members.
    public var references: Set<String> {
        switch self {
        case .ref(let name): [name]
        case .array(let items): items.references
        case .nullable(let inner): inner.references
        case .object(let properties, let additional):
            properties.reduce(into: additional?.references ?? []) { $0.formUnion($1.schema.references) }
        default: []
        }
    }
}

/// A type that crosses the wire and documents itself for the OpenAPI document.
public protocol WireType: Codable, Sendable {
    /// The component name in the OpenAPI document; the type's name unless it is nested.
    static var schemaName: String { get }
    static var schema: Schema { get }
}

extension WireType {
    public static var schemaName: String { String(describing: Self.self) }
}
