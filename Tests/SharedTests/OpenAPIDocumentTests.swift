import Foundation
import Testing

@testable import Shared

@Suite("OpenAPI document")
struct OpenAPIDocumentTests {
    static func encoded<T: Encodable>(_ value: T) throws -> Any {
        try JSONSerialization.jsonObject(with: JSONEncoder().encode(value), options: [.fragmentsAllowed])
    }

    /// Checks `value` (from JSONSerialization) against `schema`; returns what is wrong, if anything.
    static func problems(_ value: Any, _ schema: Schema, at path: String = "$") -> [String] {
        switch schema {
        case .any:
            return []
        case .ref(let name):
            guard let target = WireTypes.components[name] else { return ["\(path): unknown component \(name)"] }
            return Self.problems(value, target, at: path)
        case .nullable(let inner):
            return value is NSNull ? [] : Self.problems(value, inner, at: path)
        case .string(_, _, let enumeration, let maxLength):
            guard let text = value as? String else { return ["\(path): not a string"] }
            if let enumeration, !enumeration.contains(text) { return ["\(path): \(text) not in \(enumeration)"] }
            if let maxLength, text.count > maxLength { return ["\(path): longer than \(maxLength)"] }
            return []
        case .integer(let minimum, let maximum):
            guard type(of: value) != Bool.self, let int = value as? Int else {
                return ["\(path): not an integer"]
            }
            if let minimum, int < minimum { return ["\(path): below \(minimum)"] }
            if let maximum, int > maximum { return ["\(path): above \(maximum)"] }
            return []
        case .boolean:
            return value is Bool ? [] : ["\(path): not a boolean"]
        case .array(let items):
            guard let array = value as? [Any] else { return ["\(path): not an array"] }
            return array.enumerated().flatMap { Self.problems($1, items, at: "\(path)[\($0)]") }
        case .object(let properties, _):
            guard let object = value as? [String: Any] else { return ["\(path): not an object"] }
            var found: [String] = []
            for property in properties {
                if let member = object[property.name] {
                    found += Self.problems(member, property.schema, at: "\(path).\(property.name)")
                } else if property.isRequired {
                    found.append("\(path): missing \(property.name)")
                }
            }
            // The schemas name every member the encoder writes.
            for key in object.keys where !properties.contains(where: { $0.name == key }) {
                found.append("\(path): undocumented member \(key)")
            }
            return found
        }
    }

    @Test("every route of the catalog is one operation, with a unique operation id and its permission")
    func coversCatalog() throws {
        let document = OpenAPIDocument.make()
        guard case .object(let paths)? = document["paths"] else { throw HarnessFailure("no paths") }
        var operations = 0
        var ids: Set<String> = []
        for route in RouteCatalog.routes {
            let operation = try #require(paths[OpenAPIDocument.openAPIPath(route.path)]?[route.method.lowercased()])
            operations += 1
            guard case .string(let id)? = operation["operationId"] else { throw HarnessFailure("no id for \(route.path)") }
            ids.insert(id)
            #expect(operation["x-permission"] == route.permission.map { .string($0.description) })
            guard case .object(let responses)? = operation["responses"] else { throw HarnessFailure("no responses") }
            #expect(responses[String(route.status)] != nil && responses["default"] != nil)
            if route.auth == .authenticated { #expect(responses["401"] != nil && responses["403"] != nil) }
            let scheme: String? =
                switch route.auth {
                case .public: nil
                case .authenticated, .signedIn: "bearer"
                case .clusterToken: "clusterToken"
                case .livekitSignature: "livekitSignature"
                }
            #expect(operation["security"] == .array(scheme.map { [.object([$0: .array([])])] } ?? []), "\(route.path)")
        }
        let documented = paths.values.reduce(0) { total, item in
            guard case .object(let methods) = item else { return total }
            return total + methods.count
        }
        #expect(documented == RouteCatalog.routes.count && operations == documented && ids.count == operations)
        #expect(OpenAPIDocument.openAPIPath("/api/v1/apps/:app/streams/:id") == "/api/v1/apps/{app}/streams/{id}")
        #expect(OpenAPIDocument.operationID(RouteCatalog.routes.first { $0.path == "/api/v1/apps/:app/play-token/:room" }!) == "getApiV1AppsByAppPlayTokenByRoom")
    }

    @Test("every component a route or schema names exists, and every wire type name is unique")
    func componentsAreClosed() {
        let names = WireTypes.all.map { $0.schemaName }
        #expect(Set(names).count == names.count)
        #expect(OpenAPIDocument.referencedComponents.subtracting(WireTypes.components.keys).isEmpty)
    }

    @Test("request bodies say additionalProperties: false (unknown members are a 400); answers' schemas stay open")
    func requestBodiesAreClosed() throws {
        let document = OpenAPIDocument.make()
        guard case .object(let root) = document, case .object(let components) = root["components"],
            case .object(let schemas) = components["schemas"]
        else { Issue.record("no components"); return }
        let closed = OpenAPIDocument.requestOnlyComponents
        for name in ["SignupRequest", "LoginRequest", "AddMemberRequest", "CreateAppRequest", "UpdateAppRequest"] where WireTypes.components[name] != nil {
            #expect(closed.contains(name), "\(name)")
            guard case .object(let schema) = schemas[name] else { Issue.record("\(name) missing"); continue }
            #expect(schema["additionalProperties"] == .bool(false), "\(name)")
        }
        for name in ["SessionResponse", "ErrorBody", "AppSummary"] where WireTypes.components[name] != nil {
            guard case .object(let schema) = schemas[name] else { continue }
            #expect(schema["additionalProperties"] == nil, "\(name)")
        }
        #expect(closed.count >= 10)
    }

    @Test("a summary that lists a body's fields ({a, b?}) lists exactly the fields the body takes, so the two cannot drift")
    func summariesNameTheBodyFields() throws {
        var checked = 0
        for route in RouteCatalog.routes {
            guard case .json(let name)? = route.request, case .object(let properties, _)? = WireTypes.components[name],
                let open = route.summary.firstIndex(of: "{"), let close = route.summary[open...].firstIndex(of: "}")
            else { continue }
            // The first `{…}` (nested braces kept whole): its top-level names, `?` and `: {…}` dropped.
            _ = close
            var depth = 0
            var names: [String] = []
            var current = ""
            for character in route.summary[route.summary.index(after: open)...] {
                if character == "{" { depth += 1 }
                if character == "}" {
                    if depth == 0 { break }
                    depth -= 1
                    continue
                }
                guard depth == 0 else { continue }
                if character == "," {
                    names.append(current)
                    current = ""
                } else {
                    current.append(character)
                }
            }
            names.append(current)
            let listed = Set(names.map { $0.split(separator: ":")[0].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "?")) })
            #expect(listed == Set(properties.map(\.name)), "\(route.method) \(route.path): the summary lists \(listed.sorted()), the body takes \(properties.map(\.name).sorted())")
            checked += 1
        }
        #expect(checked >= 5)
    }

    @Test("the envelope wraps enveloped payloads; bare routes are bare")
    func envelope() throws {
        let document = OpenAPIDocument.make()
        let apps = try #require(document["paths"]?["/api/v1/apps"]?["get"]?["responses"]?["200"]?["content"]?["application/json"]?["schema"])
        #expect(apps["required"] == .array(["data", "error"]))
        #expect(apps["properties"]?["data"]?["items"] == .object(["$ref": "#/components/schemas/AppSummary"]))
        let health = try #require(document["paths"]?["/api/v1/health"]?["get"]?["responses"]?["200"]?["content"]?["application/json"]?["schema"])
        #expect(health == .object(["$ref": "#/components/schemas/HealthStatus"]))
    }

    @Test("what the encoder writes matches the schemas (optional members absent)")
    func samplesMatch() throws {
        let user = UserSummary(id: "u1", email: "a@example.com", name: nil, superadmin: false, disabled: false, createdAt: "2026-11-27T19:00:00.000Z")
        let quotas = TenantQuotas(maxApps: 5, maxConcurrentStreams: 3, maxMembers: 10, maxTokens: 20)
        let tenant = TenantSummary(id: "t1", name: "T", ownerId: "u1", quotas: quotas, createdAt: "2026-11-27T19:00:00.000Z")
        let grant = LiveKitGrant(token: "jwt", url: "ws://x", room: "r", identity: "viewer-1", expiresAt: "2026-11-27T20:00:00.000Z")
        let stream = StreamSummary(id: "s1", appId: "a1", room: "r", state: "live", viewers: 2, createdAt: "2026-11-27T19:00:00.000Z", endedAt: nil)
        let node = ClusterNode(
            id: "n1", name: "n", url: "ws://n", region: nil, capacity: nil, rooms: 0, participants: 0, alive: true,
            joinedAt: "2026-11-27T19:00:00.000Z", lastSeenAt: "2026-11-27T19:00:00.000Z")
        let samples: [(Any, Schema)] = [
            (try Self.encoded(SessionResponse(token: "jwt", expiresAt: "2026-11-27T20:00:00.000Z", user: user, tenantId: nil)), SessionResponse.schema),
            (try Self.encoded(MeResponse(user: user, tenantId: "t1", tenants: [TenantMembership(tenant: tenant, roles: ["owner"])])), MeResponse.schema),
            (try Self.encoded(ErrorBody(statusCode: 429, message: "wait", retryAfterSeconds: 3)), ErrorBody.schema),
            (try Self.encoded(OpenedStream(stream: stream, publisher: grant)), OpenedStream.schema),
            (try Self.encoded(NodeLease(node: node, heartbeatIntervalSeconds: 5, expiresAt: "2026-11-27T19:00:15.000Z")), NodeLease.schema),
            (try Self.encoded(OEmbed(type: "video", version: "1.0", title: "r", providerName: "StreamHub", providerURL: "x", html: "<iframe>", width: 640, height: 360)), OEmbed.schema),
            (try Self.encoded(TenantUsage(tenantId: "t1", quotas: quotas, usage: .init(apps: 1, liveStreams: 0, viewers: 0, members: 1, tokens: 0))), TenantUsage.schema),
            (try Self.encoded(PolicyCheckResult(tenant: "t1", allowed: true, explain: [], roles: ["role:owner"])), PolicyCheckResult.schema),
            (try Self.encoded(MemberSummary(userId: "u2", email: "b@example.com", name: nil, roles: ["viewer"], joinedAt: "2026-11-27T19:00:00.000Z")), MemberSummary.schema),
            (try Self.encoded(HealthStatus(ts: "2026-11-27T19:00:00.000Z", uptimeSeconds: 3)), HealthStatus.schema),
        ]
        for (value, schema) in samples {
            #expect(Self.problems(value, schema).isEmpty, "\(Self.problems(value, schema))")
        }
        // The checker itself catches a wrong member.
        #expect(!Self.problems(["id": 1], AppFeatures.schema).isEmpty)
    }
}

struct HarnessFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
