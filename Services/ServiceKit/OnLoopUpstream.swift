import NIOCore
import NIOHTTP1
import NIOPosix

/// A call to an upstream made entirely on the caller's event loop, with futures: for a server's
/// fast path, which answers a request in the handler that read it and must not wait on a task.
///
/// It goes where the async path (``MeasuredUpstream`` → ``ReplicatedUpstream`` →
/// ``CircuitBreakingUpstream`` → ``HTTPUpstreamClient``) would: the next replica in rotation, over
/// an idle pooled connection of this event loop, with the same deadline; and it counts what that
/// path counts (upstream metrics, the breaker). When it cannot go at once — no idle connection on
/// this loop, the next replica out of rotation, a transport that is not the pooled one (tests) —
/// ``reserve(_:)`` says so with nil, and the caller takes the async path, which opens
/// connections, retries and fails over.
public struct OnLoopUpstream: Sendable {
    /// An upstream's answer, as read from its bytes (``RawUpstreamExchange``).
    public struct Answer: Sendable {
        let raw: RawUpstreamExchange.Answer

        public var status: HTTPResponseStatus { HTTPResponseStatus(statusCode: self.raw.status) }
        public var body: ByteBuffer { self.raw.body }
        /// Every header, in order (built on demand).
        public var headers: HTTPHeaders { self.raw.headers }
        /// The first value of header `name` (any case), without building the others.
        public func header(_ name: String) -> String? { self.raw.header(name) }
    }

    public enum Outcome: Sendable {
        case answered(Answer)
        /// No answer by the deadline; counted (metrics, breaker) as the async path counts it.
        case timedOut
        /// The call failed otherwise (a kept connection the upstream had closed, a broken answer).
        /// Nothing is counted: the caller sends it again on the async path (GETs only), which
        /// retries, fails over and counts.
        case failed
    }

    let pooled: PooledHTTP1Client
    let replicated: ReplicatedUpstream
    let measured: MeasuredUpstream

    /// nil when `transport` is not ``HTTPUpstreamClient`` (an injected test transport): then there
    /// is no fast path.
    public init?(transport: any UpstreamClient, replicated: ReplicatedUpstream, measured: MeasuredUpstream) {
        guard let http = transport as? HTTPUpstreamClient else { return nil }
        self.pooled = http.pooled
        self.replicated = replicated
        self.measured = measured
    }

    /// A replica of an upstream and an idle connection to it on the caller's event loop, held for
    /// one call (``send(_:method:pathAndQuery:headers:body:timeout:)``) or given back
    /// (``release(_:)``). Reserving every connection a request needs before the first call means
    /// the request never has to fall back halfway for want of one.
    public struct Reservation: Sendable {
        let baseURL: String
        let replica: String
        let target: PooledHTTP1Client.Target
        let channel: any Channel
    }

    /// The next replica in rotation of the upstream configured as `baseURL`, with an idle pooled
    /// connection on this event loop; nil when there is none (call on an event loop).
    public func reserve(_ baseURL: String) -> Reservation? {
        guard let replica = self.replicated.nextInRotation(baseURL), let target = self.pooled.target(replica),
            let channel = self.pooled.checkoutOnLoop(target)
        else { return nil }
        return Reservation(baseURL: baseURL, replica: replica, target: target, channel: channel)
    }

    /// Gives an unused reservation's connection back to the pool.
    public func release(_ reservation: Reservation) {
        self.pooled.checkin(reservation.channel, reservation.target)
    }

    /// Sends one request on a reservation; `completion` runs on the reservation's event loop (at
    /// once when nothing could be sent). `Host` and `Content-Length` are set (any in `headers` are
    /// left out).
    public func send(
        _ reservation: Reservation, method: HTTPMethod, pathAndQuery: String, headers: HTTPHeaders, body: ByteBuffer? = nil, timeout: Duration,
        completion: @escaping (Outcome) -> Void
    ) {
        let start = ContinuousClock.now
        let breaker = self.replicated.breaker
        let measured = self.measured
        let (baseURL, replica) = (reservation.baseURL, reservation.replica)
        self.pooled.exchangeOnLoop(
            on: reservation.channel, method: method, pathAndQuery: pathAndQuery, headers: headers, body: body, to: reservation.target,
            deadline: .now() + TimeAmount(timeout)
        ) { result in
            switch result {
            case .success(let answer):
                breaker.succeeded(replica)
                measured.recordAnswer(baseURL: baseURL, status: answer.status, duration: .now - start)
                completion(.answered(Answer(raw: answer)))
            case .failure(.timedOut):
                breaker.failed(replica, .timeout)
                measured.recordTimeout(baseURL: baseURL)
                completion(.timedOut)
            case .failure:
                completion(.failed)
            }
        }
    }
}
