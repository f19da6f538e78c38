import HummingbirdCore
import Logging
import NIOCore

/// Runs a task's jobs on one NIO event loop (a `TaskExecutor` preference).
///
/// A connection handled with its own event loop as the preferred executor runs its requests on the
/// thread that reads and writes its socket, and an upstream call over a connection on the same
/// loop (``PooledHTTP1Client`` picks one) resumes there too: no hop to Swift's concurrency pool and
/// back per request. Profiled in the gateway under load, those hops (thread wake-ups and context
/// switches) were the largest single cost.
public final class EventLoopExecutor: TaskExecutor {
    let loop: any EventLoop

    public init(_ loop: any EventLoop) {
        self.loop = loop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.loop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}

/// Hummingbird's HTTP/1 channel whose connections are handled on their own event loop
/// (``EventLoopExecutor``); everything else — pipeline, limits, additional handlers — is
/// `HTTP1Channel`'s.
public struct EventLoopHTTP1Channel: ServerChildChannel {
    public typealias Value = HTTP1Channel.Value
    let base: HTTP1Channel

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        self.base.setup(channel: channel, logger: logger)
    }

    public func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopExecutor(value.channel.eventLoop)) {
            await self.base.handle(value: value, logger: logger)
        }
    }

    /// `.http1(configuration:)`, with each connection handled on its event loop.
    public static func server(configuration: HTTP1Channel.Configuration) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            EventLoopHTTP1Channel(base: HTTP1Channel(responder: responder, configuration: configuration))
        }
    }
}
