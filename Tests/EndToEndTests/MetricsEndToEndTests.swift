import AsyncHTTPClient
import Foundation
import Shared
import Testing

extension RealExecutables {
    /// What an operator alerts on: route patterns (never raw paths), credential kinds, authz
    /// outcomes by mode, upstream outcomes and latency, breaker state; `promtool check metrics` on
    /// every service's output and `promtool check rules` on `docs/alerts.yaml` when
    /// `STREAMHUB_PROMTOOL` names promtool (CI installs Debian's prometheus); every metric the
    /// dashboard and the alerts query exists.
    @Suite("Metrics end to end", .serialized)
    struct MetricsEndToEndTests {
        static let token = "metrics-e2e-token-0123456789abcdef"
        static let json = ("Content-Type", "application/json")
        static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

        /// The value of the first sample whose line starts with `series` (name and labels as written).
        static func value(_ metrics: String, _ series: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }

        /// Metric names an expression refers to (`streamhub_…`).
        static func metricNames(in text: String) -> Set<String> {
            var names: Set<String> = []
            var current = ""
            for character in text + " " {
                if character.isLetter || character.isNumber || character == "_" {
                    current.append(character)
                } else {
                    if current.hasPrefix("streamhub_") { names.insert(current) }
                    current = ""
                }
            }
            return names
        }

        @Test("route patterns, credential kinds, authz outcomes, upstream outcomes; promtool accepts every service's metrics and the alert rules")
        func metrics() async throws {
            try await Stack.with(extra: ["METRICS_TOKEN": Self.token, "STREAMHUB_AUTHZ_ENFORCE": "on"]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let root = ("Authorization", "Bearer " + (try await stack.seedToken(name: "root").stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
                let signup = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [Self.json], body: #"{"email":"metrics@example.com","password":"correct horse battery"}"#)
                let session = try #require(try signup.json()["data"] as? [String: Any])
                let user = ("Authorization", "Bearer " + (try #require(session["token"] as? String)))
                let tenantId = try #require(session["tenantId"] as? String)
                let created = try await client.call(base + "/apps", method: "POST", headers: [root, Self.json], body: #"{"name":"M","tenantId":"\#(tenantId)"}"#)
                let appId = try #require((try created.json()["data"] as? [String: Any])?["id"] as? String)
                for _ in 0..<3 { #expect(try await client.call(base + "/apps/\(appId)", headers: [user]).status == 200) }
                #expect(try await client.call(base + "/apps", headers: [("Authorization", "Bearer sk_wrong")]).status == 401)
                #expect(try await client.call(base + "/apps").status == 401)
                #expect(try await client.call(base + "/nowhere/\(appId)").status == 404)
                #expect(try await client.call(stack.gatewayURL + "/hls/\(appId)/missing.m3u8").status == 404)

                let scrape = ("Authorization", "Bearer " + Self.token)
                let gateway = try await client.call(stack.gatewayURL + "/metrics", headers: [scrape]).body
                // Labels name routes, never the paths asked for.
                #expect(!gateway.contains(appId), "an app id leaked into a label")
                let get = #"streamhub_http_requests_total{service="gateway",route="/api/v1/apps/:app",method="GET",status="200"}"#
                #expect(Self.value(gateway, get) == 3, "\(gateway.prefix(4000))")
                #expect(Self.value(gateway, #"streamhub_http_requests_total{service="gateway",route="unmatched",method="GET",status="404"}"#) == 1)
                #expect(Self.value(gateway, #"streamhub_http_requests_total{service="gateway",route="/hls",method="GET",status="404"}"#) == 1)
                #expect(gateway.contains(#"streamhub_http_request_duration_seconds_bucket{service="gateway",route="/api/v1/apps/:app",method="GET",status="200",le="#))
                #expect(Self.value(gateway, #"streamhub_gateway_credentials_total{service="gateway",kind="jwt"}"#) == 3)
                #expect(Self.value(gateway, #"streamhub_gateway_credentials_total{service="gateway",kind="api_token"}"#) == 1)
                #expect(Self.value(gateway, #"streamhub_gateway_credentials_total{service="gateway",kind="invalid"}"#) == 1)
                #expect(Self.value(gateway, #"streamhub_gateway_credentials_total{service="gateway",kind="anonymous"}"#) == 1)
                // Three checks of one permission: the first asks authz, the others may come from the cache.
                let asked = Self.value(gateway, #"streamhub_gateway_authz_outcomes_total{service="gateway",outcome="allowed",mode="on"}"#) ?? 0
                let cached = Self.value(gateway, #"streamhub_gateway_authz_outcomes_total{service="gateway",outcome="cached",mode="on"}"#) ?? 0
                #expect(asked >= 1 && asked + cached == 3, "allowed \(asked), cached \(cached)")
                #expect(Self.value(gateway, #"streamhub_gateway_authz_outcomes_total{service="gateway",outcome="unavailable_refused",mode="on"}"#) == 0)
                #expect((Self.value(gateway, #"streamhub_upstream_requests_total{service="gateway",upstream="media",outcome="ok"}"#) ?? 0) >= 5)
                #expect((Self.value(gateway, #"streamhub_upstream_requests_total{service="gateway",upstream="authz",outcome="ok"}"#) ?? 0) >= 1)
                #expect(Self.value(gateway, #"streamhub_upstream_requests_total{service="gateway",upstream="identity",outcome="refused"}"#) == 0)
                #expect(gateway.contains(#"streamhub_upstream_request_duration_seconds_count{service="gateway",upstream="identity"}"#))
                #expect(Self.value(gateway, #"streamhub_upstream_circuit_open{service="gateway",upstream="authz"}"#) == 0)

                var outputs = ["gateway": gateway]
                for service in ["identity", "authz", "media"] {
                    outputs[service] = try await client.call("http://127.0.0.1:\(stack.ports[service]!)/metrics", headers: [scrape]).body
                }
                // Services label their own routes by pattern too.
                let media = try #require(outputs["media"])
                #expect(Self.value(media, #"streamhub_http_requests_total{service="media",route="/api/v1/apps/:app",method="GET",status="200"}"#) == 3)
                #expect(!media.contains(appId))

                // Every metric the dashboard and the alerts query is one some service exposes.
                let exposed = Set(outputs.values.flatMap { text in
                    text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { String($0.prefix { $0 != "{" && $0 != " " }) }
                })
                let dashboard = try String(contentsOf: Self.repository.appendingPathComponent("docs/grafana-dashboard.json"), encoding: .utf8)
                let parsed = try #require(try JSONSerialization.jsonObject(with: Data(dashboard.utf8)) as? [String: Any])
                #expect((parsed["panels"] as? [Any])?.count ?? 0 >= 8)
                let alerts = try String(contentsOf: Self.repository.appendingPathComponent("docs/alerts.yaml"), encoding: .utf8)
                let queried = Self.metricNames(in: dashboard).union(Self.metricNames(in: alerts))
                #expect(queried.count >= 8)
                #expect(queried.subtracting(exposed).isEmpty, "queried but never exposed: \(queried.subtracting(exposed).sorted())")

                guard let promtool = ProcessInfo.processInfo.environment["STREAMHUB_PROMTOOL"], !promtool.isEmpty else { return }
                for (service, text) in outputs {
                    let file = stack.dataDir + "/\(service).metrics"
                    try Data(text.utf8).write(to: URL(fileURLWithPath: file))
                    let checked = try await Stack.run("/bin/sh", ["-c", "\"$0\" check metrics < \"$1\"", promtool, file], environment: [:])
                    #expect(checked.status == 0, "promtool on \(service): \(checked.stdout) \(checked.stderr)")
                }
                let rules = try await Stack.run(promtool, ["check", "rules", Self.repository.appendingPathComponent("docs/alerts.yaml").path], environment: [:])
                #expect(rules.status == 0 && rules.stdout.contains("SUCCESS"), "\(rules.stdout) \(rules.stderr)")
            }
        }
    }
}
