/// The OpenAPI 3.1 document of the public API, generated from ``RouteCatalog`` and the wire
/// types' schemas (``WireTypes``): a route is in the catalog, the router and this document, or in
/// none of them.
public enum OpenAPIDocument {
    /// The document as a JSON value; `serverURL` is the public base URL operators reach the
    /// gateway at (`nil`: relative to wherever the document was loaded from).
    public static func make(serverURL: String? = nil) -> JSONValue {
        var paths: [String: [String: JSONValue]] = [:]
        for route in RouteCatalog.routes {
            paths[Self.openAPIPath(route.path), default: [:]][route.method.lowercased()] = Self.operation(route)
        }
        let closed = Self.requestOnlyComponents
        let schemas = Dictionary(
            uniqueKeysWithValues: WireTypes.components.map { name, schema in
                (name, closed.contains(name) ? Self.closed(schema.json) : schema.json)
            })
        var document: [String: JSONValue] = [
            "openapi": "3.1.0",
            "info": .object([
                "title": "StreamHub API",
                "version": .string(StreamHubVersion.current),
                "description": .string(Self.description),
            ]),
            "paths": .object(paths.mapValues { .object($0) }),
            "components": .object([
                "schemas": .object(schemas),
                "securitySchemes": .object([
                    "bearer": .object([
                        "type": "http", "scheme": "bearer",
                        "description": "An sk_ API token, or a dashboard JWT from /auth/login, /auth/signup or /auth/magic/verify",
                    ]),
                    "clusterToken": .object([
                        "type": "apiKey", "in": "header", "name": .string(StreamHubHeader.clusterToken),
                        "description": "The cluster token (STREAMHUB_CLUSTER_TOKEN) a LiveKit node presents",
                    ]),
                    "livekitSignature": .object([
                        "type": "apiKey", "in": "header", "name": "Authorization",
                        "description": "A JWT signed with the LiveKit API secret whose sha256 claim is the SHA-256 of the raw body",
                    ]),
                ]),
            ]),
            "tags": .array(
                ["gateway", "identity", "media", "authz"].map { .object(["name": .string($0), "description": .string(Self.tagDescription($0))]) }),
        ]
        if let serverURL { document["servers"] = .array([.object(["url": .string(serverURL)])]) }
        return .object(document)
    }

    static let description = """
        The public API of the StreamHub control plane. Every success of a JSON route is wrapped as \
        `{"data": …, "error": null}` unless the route says otherwise; every error is the NestJS body \
        `{statusCode, message, error}`. Credentials: an `sk_` API token or a dashboard JWT as a bearer \
        token; public routes never look at one. `x-permission` names the Casbin `resource:action` a \
        route checks. Every POST and PATCH takes an `Idempotency-Key` header (1 to 255 printable ASCII \
        characters, scoped to the caller, kept 24 h): a retry with the same key and body gets the first \
        answer with `Idempotency-Replayed: true`; the same key with another body is a 422; a retry \
        while the first still runs is a 409.
        """

    static func tagDescription(_ tag: String) -> String {
        switch tag {
        case "gateway": "Answered by the gateway itself"
        case "identity": "Users, tenants, sessions, sk_ tokens"
        case "media": "Apps, streams, play tokens, webhooks, cluster nodes"
        default: "Policy and roles (Casbin-compatible)"
        }
    }

    /// `/api/v1/apps/:app` → `/api/v1/apps/{app}`.
    public static func openAPIPath(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            segment.first == ":" ? "{\(segment.dropFirst())}" : String(segment)
        }.joined(separator: "/")
    }

    /// The operation id: the method and the path's literal segments, e.g. `getApiV1AppsByAppStreams`.
    public static func operationID(_ route: RouteDefinition) -> String {
        var id = route.method.lowercased()
        for segment in route.segments {
            if segment.first == ":" {
                id += "By" + Self.capitalized(segment.dropFirst())
            } else {
                for word in segment.split(whereSeparator: { !$0.isLetter && !$0.isNumber }) { id += Self.capitalized(word) }
            }
        }
        return id
    }

    static func capitalized(_ word: Substring) -> String { word.prefix(1).uppercased() + word.dropFirst() }

    static func content(_ body: RouteBody, enveloped: Bool) -> JSONValue {
        let contentType: String
        let payload: Schema
        switch body {
        case .json(let name):
            contentType = "application/json"
            payload = .ref(name)
        case .jsonArray(let name):
            contentType = "application/json"
            payload = .array(.ref(name))
        case .other(let type, let schema):
            contentType = type
            payload = schema
        }
        var schema = payload.json
        if enveloped {
            schema = .object([
                "type": "object",
                "required": .array(["data", "error"]),
                "properties": .object(["data": payload.json, "error": .object(["type": "null"])]),
            ])
        }
        return .object([contentType: .object(["schema": schema])])
    }

    /// The error statuses a route can give, with what they mean for it.
    public static func errorStatuses(_ route: RouteDefinition) -> [Int: String] {
        var statuses: [Int: String] = [:]
        let local = route.service == .gateway && route.aggregates.isEmpty
        if !local || route.path.contains("/:") { statuses[404] = "No such resource (or another tenant's)" }
        if route.request != nil || !route.query.isEmpty || route.path.contains("/:") {
            statuses[400] = "Malformed input; the message names the field"
        }
        if route.request != nil { statuses[413] = "The body is over the size limit" }
        switch route.auth {
        case .public:
            if route.service == .identity { statuses[429] = "Over a limiter; retryAfterSeconds says when to try again" }
            if route.service == .identity && route.path != "/api/v1/auth/magic-link" && route.path != "/api/v1/auth/reset-request" {
                statuses[401] = "Wrong credentials, link or code"
            }
            if route.service == .media { statuses[403] = "Public playback is off for the app" }
        case .authenticated:
            statuses[401] = "No credential, or an invalid, expired or revoked one"
            statuses[403] = "Not allowed by the policy, bound to another app, or over a tenant quota"
        case .signedIn:
            statuses[401] = "No credential, or an invalid, expired or revoked one"
        case .clusterToken:
            statuses[401] = "Missing or wrong X-Cluster-Token"
        case .livekitSignature:
            statuses[401] = "Missing, bad or stale signature"
        }
        if route.method != "GET" && route.auth != .public { statuses[409] = "Conflicts with the current state" }
        if route.method == "POST" || route.method == "PATCH" {
            statuses[409] = statuses[409] ?? "A request with this Idempotency-Key is still running"
            statuses[422] = "This Idempotency-Key was used with another request"
        }
        if !local {
            statuses[503] = "A service behind the gateway is unavailable"
            statuses[504] = "A service behind the gateway did not answer in time"
        }
        return statuses
    }

    static func operation(_ route: RouteDefinition) -> JSONValue {
        var parameters: [JSONValue] = route.segments.filter { $0.first == ":" }.map { segment in
            .object([
                "name": .string(String(segment.dropFirst())), "in": "path", "required": true,
                "schema": .object(["type": "string", "minLength": 1, "maxLength": 256]),
            ])
        }
        for query in route.query {
            var parameter: [String: JSONValue] = [
                "name": .string(query.name), "in": "query", "required": .bool(query.required), "schema": query.schema.json,
            ]
            if let description = query.description { parameter["description"] = .string(description) }
            parameters.append(.object(parameter))
        }
        let errorBody = JSONValue.object(["application/json": .object(["schema": .object(["$ref": "#/components/schemas/ErrorBody"])])])
        var responses: [String: JSONValue] = [
            String(route.status): .object([
                "description": .string(route.enveloped ? "Success, in the {data, error} envelope" : "Success"),
                "content": Self.content(route.response, enveloped: route.enveloped),
            ]),
            "default": .object(["description": "An error in the NestJS body", "content": errorBody]),
        ]
        for (status, meaning) in Self.errorStatuses(route) {
            responses[String(status)] = .object(["description": .string(meaning), "content": errorBody])
        }
        var operation: [String: JSONValue] = [
            "operationId": .string(Self.operationID(route)),
            "summary": .string(route.summary),
            "tags": .array([.string(route.service.rawValue)]),
            "responses": .object(responses),
        ]
        if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
        if let body = route.request {
            operation["requestBody"] = .object(["required": true, "content": Self.content(body, enveloped: false)])
        }
        switch route.auth {
        case .public: operation["security"] = .array([])
        case .authenticated, .signedIn: operation["security"] = .array([.object(["bearer": .array([])])])
        case .clusterToken: operation["security"] = .array([.object(["clusterToken": .array([])])])
        case .livekitSignature: operation["security"] = .array([.object(["livekitSignature": .array([])])])
        }
        if let permission = route.permission { operation["x-permission"] = .string(permission.description) }
        operation["x-auth"] = .string(route.auth.rawValue)
        if !route.aggregates.isEmpty { operation["x-aggregates"] = .array(route.aggregates.map { .string($0.rawValue) }) }
        return .object(operation)
    }

    /// The components only request bodies use (directly or inside another): their objects say
    /// `additionalProperties: false`, as the services refuse any member they do not know (400
    /// `property X should not exist`). Components answers use too stay open.
    public static var requestOnlyComponents: Set<String> {
        func closure(_ names: Set<String>) -> Set<String> {
            var seen = names
            var pending = Array(names)
            while let name = pending.popLast() {
                for next in WireTypes.components[name]?.references ?? [] where seen.insert(next).inserted { pending.append(next) }
            }
            return seen
        }
        let requests = closure(RouteCatalog.routes.reduce(into: Set<String>()) { $0.formUnion($1.request?.references ?? []) })
        let answers = closure(RouteCatalog.routes.reduce(into: Set<String>(["ErrorBody"])) { $0.formUnion($1.response.references) })
        return requests.subtracting(answers)
    }

    static func closed(_ schema: JSONValue) -> JSONValue {
        guard case .object(var members) = schema, members["type"] == "object" else { return schema }
        members["additionalProperties"] = .bool(false)
        return .object(members)
    }

    /// Every component the document refers to; a test checks they all exist.
    public static var referencedComponents: Set<String> {
        RouteCatalog.routes.reduce(into: Set(WireTypes.components.values.flatMap(\.references))) { names, route in
            names.formUnion(route.response.references)
            if let request = route.request { names.formUnion(request.references) }
        }
    }
}
