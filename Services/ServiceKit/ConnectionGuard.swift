import Foundation
import NIOCore
import NIOHTTP1
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
    /// A request head not complete this long after its first byte closes the connection, however
    /// steadily its bytes trickle in (nil: only the idle timeout and the decoder's size limits).
    public let headTimeout: Duration?
    let open = Atomic<Int>(0)

    public init(maxConnections: Int, idleTimeout: Duration, headTimeout: Duration? = nil) {
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.headTimeout = headTimeout
    }

    /// How often a connection's timer ticks: half the shorter timeout.
    var tickInterval: TimeAmount {
        let shortest = min(self.idleTimeout, self.headTimeout ?? self.idleTimeout)
        return .nanoseconds(max(TimeAmount(shortest).nanoseconds / 2, 1_000_000))
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
/// Reads and writes only set a flag (no clock read on the hot path); a timer ticks every half of
/// the shorter timeout and closes the connection after silent ticks spanning the idle timeout, so
/// an idle connection goes between one and one and a half idle timeouts after its last byte.
///
/// With a head timeout, ``RequestHeadWatch`` (right after the HTTP/1 decoder) tells the guard
/// when a head is complete and when a request has ended; the first bytes read after that (or on
/// a new connection) start the next head's clock — one clock read per request — and a tick that
/// finds the head still unfinished past the timeout closes the connection.
public final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny
    public typealias OutboundIn = NIOAny

    let limits: ConnectionLimits
    var active = false
    var silentTicks = 0
    var timer: Scheduled<Void>?
    /// Whether the next bytes read begin a request head (the connection is new, or the last
    /// request ended).
    var awaitingHead = true
    /// When the head being read began; nil while none is.
    var headStartedAt: NIODeadline?

    public init(limits: ConnectionLimits) {
        self.limits = limits
    }

    /// The watch to put right after the HTTP/1 decoder, or nil without a head timeout.
    public func headWatch() -> RequestHeadWatch? {
        self.limits.headTimeout == nil ? nil : RequestHeadWatch(guard: self)
    }

    func headCompleted() {
        self.awaitingHead = false
        self.headStartedAt = nil
    }

    func requestEnded() {
        self.awaitingHead = true
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        guard self.limits.admit() else {
            context.close(promise: nil)
            return
        }
        context.channel.closeFuture.whenComplete { [limits] _ in limits.release() }
        let interval = self.limits.tickInterval
        // Silent ticks that add up to the idle timeout (two when it is the shorter one).
        let silentLimit = max(2, Int((TimeAmount(self.limits.idleTimeout).nanoseconds + interval.nanoseconds - 1) / interval.nanoseconds))
        self.tick(context, every: interval, silentLimit: silentLimit)
    }

    func tick(_ context: ChannelHandlerContext, every interval: TimeAmount, silentLimit: Int) {
        self.timer = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: interval) {
            if let started = self.headStartedAt, let limit = self.limits.headTimeout,
                context.eventLoop.now - started >= TimeAmount(limit)
            {
                context.close(promise: nil)
                return
            }
            if self.active {
                self.active = false
                self.silentTicks = 0
            } else {
                self.silentTicks += 1
                if self.silentTicks >= silentLimit {
                    context.close(promise: nil)
                    return
                }
            }
            self.tick(context, every: interval, silentLimit: silentLimit)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.active = true
        if self.awaitingHead, self.limits.headTimeout != nil {
            self.awaitingHead = false
            self.headStartedAt = context.eventLoop.now
        }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        self.active = true
        context.write(data, promise: promise)
    }
}

/// Right after the HTTP/1 decoder: tells its ``ConnectionGuard`` when a request head is complete
/// and when the request has ended (a pass-through otherwise).
public final class RequestHeadWatch: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias InboundOut = HTTPServerRequestPart

    let connectionGuard: ConnectionGuard

    init(guard connectionGuard: ConnectionGuard) {
        self.connectionGuard = connectionGuard
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head: self.connectionGuard.headCompleted()
        case .end: self.connectionGuard.requestEnded()
        case .body: break
        }
        context.fireChannelRead(data)
    }
}
