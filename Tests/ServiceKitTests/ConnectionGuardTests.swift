import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import ServiceKit

/// `ConnectionGuard` with its `RequestHeadWatch` behind NIO's own HTTP/1 decoder, on an embedded
/// channel whose clock the test moves: byte-exact input, exact times.
@Suite("Connection guard: idle and head timeouts")
struct ConnectionGuardTests {
    /// The guard, NIO's decoder, the watch: as the gateway's child channel has them.
    func channel(idle: Int64 = 30, head: Int64? = 10) throws -> EmbeddedChannel {
        let limits = ConnectionLimits(maxConnections: 10, idleTimeout: .seconds(idle), headTimeout: head.map { .seconds($0) })
        let connectionGuard = ConnectionGuard(limits: limits)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(connectionGuard)
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
        if let watch = connectionGuard.headWatch() { try channel.pipeline.syncOperations.addHandler(watch) }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    func send(_ channel: EmbeddedChannel, _ text: String) throws {
        try channel.writeInbound(channel.allocator.buffer(string: text))
    }

    @Test("a head trickled a byte a second is closed once it is 10 s old, though the connection is never idle")
    func trickledHead() throws {
        let channel = try self.channel()
        try self.send(channel, "GET /api/v1/health HTTP/1.1\r\nHost: a.test\r\nX-Slow: ")
        for second in 1...9 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(1))
            #expect(channel.isActive, "closed after \(second) s")
            try self.send(channel, "x")
        }
        // Ticks every 5 s: the one at 10 s finds the head 10 s old.
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test("the wait between keep-alive requests is not head time; each head's clock starts with its first bytes")
    func keepAliveWaitIsNotHeadTime() throws {
        let channel = try self.channel()
        try self.send(channel, "GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n")
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self).map { if case .head = $0 { true } else { false } } == true)
        // 25 s idle (under the 30 s idle timeout), then a head that takes 8 s: both allowed.
        channel.embeddedEventLoop.advanceTime(by: .seconds(25))
        #expect(channel.isActive)
        try self.send(channel, "GET /b HTTP/1.1\r\n")
        for _ in 0..<4 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(2))
            try self.send(channel, "X-A: b\r\n")
        }
        try self.send(channel, "Host: a.test\r\n\r\n")
        #expect(channel.isActive)
        // Pipelined heads in one read, then a third head held unfinished: 10 s after its bytes.
        try self.send(channel, "GET /c HTTP/1.1\r\nHost: a.test\r\n\r\nGET /d HTTP/1.1\r\nHost: a.test\r\n\r\n")
        try self.send(channel, "GET /e HTTP/1.1\r\nHo")
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(!channel.isActive)
    }

    @Test("without a head timeout only the idle timeout closes: silence for 1 to 1.5 of it")
    func idleOnly() throws {
        let channel = try self.channel(idle: 4, head: nil)
        try self.send(channel, "GET /a HTTP/1.1\r\nHost: a")
        for _ in 0..<5 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(1))
            try self.send(channel, "a")
        }
        #expect(channel.isActive, "a trickle is not idle")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(3900))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }

    @Test("with a head timeout shorter than the idle one, idleness still waits the whole idle timeout")
    func idleWithShortHeadTimeout() throws {
        let channel = try self.channel(idle: 8, head: 2)
        try self.send(channel, "GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n")
        // Ticks every second; idle closes after 8 silent ticks (8 to 9 s), not after 2.
        channel.embeddedEventLoop.advanceTime(by: .seconds(7))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }
}
