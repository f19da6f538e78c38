import Foundation
import ServiceKit
import Shared
import Synchronization

/// Which tenants exist, as identity knows them (`GET /internal/v1/tenants/:id`). Tenants are never
/// deleted, so a tenant found once is remembered (up to 10,000, then the memory starts over); one
/// not found is asked again next time.
public final class TenantDirectory: Sendable {
    let identity: InternalClient
    let identityURL: String
    let known = Mutex<Set<String>>([])
    static let remembered = 10_000

    public init(identity: InternalClient, identityURL: String) {
        self.identity = identity
        self.identityURL = identityURL
    }

    /// Returns when `tenant` exists; 404 when identity has no such tenant (503 while identity cannot say).
    func requireExisting(_ tenant: String, requestID: String) async throws {
        if self.known.withLock({ $0.contains(tenant) }) { return }
        do {
            let _: EmptyAnswer = try await self.identity.call(
                .get, service: "identity", baseURL: self.identityURL, path: "/internal/v1/tenants/\(tenant)", body: String?.none, requestID: requestID)
        } catch let error as ServiceError where error.status == .notFound {
            throw ServiceError.notFound("No such tenant \(tenant)")
        }
        self.known.withLock {
            if $0.count >= Self.remembered { $0.removeAll() }
            $0.insert(tenant)
        }
    }
}
