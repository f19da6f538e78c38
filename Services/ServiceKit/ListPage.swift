import Hummingbird

/// The window of a list route (SPEC, "Lists"): `limit` (default 100, at most 500) and `after`, the
/// last id the caller has seen; items come in creation order and the payload stays an array.
public struct ListPage: Sendable, Equatable {
    public static let defaultLimit = 100
    public static let maximumLimit = 500

    public var limit: Int
    public var after: String?

    public init(limit: Int = ListPage.defaultLimit, after: String? = nil) {
        self.limit = limit
        self.after = after
    }

    /// - Throws: ``ServiceError`` 400 for a `limit` outside 1…500 or a malformed `after`.
    public init(request: Request) throws {
        let query = request.uri.queryParameters
        if let text = query["limit"] {
            guard let limit = Int(text), (1...Self.maximumLimit).contains(limit) else {
                throw ServiceError.badRequest("limit must be an integer from 1 to \(Self.maximumLimit)")
            }
            self.limit = limit
        } else {
            self.limit = Self.defaultLimit
        }
        self.after = try query["after"].map { try Identifier.validate(String($0), field: "after") }
    }
}
