/// The services behind the gateway.
public enum ServiceName: String, Codable, Sendable, CaseIterable {
    case gateway, identity, authz, media
}

/// How a route authenticates its caller.
public enum AuthKind: String, Codable, Sendable {
    /// No credential needed; the gateway never resolves one, so a stale or broken credential sent
    /// along does not break a public page (docs/architecture.md).
    case `public`
    /// An `sk_` token or a dashboard JWT, checked against the route's permission.
    case authenticated
    /// Any signed-in caller (an `sk_` token or a dashboard JWT); no permission is checked, the
    /// route serves the caller's own data (`/auth/me`, logout).
    case signedIn
    /// `X-Cluster-Token` = `STREAMHUB_CLUSTER_TOKEN`.
    case clusterToken
    /// LiveKit's webhook signature.
    case livekitSignature
}

/// One public route: the single declaration that drives routing, permission checks, the OpenAPI
/// document and tests.
public struct RouteDefinition: Sendable, Equatable {
    /// Upper-case HTTP method, e.g. `GET`.
    public var method: String
    /// Full public path pattern with `:name` parameters, e.g. `/api/v1/apps/:app`.
    public var path: String
    public var service: ServiceName
    public var auth: AuthKind
    /// The Casbin permission the route declares; `nil` for public routes.
    public var permission: Permission?
    /// Whether a success payload is wrapped as `{"data":…,"error":null}`.
    public var enveloped: Bool
    public var summary: String
    /// For routes the gateway answers by combining several services (`service` is `.gateway`):
    /// the services it asks. Empty for every other route.
    public var aggregates: [ServiceName]
    /// The request body, `nil` for none.
    public var request: RouteBody?
    /// The success payload (inside the envelope when ``enveloped``).
    public var response: RouteBody
    /// The success status.
    public var status: Int
    /// The query parameters the route reads.
    public var query: [QueryParameter]

    public init(
        _ method: String,
        _ path: String,
        service: ServiceName,
        auth: AuthKind,
        permission: Permission? = nil,
        enveloped: Bool = true,
        aggregates: [ServiceName] = [],
        request: RouteBody? = nil,
        response: RouteBody,
        status: Int = 200,
        query: [QueryParameter] = [],
        summary: String
    ) {
        self.aggregates = aggregates
        self.request = request
        self.response = response
        self.status = status
        self.query = query
        self.method = method
        self.path = path
        self.service = service
        self.auth = auth
        self.permission = permission
        self.enveloped = enveloped
        self.summary = summary
    }

    /// Whether an app-scoped `sk_` token may call this route: reading the app list (which shows it
    /// its own app) and routes about one `:app`. Creating apps and tenant-wide routes (policy,
    /// tokens, tenants, users) are a 403: an app token acts on its app only.
    public var allowsAppTokens: Bool {
        (self.path == "/api/v1/apps" && self.method == "GET") || self.path.contains("/:app")
    }

    /// Path split into segments; `:name` segments match any one non-empty segment.
    public var segments: [Substring] { self.path.split(separator: "/") }
}

/// A request or response body of a route, as the OpenAPI document states it.
public enum RouteBody: Sendable, Equatable {
    /// JSON of a named wire type (``WireType``).
    case json(String)
    /// A JSON array of a named wire type.
    case jsonArray(String)
    /// Any other body: its media type and schema.
    case other(contentType: String, schema: Schema)

    public static func of<T: WireType>(_ type: T.Type) -> RouteBody { .json(T.schemaName) }
    public static func list<T: WireType>(_ type: T.Type) -> RouteBody { .jsonArray(T.schemaName) }
    /// A LiveKit webhook event, signed over its raw bytes.
    public static let livekitEvent = RouteBody.other(contentType: "application/webhook+json", schema: .object([.required("event", .text)]))
    /// Casbin CSV lines (`p, sub, dom, obj, act` / `g, user, role, dom`).
    public static let casbinCSV = RouteBody.other(contentType: "text/csv", schema: .string(maxLength: 1 << 20))
    /// The OpenAPI document itself.
    public static let openAPIDocument = RouteBody.other(contentType: "application/json", schema: .object([.required("openapi", .text)]))
    /// An HTML page.
    public static let html = RouteBody.other(contentType: "text/html", schema: .text)
    /// A static file.
    public static let file = RouteBody.other(contentType: "application/octet-stream", schema: .string(format: "binary"))

    /// The component names this body refers to.
    public var references: Set<String> {
        switch self {
        case .json(let name), .jsonArray(let name): [name]
        case .other(_, let schema): schema.references
        }
    }
}

/// A query parameter a route reads.
public struct QueryParameter: Sendable, Equatable {
    public var name: String
    public var schema: Schema
    public var required: Bool
    public var description: String?

    public init(_ name: String, _ schema: Schema = .text, required: Bool = false, description: String? = nil) {
        self.name = name
        self.schema = schema
        self.required = required
        self.description = description
    }

    public static func required(_ name: String) -> QueryParameter { QueryParameter(name, .string(maxLength: 256), required: true) }

    /// `?tenant=` on the policy routes: required for global credentials, optional (and only the
    /// caller's own) for everyone else.
    public static let tenant = QueryParameter(
        "tenant", .string(maxLength: 256), description: "The tenant administered; required for global credentials")
    /// The list window (SPEC, "Lists").
    public static let page = [
        QueryParameter("limit", .integer(minimum: 1, maximum: 500), description: "At most this many items (default 100)"),
        QueryParameter("after", .string(maxLength: 256), description: "The last id seen; items come in creation order"),
    ]
    /// `GET /oembed`.
    public static let oembed = [
        QueryParameter("url", .string(maxLength: 2048), required: true, description: "A /play or /embed page of this server"),
        QueryParameter("maxwidth", .integer(minimum: 1)), QueryParameter("maxheight", .integer(minimum: 1)),
        QueryParameter("format", .string(enumeration: ["json"])),
    ]
}

/// The one route catalog.
public enum RouteCatalog {
    /// Every public route under `/api/v1`.
    public static let routes: [RouteDefinition] = [
        RouteDefinition(
            "GET", "/api/v1/health", service: .gateway, auth: .public, enveloped: false,
            response: .of(HealthStatus.self),
            summary: "Liveness probe"
        ),
        RouteDefinition(
            "GET", "/api/v1/openapi.json", service: .gateway, auth: .public, enveloped: false,
            response: .openAPIDocument,
            summary: "This document: OpenAPI 3.1, generated from the route catalog"
        ),
        RouteDefinition(
            "GET", "/api/v1/docs", service: .gateway, auth: .public, enveloped: false,
            response: .html,
            summary: "Swagger UI for this document (served by the gateway, no CDN)"
        ),
        RouteDefinition(
            "GET", "/api/v1/docs/:asset", service: .gateway, auth: .public, enveloped: false,
            response: .file,
            summary: "Swagger UI's own files (swagger-ui-bundle.js, swagger-ui.css, …)"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/signup", service: .identity, auth: .public,
            request: .of(SignupRequest.self), response: .of(SessionResponse.self), status: 201,
            summary:
                "Create a user and a tenant they own {email, password, name?} and mail a verification link; answers a dashboard session (token, expiresAt, user, tenantId). With STREAMHUB_EMAIL_VERIFICATION=required: the same 202 {message} for every address"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/login", service: .identity, auth: .public,
            request: .of(LoginRequest.self), response: .of(SessionResponse.self),
            summary: "Sign in with {email, password, totpCode?, tenantId?}; answers a dashboard session (401 totpRequired when a TOTP code is needed)"
        ),
        RouteDefinition(
            "GET", "/api/v1/auth/me", service: .identity, auth: .signedIn,
            response: .of(MeResponse.self),
            summary: "The signed-in user, the session's tenant and every tenant they belong to with their roles"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/logout", service: .identity, auth: .signedIn,
            response: .of(LogoutResult.self),
            summary: "End every session of the signed-in user issued until now (in force at the gateway within 5 s)"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/switch-tenant", service: .identity, auth: .signedIn,
            request: .of(SwitchTenantRequest.self), response: .of(SessionResponse.self),
            summary: "A new session acting in another tenant {tenantId} the user belongs to"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/password", service: .identity, auth: .signedIn,
            request: .of(PasswordChangeRequest.self), response: .of(SessionResponse.self),
            summary: "Change the password {currentPassword, newPassword}; ends earlier sessions, answers a fresh one"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/invitations/accept", service: .identity, auth: .signedIn,
            request: .of(AcceptInvitationRequest.self), response: .of(SessionResponse.self),
            summary: "Accept an invitation to your own address {token}: you join its tenant with its role; a session in that tenant"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/invitations/signup", service: .identity, auth: .public,
            request: .of(InvitationSignupRequest.self), response: .of(SessionResponse.self), status: 201,
            summary: "Create your account from an invitation {token, password, name?}: the address is the invited one; you join its tenant (no tenant of your own)"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/magic-link", service: .identity, auth: .public,
            request: .of(EmailRequest.self), response: .of(MessageResponse.self),
            summary: "Mail a sign-in link to {email}; always the same 200 (limited: 3 per email, 10 per IP per 15 min; 60 s cooldown → 429)"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/magic/verify", service: .identity, auth: .public,
            request: .of(MagicVerifyRequest.self), response: .of(SessionResponse.self),
            summary: "Sign in with the link's {token, totpCode?, tenantId?}; answers a dashboard session"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/reset-request", service: .identity, auth: .public,
            request: .of(EmailRequest.self), response: .of(MessageResponse.self),
            summary: "Mail a password-reset link to {email}; always the same 200 (shares the magic-link limiter)"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/reset", service: .identity, auth: .public,
            request: .of(PasswordResetRequest.self), response: .of(MessageResponse.self),
            summary: "Set a new password with the mailed {token, password}; ends every earlier session"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/verify", service: .identity, auth: .public,
            request: .of(VerifyEmailRequest.self), response: .of(MessageResponse.self),
            summary: "Verify the e-mail address with the mailed {token} (24 h, once)"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/verify-request", service: .identity, auth: .public,
            request: .of(EmailRequest.self), response: .of(MessageResponse.self),
            summary: "Mail a new verification link to {email} if it has an unverified account; always the same 200 (the magic-link limiter and cooldown)"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/totp/enroll", service: .identity, auth: .signedIn,
            response: .of(TOTPEnrollment.self),
            summary: "Start TOTP enrolment: {secret, otpauthUrl}"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/totp/confirm", service: .identity, auth: .signedIn,
            request: .of(TOTPCodeRequest.self), response: .of(RecoveryCodes.self),
            summary: "Confirm TOTP with a current {code}: {recoveryCodes} (shown once); sign-in needs a code from now on"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/totp/disable", service: .identity, auth: .signedIn,
            request: .of(TOTPCodeRequest.self), response: .of(TOTPStatus.self),
            summary: "Turn TOTP off with a current {code}"
        ),
        RouteDefinition(
            "POST", "/api/v1/auth/totp/recovery-codes", service: .identity, auth: .signedIn,
            request: .of(TOTPCodeRequest.self), response: .of(RecoveryCodes.self),
            summary: "New recovery codes for a current {code}; the old ones stop working"
        ),
        RouteDefinition(
            "GET", "/api/v1/tokens", service: .identity, auth: .authenticated, permission: "token:read",
            response: .list(ApiTokenSummary.self), query: QueryParameter.page,
            summary: "List sk_ tokens (the caller's tenant; all for global callers), ?limit=&after="
        ),
        RouteDefinition(
            "POST", "/api/v1/tokens", service: .identity, auth: .authenticated, permission: "token:write",
            request: .of(CreateApiTokenRequest.self), response: .of(CreatedApiToken.self), status: 201,
            summary: "Mint an sk_ token {name, scope, appId?, expiresAt?}; the token is shown once"
        ),
        RouteDefinition(
            "DELETE", "/api/v1/tokens/:id", service: .identity, auth: .authenticated, permission: "token:write",
            response: .of(ApiTokenSummary.self),
            summary: "Revoke an sk_ token (refused everywhere within 5 s)"
        ),
        RouteDefinition(
            "GET", "/api/v1/tenants", service: .identity, auth: .authenticated, permission: "tenant:read",
            response: .list(TenantSummary.self), query: QueryParameter.page,
            summary: "List tenants: the caller's own; every tenant for superadmins and global tokens (?limit=&after=)"
        ),
        RouteDefinition(
            "GET", "/api/v1/tenants/:id", service: .identity, auth: .authenticated, permission: "tenant:read",
            response: .of(TenantSummary.self),
            summary: "One tenant with its quotas (another tenant's is a 404)"
        ),
        RouteDefinition(
            "GET", "/api/v1/tenants/:id/usage", service: .gateway, auth: .authenticated, permission: "tenant:read",
            aggregates: [.identity, .media],
            response: .of(TenantUsage.self),
            summary: "A tenant's quotas and usage {tenantId, quotas, usage: {apps, liveStreams, viewers, members, tokens}} (identity + media)"
        ),
        RouteDefinition(
            "PATCH", "/api/v1/tenants/:id", service: .identity, auth: .authenticated, permission: "tenant:write",
            request: .of(TenantUpdate.self), response: .of(TenantSummary.self),
            summary: "Rename a tenant or change its quotas {name?, quotas?} (quotas: superadmins and global tokens only)"
        ),
        RouteDefinition(
            "GET", "/api/v1/tenants/:id/members", service: .identity, auth: .authenticated, permission: "user:read",
            response: .list(MemberSummary.self),
            summary: "A tenant's members with their roles"
        ),
        RouteDefinition(
            "POST", "/api/v1/tenants/:id/members", service: .identity, auth: .authenticated, permission: "user:write",
            request: .of(AddMemberRequest.self), response: .of(InvitationSummary.self), status: 201,
            summary: "Invite an address {email, role}: a pending invitation and a mailed /login/invite link; nobody joins until the invitee accepts (members and pending invitations within maxMembers; a role up to the inviter's own)"
        ),
        RouteDefinition(
            "GET", "/api/v1/tenants/:id/invitations", service: .identity, auth: .authenticated, permission: "user:read",
            response: .list(InvitationSummary.self),
            summary: "A tenant's pending invitations"
        ),
        RouteDefinition(
            "DELETE", "/api/v1/tenants/:id/invitations/:invitationId", service: .identity, auth: .authenticated, permission: "user:write",
            response: .of(InvitationSummary.self),
            summary: "Withdraw a pending invitation (its link stops working)"
        ),
        RouteDefinition(
            "DELETE", "/api/v1/tenants/:id/members/:userId", service: .identity, auth: .authenticated, permission: "user:write",
            response: .of(MemberRemoval.self),
            summary: "Remove a member and their roles in the tenant (never the owner)"
        ),
        RouteDefinition(
            "GET", "/api/v1/users", service: .identity, auth: .authenticated, permission: "user:read",
            response: .list(UserSummary.self), query: QueryParameter.page,
            summary: "Every user (superadmins and global tokens only; ?limit=&after=)"
        ),
        RouteDefinition(
            "PATCH", "/api/v1/users/:id", service: .identity, auth: .authenticated, permission: "user:write",
            request: .of(UserUpdate.self), response: .of(UserSummary.self),
            summary: "Disable or re-enable a user {disabled} (superadmins and global tokens only; sessions stop within 5 s)"
        ),
        RouteDefinition(
            "GET", "/api/v1/apps", service: .media, auth: .authenticated, permission: "app:read",
            response: .list(AppSummary.self), query: QueryParameter.page,
            summary: "List the apps visible to the caller"
        ),
        RouteDefinition(
            "POST", "/api/v1/apps", service: .media, auth: .authenticated, permission: "app:write",
            request: .of(CreateAppRequest.self), response: .of(AppSummary.self), status: 201,
            summary: "Create an app {name, tenantId?, features?: {publicPlayback}} (maxApps holds)"
        ),
        RouteDefinition(
            "GET", "/api/v1/apps/:app", service: .media, auth: .authenticated, permission: "app:read",
            response: .of(AppSummary.self),
            summary: "One app (another tenant's is a 404)"
        ),
        RouteDefinition(
            "PATCH", "/api/v1/apps/:app", service: .media, auth: .authenticated, permission: "app:write",
            request: .of(AppUpdate.self), response: .of(AppSummary.self),
            summary: "Rename an app or change its features {name?, features?: {publicPlayback?}}"
        ),
        RouteDefinition(
            "DELETE", "/api/v1/apps/:app", service: .media, auth: .authenticated, permission: "app:write",
            response: .of(AppSummary.self),
            summary: "Delete an app with its rooms and streams; no play-token is minted for it afterwards"
        ),
        RouteDefinition(
            "GET", "/api/v1/apps/:app/play-token/:room", service: .media, auth: .public,
            response: .of(LiveKitGrant.self),
            summary: "A subscribe-only LiveKit token for a room of the app {token, url, room, identity, expiresAt}"
        ),
        RouteDefinition(
            "POST", "/api/v1/apps/:app/streams", service: .media, auth: .authenticated, permission: "stream:write",
            request: .of(OpenStreamRequest.self), response: .of(OpenedStream.self), status: 201,
            summary: "Open a stream for a room {room}; answers the stream and a publisher token (maxConcurrentStreams holds)"
        ),
        RouteDefinition(
            "GET", "/api/v1/apps/:app/streams", service: .media, auth: .authenticated, permission: "stream:read",
            response: .list(StreamSummary.self),
            summary: "The app's live streams with state and viewer counts"
        ),
        RouteDefinition(
            "DELETE", "/api/v1/apps/:app/streams/:id", service: .media, auth: .authenticated, permission: "stream:write",
            response: .of(StreamSummary.self),
            summary: "End a stream"
        ),
        RouteDefinition(
            "GET", "/api/v1/oembed", service: .media, auth: .public, enveloped: false,
            response: .of(OEmbed.self), query: QueryParameter.oembed,
            summary: "oEmbed 1.0 for a /play or /embed page URL (?url=, maxwidth, maxheight): a video frame of /embed"
        ),
        RouteDefinition(
            "POST", "/api/v1/cluster/join", service: .media, auth: .clusterToken,
            request: .of(NodeJoinRequest.self), response: .of(NodeLease.self),
            summary: "A LiveKit node joins the registry {id?, name, url, region?, capacity?}; answers its lease"
        ),
        RouteDefinition(
            "POST", "/api/v1/cluster/heartbeat", service: .media, auth: .clusterToken,
            request: .of(NodeHeartbeat.self), response: .of(NodeLease.self),
            summary: "A node stays alive {id, rooms?, participants?}; an unknown or expired-and-pruned id is a 404 (join again)"
        ),
        RouteDefinition(
            "GET", "/api/v1/cluster/nodes", service: .media, auth: .authenticated, permission: "cluster:read",
            response: .list(ClusterNode.self),
            summary: "The node registry with liveness and load (platform operators only: superadmins and global tokens)"
        ),
        RouteDefinition(
            "POST", "/api/v1/webhooks/livekit", service: .media, auth: .livekitSignature, enveloped: false,
            request: .livekitEvent, response: .of(WebhookReceipt.self),
            summary: "LiveKit's webhook sink: signature checked over the raw body; keeps stream state and viewer counts; duplicates are harmless"
        ),
        RouteDefinition(
            "GET", "/api/v1/authz/policies", service: .authz, auth: .authenticated, permission: "policy:read",
            response: .of(PolicyListing.self), query: [.tenant],
            summary: "List the tenant's policy rules and the built-in role permissions"
        ),
        RouteDefinition(
            "POST", "/api/v1/authz/policies", service: .authz, auth: .authenticated, permission: "policy:write",
            request: .of(PolicyRule.self), response: .of(PolicyChangeResult.self), status: 201, query: [.tenant],
            summary: "Add a rule {subject, resource, action} in the tenant"
        ),
        RouteDefinition(
            "DELETE", "/api/v1/authz/policies", service: .authz, auth: .authenticated, permission: "policy:write",
            response: .of(PolicyChangeResult.self), query: [.tenant, .required("subject"), .required("resource"), .required("action")],
            summary: "Remove a rule (?subject=&resource=&action=) from the tenant"
        ),
        RouteDefinition(
            "GET", "/api/v1/authz/roles", service: .authz, auth: .authenticated, permission: "policy:read",
            response: .of(RoleListing.self), query: [.tenant],
            summary: "List the tenant's role assignments"
        ),
        RouteDefinition(
            "POST", "/api/v1/authz/roles", service: .authz, auth: .authenticated, permission: "policy:write",
            request: .of(RoleAssignment.self), response: .of(PolicyChangeResult.self), status: 201, query: [.tenant],
            summary: "Assign a role {user, role} in the tenant"
        ),
        RouteDefinition(
            "DELETE", "/api/v1/authz/roles", service: .authz, auth: .authenticated, permission: "policy:write",
            response: .of(PolicyChangeResult.self), query: [.tenant, .required("user"), .required("role")],
            summary: "Remove a role assignment (?user=&role=) from the tenant"
        ),
        RouteDefinition(
            "POST", "/api/v1/authz/check", service: .authz, auth: .authenticated, permission: "policy:read",
            request: .of(PolicyCheckRequest.self), response: .of(PolicyCheckResult.self), query: [.tenant],
            summary: "Decide {subject, resource, action} in the tenant and explain which rule decided"
        ),
        RouteDefinition(
            "POST", "/api/v1/authz/import", service: .authz, auth: .authenticated, permission: "policy:write",
            request: .casbinCSV, response: .of(PolicyChangeResult.self), query: [.tenant],
            summary: "Import Casbin CSV rules (p/g lines in the tenant's domain)"
        ),
    ]

    /// Root mounts forwarded to the media gateway unchanged: streamed, never enveloped.
    public static let mediaMounts: [String] = ["/hls", "/samples", "/sdk", "/play", "/embed", "/assets"]
    /// The methods the media mounts answer (the `Allow` of their 405).
    public static let mediaMountMethods: [String] = ["GET", "HEAD", "OPTIONS"]

    /// The prefix of every public API route.
    public static let apiPrefix = "/api/v1"
    /// The prefix of every internal route; never reachable through the gateway.
    public static let internalPrefix = "/internal/v1"

    /// The outcome of matching a method and path against the catalog.
    public enum Match: Sendable, Equatable {
        case route(RouteDefinition, parameters: [String: String])
        /// The path exists but not for this method; carries the allowed methods.
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    /// The routes by their number of segments, each with its pattern split once (matching runs on
    /// every request: no splitting of patterns, no dictionary until a route matches).
    static let bySegmentCount: [Int: [(route: RouteDefinition, pattern: [Substring])]] = Dictionary(
        grouping: Self.routes.map { (route: $0, pattern: $0.segments) }, by: { $0.pattern.count })

    /// Matches a request path (no query string) against ``routes``.
    public static func match(method: String, path: String) -> Match {
        let requestSegments = path.split(separator: "/")
        var allowed: [String] = []
        for (route, pattern) in Self.bySegmentCount[requestSegments.count] ?? [] {
            guard Self.segmentsMatch(pattern, requestSegments) else { continue }
            if route.method == method || (method == "HEAD" && route.method == "GET") {
                return .route(route, parameters: Self.matchSegments(pattern, requestSegments) ?? [:])
            }
            allowed.append(route.method)
            // A GET route answers HEAD too, so `Allow` says so.
            if route.method == "GET" { allowed.append("HEAD") }
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }

    /// Whether `path` fits `pattern` (same length; literals equal; `:name` any non-empty segment).
    static func segmentsMatch(_ pattern: [Substring], _ path: [Substring]) -> Bool {
        guard pattern.count == path.count else { return false }
        for (expected, actual) in zip(pattern, path) {
            if expected.first == ":" {
                if actual.isEmpty { return false }
            } else if expected != actual {
                return false
            }
        }
        return true
    }

    /// Whether `path` falls under one of the media mounts (the mount itself or anything below it).
    public static func isMediaMount(_ path: String) -> Bool {
        self.mediaMount(of: path) != nil
    }

    /// The media mount `path` falls under (`/hls` for `/hls/a/b.ts`), if any.
    public static func mediaMount(of path: String) -> String? {
        self.mediaMounts.first { mount in
            path == mount || path.hasPrefix(mount + "/")
        }
    }

    static func matchSegments(_ pattern: [Substring], _ path: [Substring]) -> [String: String]? {
        guard pattern.count == path.count else { return nil }
        var parameters: [String: String] = [:]
        for (expected, actual) in zip(pattern, path) {
            if expected.first == ":" {
                guard !actual.isEmpty else { return nil }
                parameters[String(expected.dropFirst())] = String(actual)
            } else if expected != actual {
                return nil
            }
        }
        return parameters
    }
}
