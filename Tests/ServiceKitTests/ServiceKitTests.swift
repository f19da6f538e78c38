import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SQLKit
import ServiceKit
import ServiceStorage
import Shared
import TestSupport
import Testing

@Suite("Metrics gating")
struct MetricsAccessTests {
    @Test("no METRICS_TOKEN: a plain 404, whatever the caller sends")
    func disabled() {
        #expect(MetricsAccess.decide(configuredToken: nil, authorization: nil, queryToken: nil) == .notFound)
        #expect(MetricsAccess.decide(configuredToken: nil, authorization: "Bearer x", queryToken: "x") == .notFound)
    }

    @Test("the right token by header or query is allowed; wrong or missing is 403")
    func gated() {
        let token = "metrics-token-0123456789abcdefghij"
        #expect(MetricsAccess.decide(configuredToken: token, authorization: "Bearer \(token)", queryToken: nil) == .allowed)
        #expect(MetricsAccess.decide(configuredToken: token, authorization: "bearer \(token)", queryToken: nil) == .allowed)
        #expect(MetricsAccess.decide(configuredToken: token, authorization: nil, queryToken: token) == .allowed)
        #expect(MetricsAccess.decide(configuredToken: token, authorization: "Bearer wrong", queryToken: nil) == .forbidden)
        #expect(MetricsAccess.decide(configuredToken: token, authorization: "Basic \(token)", queryToken: nil) == .forbidden)
        #expect(MetricsAccess.decide(configuredToken: token, authorization: nil, queryToken: nil) == .forbidden)
        #expect(MetricsAccess.decide(configuredToken: token, authorization: nil, queryToken: token + "x") == .forbidden)
    }
}

@Suite("Primitives")
struct PrimitiveTests {
    @Test("constant-time equality is equality")
    func constantTime() {
        #expect(ConstantTime.equals("abc", "abc"))
        #expect(!ConstantTime.equals("abc", "abd"))
        #expect(!ConstantTime.equals("abc", "abcd"))
        #expect(!ConstantTime.equals("", "a"))
        #expect(ConstantTime.equals("", ""))
    }

    @Test("base64url round-trips and rejects foreign characters")
    func base64url() {
        let bytes: [UInt8] = [0xFB, 0xFF, 0x00, 0x10, 0x7E]
        let text = Base64URL.encode(bytes)
        #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
        #expect(Base64URL.decode(text).map { [UInt8]($0) } == bytes)
        #expect(Base64URL.decode("ab+c") == nil)
        #expect(Base64URL.decode("a") == nil)
    }

    @Test("a forwarded principal survives the header encoding")
    func principalHeader() {
        let principal = Principal(kind: .apiToken, scope: .app, subject: "token:1", tenantId: "t1", appId: "a1")
        #expect(PrincipalHeader.decode(PrincipalHeader.encode(principal)) == principal)
        #expect(PrincipalHeader.decode("not base64 !") == nil)
    }

    @Test("client request ids are kept only when short and safe")
    func requestIDs() {
        #expect(RequestIDs.acceptable("abc-123_x.y:z") == "abc-123_x.y:z")
        #expect(RequestIDs.acceptable("bad id") == nil)
        #expect(RequestIDs.acceptable("line\nbreak") == nil)
        #expect(RequestIDs.acceptable(String(repeating: "a", count: 129)) == nil)
    }
}

@Suite("Configuration")
struct ConfigurationTests {
    let secret = String(repeating: "s", count: 32)

    @Test("a missing internal token is a clear start-up error")
    func missingSecret() {
        #expect(throws: ConfigurationError.self) {
            try CommonConfiguration(reader: .values([:]), defaultPort: 1)
        }
        do {
            _ = try CommonConfiguration(reader: .values([:]), defaultPort: 1)
        } catch let error as ConfigurationError {
            #expect(error.message.contains("STREAMHUB_INTERNAL_TOKEN"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("a short secret is rejected, not padded")
    func shortSecret() {
        #expect(throws: ConfigurationError.self) {
            try CommonConfiguration(reader: .values(["STREAMHUB_INTERNAL_TOKEN": "short"]), defaultPort: 1)
        }
    }

    @Test("ports and log levels are validated")
    func validation() {
        #expect(throws: ConfigurationError.self) {
            try CommonConfiguration(reader: .values(["STREAMHUB_INTERNAL_TOKEN": secret, "PORT": "99999"]), defaultPort: 1)
        }
        #expect(throws: ConfigurationError.self) {
            try CommonConfiguration(reader: .values(["STREAMHUB_INTERNAL_TOKEN": secret, "LOG_LEVEL": "loud"]), defaultPort: 1)
        }
    }

    @Test("SQLite under the data directory by default, Postgres when DATABASE_URL is set")
    func storage() throws {
        let sqlite = try StorageLocation(reader: .values(["STREAMHUB_DATA_DIR": "/var/lib/sh", "PORT": "9000"]), name: "identity")
        #expect(sqlite == .sqlite(path: "/var/lib/sh/identity.sqlite"))
        let postgres = try StorageLocation(
            reader: .values(["DATABASE_URL": "postgres://u:p%40ss@db:6543/sh?schema=abc", "DATABASE_CONNECT_TIMEOUT_S": "3"]), name: "identity")
        guard case .postgres(let location) = postgres else {
            Issue.record("expected postgres")
            return
        }
        #expect(location.host == "db" && location.port == 6543 && location.username == "u" && location.password == "p@ss")
        #expect(location.database == "sh" && location.schema == "abc" && location.sslMode == "disable")
        #expect(location.connectTimeout == .seconds(3) && location.endpoint == "db:6543")
        #expect(throws: ConfigurationError.self) {
            try StorageLocation(reader: .values(["DATABASE_URL": "postgres://db/sh", "DATABASE_CONNECT_TIMEOUT_S": "0"]), name: "identity")
        }
    }

    @Test(
        "malformed database URLs are rejected",
        arguments: ["mysql://x/y", "postgres:///nohost", "postgres://h/d?sslmode=maybe", "postgres://h/d?schema=Robert';"])
    func badDatabaseURL(url: String) {
        #expect(throws: ConfigurationError.self) { try PostgresLocation(url: url) }
    }
}

@Suite("Error middleware")
struct ErrorMiddlewareTests {
    struct Body: Decodable { var name: String }

    func makeApp() -> some ApplicationProtocol {
        let router = Router(context: ServiceRequestContext.self)
        router.addServiceMiddleware(metrics: ServiceMetrics(service: "test"))
        router.post("/echo") { request, _ -> String in
            try await request.decodeJSON(Body.self, limit: 64).name
        }
        router.get("/boom") { _, _ -> String in
            struct Secret: Error {}
            throw Secret()
        }
        return Application(router: router)
    }

    func errorBody(_ buffer: ByteBuffer) throws -> ErrorBody {
        try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: buffer))
    }

    @Test("unknown routes get NestJS's 404 body")
    func notFound() async throws {
        try await self.makeApp().test(.router) { client in
            try await client.execute(uri: "/nope", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .notFound)
                #expect(try self.errorBody(response.body) == ErrorBody(statusCode: 404, message: "Cannot GET /nope"))
                #expect(response.headers[.requestID] != nil)
            }
        }
    }

    @Test("bad JSON, wrong types and oversized bodies are 4xx with a message")
    func badInput() async throws {
        try await self.makeApp().test(.router) { client in
            try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(string: "{not json")) { (response: TestResponse) async throws in
                #expect(response.status == .badRequest)
                #expect(try self.errorBody(response.body).message == "Request body is not valid JSON")
            }
            try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(string: #"{"name": 5}"#)) {
                (response: TestResponse) async throws in
                #expect(response.status == .badRequest)
                #expect(try self.errorBody(response.body).message.contains("name"))
            }
            try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(string: #"{}"#)) { (response: TestResponse) async throws in
                #expect(response.status == .badRequest)
                #expect(try self.errorBody(response.body).message == "name is required")
            }
            try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(string: String(repeating: "x", count: 100))) {
                (response: TestResponse) async throws in
                #expect(response.status == .contentTooLarge)
                #expect(try self.errorBody(response.body).error == "Payload Too Large")
            }
            try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(string: #"{"name":"ok"}"#)) {
                (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "ok")
            }
        }
    }

    @Test("an unexpected error is a 500 without details")
    func unexpected() async throws {
        try await self.makeApp().test(.router) { client in
            try await client.execute(uri: "/boom", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .internalServerError)
                #expect(try self.errorBody(response.body) == ErrorBody(statusCode: 500, message: "Internal server error"))
            }
        }
    }

    @Test("the request id a caller sends is echoed")
    func requestID() async throws {
        try await self.makeApp().test(.router) { client in
            try await client.execute(uri: "/nope", method: .get, headers: [.requestID: "req-42"]) { (response: TestResponse) async throws in
                #expect(response.headers[.requestID] == "req-42")
            }
        }
    }
}

@Suite("Migrations")
struct MigrationTests {
    @Test("migrations apply once, in order, on every backend", arguments: TestDatabases.backends)
    func appliesOnce(backend: String) async throws {
        let location = try await TestDatabases.freshLocation(backend, name: "migrations")
        let migrator = Migrator(
            service: "sample",
            migrations: [
                Migration(version: 2, name: "row") { _ in ["INSERT INTO sample_things (name) VALUES ('a')"] },
                Migration(version: 1, name: "table") { _ in ["CREATE TABLE sample_things (name TEXT NOT NULL)"] },
            ]
        )
        let count = try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            try await migrator.migrate(database, logger: TestDatabases.logger)
            try await migrator.migrate(database, logger: TestDatabases.logger)
            return try await database.withSQL { sql in try await sql.raw("SELECT name FROM sample_things").all().count }
        }
        #expect(count == 1)
    }

    @Test("a failing migration leaves nothing behind", arguments: TestDatabases.backends)
    func rollsBack(backend: String) async throws {
        let location = try await TestDatabases.freshLocation(backend, name: "rollback")
        let migrator = Migrator(
            service: "broken",
            migrations: [Migration(version: 1, name: "half") { _ in ["CREATE TABLE broken_things (name TEXT)", "THIS IS NOT SQL"] }]
        )
        try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            await #expect(throws: (any Error).self) { try await migrator.migrate(database, logger: TestDatabases.logger) }
            let applied = try await database.withSQL { sql in try await sql.raw("SELECT version FROM broken_schema_migrations").all().count }
            #expect(applied == 0)
            // The table created before the failure was rolled back with it.
            await #expect(throws: (any Error).self) {
                try await database.withSQL { sql in try await sql.raw("SELECT name FROM broken_things").all() }
            }
        }
    }
}

@Suite("Ordered JSON")
struct OrderedJSONTests {
    @Test("the error body is written in the overview's key order")
    func errorBodyOrder() {
        #expect(
            String(buffer: OrderedJSON.encode(ErrorBody.invalidApiToken))
                == #"{"statusCode":401,"message":"Invalid or revoked API token","error":"Unauthorized"}"#
        )
        let limited = ErrorBody(statusCode: 429, message: "Please wait 42s before requesting another link.", retryAfterSeconds: 42)
        #expect(
            String(buffer: OrderedJSON.encode(limited))
                == #"{"statusCode":429,"message":"Please wait 42s before requesting another link.","error":"Too Many Requests","retryAfterSeconds":42}"#
        )
    }

    @Test("strings are escaped so any message stays valid JSON")
    func escaping() throws {
        let body = ErrorBody(statusCode: 404, message: "Cannot GET /a\"b\\c\n\u{01}é")
        let decoded = try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: OrderedJSON.encode(body)))
        #expect(decoded == body)
    }

    @Test("the health body is written in the overview's key order")
    func healthOrder() {
        let text = String(buffer: OrderedJSON.encode(HealthStatus(ts: "2026-06-30T12:00:00.000Z", uptimeSeconds: 1234)))
        #expect(text == #"{"status":"ok","up":true,"version":"0.1.0","ts":"2026-06-30T12:00:00.000Z","uptimeSeconds":1234}"#)
    }
}

/// A transport that answers every call one way and keeps what it was sent.
final class ScriptedTransport: UpstreamClient, @unchecked Sendable {
    enum Answer { case status(Int, String), refused, timeout }
    let answer: Answer
    let lock = NSLock()
    var sent: [UpstreamRequest] = []

    init(_ answer: Answer) { self.answer = answer }

    func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse {
        self.lock.withLock { self.sent.append(request) }
        switch self.answer {
        case .refused: throw UpstreamFailure.unavailable("connection refused")
        case .timeout: throw UpstreamFailure.timeout
        case .status(let code, let body):
            let buffer = ByteBuffer(string: body)
            return UpstreamResponse(status: .init(code: code), headers: [:], body: .init(byteBuffer: buffer), collect: { _ in buffer })
        }
    }
}

@Suite("Internal calls")
struct InternalClientTests {
    struct Ping: Codable, Equatable { var value: String }
    static let token = String(repeating: "t", count: 32)

    func call(_ answer: ScriptedTransport.Answer) async -> (Result<Ping, ServiceError>, ScriptedTransport) {
        let transport = ScriptedTransport(answer)
        let client = InternalClient(transport: transport, internalToken: Self.token, timeout: .seconds(1))
        do {
            let ping: Ping = try await client.call(
                service: "identity", baseURL: "http://identity.test", path: "/internal/v1/ping", body: Ping(value: "hi"), requestID: "rid-1")
            return (.success(ping), transport)
        } catch let error as ServiceError {
            return (.failure(error), transport)
        } catch {
            return (.failure(ServiceError(.internalServerError, message: "\(error)")), transport)
        }
    }

    @Test("a call carries the internal token, the request id and JSON; the answer is decoded")
    func success() async throws {
        let (result, transport) = await self.call(.status(200, #"{"value":"ho"}"#))
        #expect(try result.get() == Ping(value: "ho"))
        let sent = try #require(transport.sent.first)
        #expect(sent.headers[.streamHubInternalToken] == Self.token)
        #expect(sent.headers[.requestID] == "rid-1")
        #expect(sent.headers[.contentType] == "application/json")
        #expect(sent.baseURL + sent.pathAndQuery == "http://identity.test/internal/v1/ping")
        #expect(String(buffer: try #require(sent.body)) == #"{"value":"hi"}"#)
    }

    @Test("one mapping of failures: refused 503, timeout 504, an error body passed on unchanged, an unreadable answer 502")
    func failures() async throws {
        func error(_ answer: ScriptedTransport.Answer) async -> ServiceError? {
            guard case .failure(let error) = await self.call(answer).0 else { return nil }
            return error
        }
        #expect(await error(.refused)?.body == ErrorBody(statusCode: 503, message: "The identity service is unavailable"))
        #expect(await error(.timeout)?.body == ErrorBody(statusCode: 504, message: "The identity service did not answer in time"))
        let conflict = await error(.status(409, #"{"statusCode":409,"message":"email taken","error":"Conflict"}"#))
        #expect(conflict?.status == .conflict && conflict?.body == ErrorBody(statusCode: 409, message: "email taken"))
        let limited = await error(.status(429, #"{"statusCode":429,"message":"slow down","error":"Too Many Requests","retryAfterSeconds":7}"#))
        #expect(limited?.body.retryAfterSeconds == 7)
        #expect(await error(.status(500, "oops"))?.body == ErrorBody(statusCode: 500, message: "Internal Server Error"))
        #expect(
            await error(.status(200, "not json"))?.body
                == ErrorBody(statusCode: 502, message: "The identity service sent an unreadable answer (Request body is not valid JSON, 8 bytes)"))
        #expect(
            await error(.status(200, "{}"))?.body
                == ErrorBody(statusCode: 502, message: "The identity service sent an unreadable answer (value is required, 2 bytes)"))
    }
}

@Suite("Identifier grammar")
struct IdentifierTests {
    @Test("valid identifiers pass unchanged, commas and quotes included")
    func valid() throws {
        for value in ["user:42", "token:7", "eve, jr", #"a "quoted" name"#, "zoë", String(repeating: "a", count: 256)] {
            #expect(try Identifier.validate(value, field: "subject") == value)
        }
        #expect(try Identifier.validate("*", field: "resource", wildcard: true) == "*")
    }

    @Test("control characters, invalid UTF-8, edges of white space, over-long values and a stray wildcard are 400s naming the field")
    func invalid() {
        let cases: [(String, String)] = [
            ("", "subject must not be empty"),
            ("a\u{0}b", "subject must not contain control characters (found U+0000)"),
            ("a\u{7F}", "subject must not contain control characters (found U+007F)"),
            ("a\u{85}", "subject must not contain control characters (found U+0085)"),
            ("a\u{2028}b", "subject must not contain control characters (found U+2028)"),
            ("a\u{FFFD}", "subject must be valid UTF-8"),
            (" a", "subject must not begin or end with white space"),
            ("a\u{A0}", "subject must not begin or end with white space"),
            (String(repeating: "é", count: 129), "subject must be at most 256 bytes (got 258)"),
            ("*", "subject must not be * (the wildcard is reserved)"),
        ]
        for (value, message) in cases {
            let error = #expect(throws: ServiceError.self) { try Identifier.validate(value, field: "subject") }
            #expect(error?.status == .badRequest)
            #expect(error?.body.message == message)
        }
    }

    @Test("secrets: METRICS_TOKEN set shorter than 32 bytes stops start-up; the enforce mode is parsed once, case-insensitively")
    func settings() throws {
        let secret = String(repeating: "s", count: 32)
        #expect(throws: ConfigurationError.self) {
            try CommonConfiguration(reader: .values(["STREAMHUB_INTERNAL_TOKEN": secret, "METRICS_TOKEN": "short"]), defaultPort: 1)
        }
        #expect(try SettingsReader.values(["STREAMHUB_AUTHZ_ENFORCE": "ON"]).enforcementMode() == .on)
        #expect(try SettingsReader.values([:]).enforcementMode() == .log)
        let error = #expect(throws: ConfigurationError.self) { try SettingsReader.values(["STREAMHUB_AUTHZ_ENFORCE": "maybe"]).enforcementMode() }
        #expect(error?.message == #"STREAMHUB_AUTHZ_ENFORCE must be off, log or on (got "maybe")"#)
    }
}
