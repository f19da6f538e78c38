/// `GET /api/v1/health` and `GET /internal/v1/health`:
/// `{"status":"ok","up":true,"version":"0.1.0","ts":"…","uptimeSeconds":…}`, never enveloped.
public struct HealthStatus: Codable, Sendable, Equatable {
    public var status: String
    public var up: Bool
    public var version: String
    /// ISO-8601 with milliseconds, UTC: `2026-06-30T12:00:00.000Z`.
    public var ts: String
    public var uptimeSeconds: Int

    public init(status: String = "ok", up: Bool = true, version: String = StreamHubVersion.current, ts: String, uptimeSeconds: Int) {
        self.status = status
        self.up = up
        self.version = version
        self.ts = ts
        self.uptimeSeconds = uptimeSeconds
    }
}

public enum StreamHubVersion {
    public static let current = "0.1.0"
}
