// The JSON Schema of every wire type the public API speaks, for the OpenAPI document
// (`GET /api/v1/openapi.json`). A schema states what the encoder writes: optional members are
// absent or null; `SharedTests.WireSchemaTests` encodes a sample of each type and checks it.

extension Schema {
    static let id = Schema.string(maxLength: 256)
    static let name = Schema.string(maxLength: 256)
    static let email = Schema.string()
    static let count = Schema.integer(minimum: 0)
    static let scope = Schema.string(enumeration: ["global", "app"])
}

extension HealthStatus: WireType {
    public static let schema = Schema.object([
        .required("status", .text), .required("up", .boolean), .required("version", .text), .required("ts", .timestamp),
        .required("uptimeSeconds", .count),
    ])
}

extension ErrorBody: WireType {
    public static let schema = Schema.object([
        .required("statusCode", .integer(minimum: 400, maximum: 599)), .required("message", .text),
        .required("error", .text, "The status's reason phrase"),
        .optional("retryAfterSeconds", .count, "429: seconds until the limiter lets the request through"),
        .optional("totpRequired", .boolean, "401 at sign-in: a TOTP code is needed"),
        .optional("permission", .string(), "403 from authorization: the permission (resource:action) the caller lacks"),
    ])
}

extension SignupRequest: WireType {
    public static let schema = Schema.object([
        .required("email", .email), .required("password", .string(maxLength: 1024)), .optional("name", .name),
    ])
}

extension LoginRequest: WireType {
    public static let schema = Schema.object([
        .required("email", .email), .required("password", .string(maxLength: 1024)), .optional("totpCode", .text, "TOTP or recovery code"),
        .optional("tenantId", .id, "The tenant the session acts in (default: the user's own)"),
    ])
}

extension UserSummary: WireType {
    public static let schema = Schema.object([
        .required("id", .id), .required("email", .email), .optional("name", .name), .required("superadmin", .boolean),
        .required("disabled", .boolean), .required("createdAt", .timestamp),
        .required("emailVerified", .boolean, "Whether the user proved the address (a verification, reset or invitation link spent)"),
    ])
}

extension SessionResponse: WireType {
    public static let schema = Schema.object([
        .required("token", .text, "The dashboard JWT (HS256)"), .required("expiresAt", .timestamp), .required("user", .ref(UserSummary.self)),
        .optional("tenantId", .id, "The tenant the session acts in"),
    ])
}

extension TenantQuotas: WireType {
    public static let schema = Schema.object([
        .required("maxApps", .count), .required("maxConcurrentStreams", .count), .required("maxMembers", .count), .required("maxTokens", .count),
    ])
}

extension TenantSummary: WireType {
    public static let schema = Schema.object([
        .required("id", .id), .required("name", .name), .required("ownerId", .id), .required("quotas", .ref(TenantQuotas.self)),
        .required("createdAt", .timestamp),
    ])
}

extension TenantMembership: WireType {
    public static let schema = Schema.object([.required("tenant", .ref(TenantSummary.self)), .required("roles", .array(.text))])
}

extension MeResponse: WireType {
    public static let schema = Schema.object([
        .required("user", .ref(UserSummary.self)), .optional("tenantId", .id), .required("tenants", .array(.ref(TenantMembership.self))),
    ])
}

extension CreateApiTokenRequest: WireType {
    public static let schema = Schema.object([
        .required("name", .name), .required("scope", .scope), .optional("appId", .id, "Required for scope app"),
        .optional("expiresAt", .timestamp),
    ])
}

extension ApiTokenSummary: WireType {
    public static let schema = Schema.object([
        .required("id", .id), .required("name", .name), .required("prefix", .text), .required("scope", .scope), .optional("appId", .id),
        .optional("tenantId", .id), .required("createdAt", .timestamp), .optional("lastUsedAt", .timestamp), .optional("expiresAt", .timestamp),
        .optional("revokedAt", .timestamp),
    ])
}

extension CreatedApiToken: WireType {
    public static let schema = Schema.object([
        .required("token", .text, "The sk_ token, shown this once"), .required("id", .id), .required("name", .name), .required("prefix", .text),
        .required("scope", .scope), .optional("appId", .id), .optional("tenantId", .id), .required("createdAt", .timestamp),
        .optional("expiresAt", .timestamp),
    ])
}

extension PolicyChangeResult: WireType {
    public static let schema = Schema.object([
        .required("tenant", .id), .required("version", .count, "The policy version after the change"),
        .required("changed", .count, "Rules added or removed (0 when nothing changed)"),
    ])
}

extension TenantUpdate: WireType {
    public static let schema = Schema.object([.optional("name", .name), .optional("quotas", .ref(QuotaUpdate.self))])
}

extension QuotaUpdate: WireType {
    public static let schema = Schema.object([
        .optional("maxApps", .count), .optional("maxConcurrentStreams", .count), .optional("maxMembers", .count), .optional("maxTokens", .count),
    ])
}

extension MemberSummary: WireType {
    public static let schema = Schema.object([
        .required("userId", .id), .required("email", .email), .optional("name", .name), .required("roles", .array(.text)),
        .required("joinedAt", .timestamp),
    ])
}

extension InvitationSummary: WireType {
    public static let schema = Schema.object([
        .required("id", .id), .required("tenantId", .id), .required("email", .email), .required("role", .name),
        .required("createdAt", .timestamp), .required("expiresAt", .timestamp, "The mailed link works until then (7 days)"),
    ])
}

extension AcceptInvitationRequest: WireType {
    public static let schema = Schema.object([.required("token", .string(maxLength: 128), "The token of the mailed /login/invite link")])
}

extension InvitationSignupRequest: WireType {
    public static let schema = Schema.object([
        .required("token", .string(maxLength: 128), "The token of the mailed /login/invite link"), .required("password", .string(maxLength: 1024)),
        .optional("name", .name),
    ])
}

extension AddMemberRequest: WireType {
    public static let schema = Schema.object([.required("email", .email), .required("role", .name)])
}

extension MemberRemoval: WireType {
    public static let schema = Schema.object([.required("removed", .boolean)])
}

extension UserUpdate: WireType {
    public static let schema = Schema.object([.optional("disabled", .boolean)])
}

extension TOTPEnrollment: WireType {
    public static let schema = Schema.object([.required("secret", .text, "Base32"), .required("otpauthUrl", .text)])
}

extension TOTPCodeRequest: WireType {
    public static let schema = Schema.object([.required("code", .string(maxLength: 64))])
}

extension TOTPStatus: WireType {
    public static let schema = Schema.object([.required("totpEnabled", .boolean)])
}

extension RecoveryCodes: WireType {
    public static let schema = Schema.object([.required("recoveryCodes", .array(.text))])
}

extension EmailRequest: WireType {
    public static let schema = Schema.object([.required("email", .email)])
}

extension MagicVerifyRequest: WireType {
    public static let schema = Schema.object([
        .required("token", .string(maxLength: 256)), .optional("totpCode", .text), .optional("tenantId", .id),
    ])
}

extension PasswordResetRequest: WireType {
    public static let schema = Schema.object([.required("token", .string(maxLength: 256)), .required("password", .string(maxLength: 1024))])
}

extension VerifyEmailRequest: WireType {
    public static let schema = Schema.object([.required("token", .string(maxLength: 256))])
}

extension PasswordChangeRequest: WireType {
    public static let schema = Schema.object([
        .required("currentPassword", .string(maxLength: 1024)), .required("newPassword", .string(maxLength: 1024)),
    ])
}

extension SwitchTenantRequest: WireType {
    public static let schema = Schema.object([.required("tenantId", .id)])
}

extension MessageResponse: WireType {
    public static let schema = Schema.object([.required("message", .text)])
}

extension LogoutResult: WireType {
    public static let schema = Schema.object([.required("sessionsEndedAt", .timestamp)])
}

extension TenantUsage.Counts: WireType {
    public static var schemaName: String { "TenantUsageCounts" }
    public static let schema = Schema.object([
        .required("apps", .count), .required("liveStreams", .count), .required("viewers", .count), .required("members", .count),
        .required("tokens", .count),
    ])
}

extension TenantUsage: WireType {
    public static let schema = Schema.object([
        .required("tenantId", .id), .required("quotas", .ref(TenantQuotas.self)), .required("usage", .ref(TenantUsage.Counts.self)),
    ])
}

extension AppFeatures: WireType {
    public static let schema = Schema.object([.required("publicPlayback", .boolean)])
}

extension AppSummary: WireType {
    public static let schema = Schema.object([
        .required("id", .id), .required("tenantId", .id), .required("name", .name), .required("features", .ref(AppFeatures.self)),
        .required("createdAt", .timestamp),
    ])
}

extension CreateAppRequest: WireType {
    public static let schema = Schema.object([
        .required("name", .name), .optional("tenantId", .id, "Global tokens and superadmins name the tenant"),
        .optional("features", .ref(AppFeatures.self)),
    ])
}

extension AppUpdate.Features: WireType {
    public static var schemaName: String { "AppFeaturesUpdate" }
    public static let schema = Schema.object([.optional("publicPlayback", .boolean)])
}

extension AppUpdate: WireType {
    public static let schema = Schema.object([.optional("name", .name), .optional("features", .ref(AppUpdate.Features.self))])
}

extension LiveKitGrant: WireType {
    public static let schema = Schema.object([
        .required("token", .text, "A LiveKit access token (HS256)"), .required("url", .text, "The LiveKit server to connect to"),
        .required("room", .name), .required("identity", .text), .required("expiresAt", .timestamp),
    ])
}

extension OpenStreamRequest: WireType {
    public static let schema = Schema.object([.required("room", .name)])
}

extension StreamSummary: WireType {
    public static let schema = Schema.object([
        .required("id", .id), .required("appId", .id), .required("room", .name), .required("state", .text), .required("viewers", .count),
        .required("publishing", .boolean), .required("createdAt", .timestamp), .optional("endedAt", .timestamp),
    ])
}

extension OpenedStream: WireType {
    public static let schema = Schema.object([.required("stream", .ref(StreamSummary.self)), .required("publisher", .ref(LiveKitGrant.self))])
}

extension WebhookReceipt: WireType {
    public static let schema = Schema.object([
        .required("event", .text), .required("outcome", .text, "applied, duplicate or ignored"),
    ])
}

extension NodeJoinRequest: WireType {
    public static let schema = Schema.object([
        .optional("id", .id, "Rejoin under an earlier id"), .required("name", .name), .required("url", .string(maxLength: 2048)),
        .optional("region", .name), .optional("capacity", .count),
    ])
}

extension NodeHeartbeat: WireType {
    public static let schema = Schema.object([.required("id", .id), .optional("rooms", .count), .optional("participants", .count)])
}

extension ClusterNode: WireType {
    public static let schema = Schema.object([
        .required("id", .id), .required("name", .name), .required("url", .text), .optional("region", .name), .optional("capacity", .count),
        .required("rooms", .count), .required("participants", .count), .required("alive", .boolean), .required("joinedAt", .timestamp),
        .required("lastSeenAt", .timestamp),
    ])
}

extension NodeLease: WireType {
    public static let schema = Schema.object([
        .required("node", .ref(ClusterNode.self)), .required("heartbeatIntervalSeconds", .integer(minimum: 1)), .required("expiresAt", .timestamp),
    ])
}

extension OEmbed: WireType {
    public static let schema = Schema.object([
        .required("type", .string(enumeration: ["video"])), .required("version", .string(enumeration: ["1.0"])), .required("title", .text),
        .required("provider_name", .text), .required("provider_url", .text), .required("html", .text), .required("width", .integer(minimum: 1)),
        .required("height", .integer(minimum: 1)),
    ])
}

extension PolicyRule: WireType {
    public static let schema = Schema.object([.required("subject", .name), .required("resource", .name), .required("action", .name)])
}

extension RoleAssignment: WireType {
    public static let schema = Schema.object([.required("user", .name), .required("role", .name)])
}

extension PolicyListing: WireType {
    public static let schema = Schema.object([
        .required("tenant", .id), .required("version", .count), .required("policies", .array(.ref(PolicyRule.self))),
        .required("builtIn", .array(.ref(PolicyRule.self)), "The built-in role permissions (domain *), read-only"),
    ])
}

extension RoleListing: WireType {
    public static let schema = Schema.object([
        .required("tenant", .id), .required("version", .count), .required("roles", .array(.ref(RoleAssignment.self))),
    ])
}

extension PolicyCheckRequest: WireType {
    public static let schema = Schema.object([.required("subject", .name), .required("resource", .name), .required("action", .name)])
}

extension PolicyCheckResult: WireType {
    public static let schema = Schema.object([
        .required("tenant", .id), .required("allowed", .boolean),
        .required("explain", .array(.text), "The rule that decided [sub, dom, obj, act]; empty when none did"),
        .required("roles", .array(.text)),
    ])
}

/// Every wire type of the public API, by component name: the OpenAPI document's
/// `components.schemas`.
public enum WireTypes {
    public static let all: [any WireType.Type] = [
        HealthStatus.self, ErrorBody.self, SignupRequest.self, LoginRequest.self, UserSummary.self, SessionResponse.self, TenantQuotas.self,
        TenantSummary.self, TenantMembership.self, MeResponse.self, CreateApiTokenRequest.self, ApiTokenSummary.self, CreatedApiToken.self,
        PolicyChangeResult.self, TenantUpdate.self, QuotaUpdate.self, MemberSummary.self, AddMemberRequest.self, MemberRemoval.self,
        InvitationSummary.self, AcceptInvitationRequest.self, InvitationSignupRequest.self,
        UserUpdate.self, TOTPEnrollment.self, TOTPCodeRequest.self, TOTPStatus.self, RecoveryCodes.self, EmailRequest.self,
        MagicVerifyRequest.self, PasswordResetRequest.self, VerifyEmailRequest.self, PasswordChangeRequest.self, SwitchTenantRequest.self, MessageResponse.self,
        LogoutResult.self, TenantUsage.Counts.self, TenantUsage.self, AppFeatures.self, AppSummary.self, CreateAppRequest.self,
        AppUpdate.Features.self, AppUpdate.self, LiveKitGrant.self, OpenStreamRequest.self, StreamSummary.self, OpenedStream.self,
        WebhookReceipt.self, NodeJoinRequest.self, NodeHeartbeat.self, ClusterNode.self, NodeLease.self, OEmbed.self, PolicyRule.self,
        RoleAssignment.self, PolicyListing.self, RoleListing.self, PolicyCheckRequest.self, PolicyCheckResult.self,
    ]

    public static var components: [String: Schema] {
        Dictionary(uniqueKeysWithValues: self.all.map { ($0.schemaName, $0.schema) })
    }
}
