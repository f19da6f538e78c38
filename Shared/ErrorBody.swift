/// NestJS's default error body: `{"statusCode": 401, "message": "…", "error": "Unauthorized"}`.
///
/// Every error a client sees has this shape, with the matching HTTP status. Extra machine-readable
/// fields (``retryAfterSeconds``) are added only where the contract defines them.
public struct ErrorBody: Codable, Sendable, Equatable {
    public var statusCode: Int
    public var message: String
    public var error: String
    public var retryAfterSeconds: Int?
    /// Set on a sign-in refused for want of a valid TOTP code, so a dashboard can ask for one.
    public var totpRequired: Bool?
    /// Set on a 403 from authorization: the permission (`resource:action`) the caller lacks.
    public var permission: String?

    public init(
        statusCode: Int, message: String, error: String? = nil, retryAfterSeconds: Int? = nil, totpRequired: Bool? = nil, permission: String? = nil
    ) {
        self.statusCode = statusCode
        self.message = message
        self.error = error ?? ErrorBody.reasonPhrase(for: statusCode)
        self.retryAfterSeconds = retryAfterSeconds
        self.totpRequired = totpRequired
        self.permission = permission
    }

    /// The reason phrase NestJS puts in `error` for a status code.
    public static func reasonPhrase(for statusCode: Int) -> String {
        switch statusCode {
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 413: "Payload Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 422: "Unprocessable Entity"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: "Error"
        }
    }
}

extension ErrorBody {
    /// The exact body for a `sk_` token that is unknown, revoked or expired.
    public static let invalidApiToken = ErrorBody(statusCode: 401, message: "Invalid or revoked API token")
    /// The body for a request that needs a credential and carries none.
    public static let unauthorized = ErrorBody(statusCode: 401, message: "Unauthorized")
}
