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
///
/// Reads and writes only set a flag (no clock read on the hot path); a timer ticks every half
/// idle timeout and closes the connection after two silent ticks in a row, so an idle connection
/// goes between one and one and a half idle timeouts after its last byte.
public final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny
    public typealias OutboundIn = NIOAny

    let limits: ConnectionLimits
    var active = false
    var silentTicks = 0
    var timer: Scheduled<Void>?

    public init(limits: ConnectionLimits) {
        self.limits = limits
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        guard self.limits.admit() else {
            context.close(promise: nil)
            return
        }
        context.channel.closeFuture.whenComplete { [limits] _ in limits.release() }
        self.tick(context, every: .nanoseconds(TimeAmount(self.limits.idleTimeout).nanoseconds / 2))
    }

    func tick(_ context: ChannelHandlerContext, every interval: TimeAmount) {
        self.timer = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: interval) {
            if self.active {
                self.active = false
                self.silentTicks = 0
            } else {
                self.silentTicks += 1
                if self.silentTicks >= 2 {
                    context.close(promise: nil)
                    return
                }
            }
            self.tick(context, every: interval)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.active = true
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        self.active = true
        context.write(data, promise: promise)
    }
}
