import Hummingbird
import NIOCore

/// A request context that knows the client's address.
public protocol GatewayRequestContextProtocol: RequestContext {
    /// The client IP, if known.
    var clientIP: String? { get }
}

public struct GatewayRequestContext: GatewayRequestContextProtocol, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    public var clientIP: String? { self.remoteAddress?.ipAddress }

    /// The gateway enforces its own configurable limit (413 in the error body); this only bounds
    /// Hummingbird's own collection.
    public var maxUploadSize: Int { 256 << 20 }
}
