import Foundation
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The bounds every public connection lives within: how many may be open at once, and how long
/// one may go with nothing read or written (an unfinished request head held open, an idle
/// keep-alive). Shared by all of a server's connections.
public final class ConnectionLimits: Sendable {
    /// Connections open at once; past it a new one is closed at once (the listener keeps accepting,
    /// so clients get a clean close, not a full backlog, and the process never runs out of
    /// descriptors).
    public let maxConnections: Int
    /// Nothing read or written for this long closes the connection.
    public let idleTimeout: Duration
    let open = Atomic<Int>(0)

    public init(maxConnections: Int, idleTimeout: Duration) {
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
    }

    /// Connections open now.
    public var current: Int { self.open.load(ordering: .relaxed) }

    /// A cap that leaves room for the process's other descriptors: three quarters of the soft
    /// `RLIMIT_NOFILE` less what upstream connections, files and the runtime need, at least 64 and
    /// at most 16,384.
    public static func defaultMaxConnections() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return 16_384 }
        let soft = Int(clamping: limit.rlim_cur)
        return min(16_384, max(64, (soft - 256) / 2))
    }

    /// Takes a place for a new connection. - Returns: false when the cap is reached.
    func admit() -> Bool {
        let now = self.open.wrappingAdd(1, ordering: .relaxed).newValue
        if now > self.maxConnections {
            self.open.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func release() { self.open.wrappingSubtract(1, ordering: .relaxed) }
}

/// The first handler of a public connection (nearest the socket: it sees every byte read and
/// every write, whichever lane answered): enforces ``ConnectionLimits``.
public final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny
    public typealias OutboundIn = NIOAny

    let limits: ConnectionLimits
    var admitted = false
    var lastActivity = NIODeadline.now()
    var timer: Scheduled<Void>?

    public init(limits: ConnectionLimits) {
        self.limits = limits
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        guard self.limits.admit() else {
            context.close(promise: nil)
            return
        }
        self.admitted = true
        context.channel.closeFuture.whenComplete { [limits] _ in limits.release() }
        self.schedule(context, in: TimeAmount(self.limits.idleTimeout))
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
    }

    func schedule(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        self.timer = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: delay) {
            let idle = NIODeadline.now() - self.lastActivity
            let timeout = TimeAmount(self.limits.idleTimeout)
            if idle >= timeout {
                context.close(promise: nil)
            } else {
                self.schedule(context, in: timeout - idle)
            }
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.lastActivity = .now()
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        self.lastActivity = .now()
        context.write(data, promise: promise)
    }
}
