import Foundation
import Hummingbird
import ServiceKit
import Shared

/// `POST /api/v1/webhooks/livekit`: LiveKit's events keep stream state and viewer counts true.
///
/// The gateway forwards the client's `Authorization` header and the body untouched; the
/// signature is checked over exactly those bytes before anything is parsed (missing, bad or
/// stale → 401). Then the body must be a LiveKit `WebhookEvent` (400 otherwise); unknown events
/// are accepted and ignored; a repeated event id changes nothing.
public struct WebhookController<Context: ServiceRequestContextProtocol>: Sendable {
    let verifier: LiveKitWebhookVerifier
    let events: SQLStreamEvents
    let timeSource: any TimeSource

    public init(verifier: LiveKitWebhookVerifier, events: SQLStreamEvents, timeSource: any TimeSource = SystemTimeSource()) {
        self.verifier = verifier
        self.events = events
        self.timeSource = timeSource
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.post("webhooks/livekit", use: self.receive)
    }

    @Sendable func receive(_ request: Request, context: Context) async throws -> Response {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: 1 << 20)
        } catch {
            throw ServiceError(.contentTooLarge, message: "Webhook body is larger than 1048576 bytes")
        }
        let now = self.timeSource.now()
        try self.verifier.verify(authorization: request.headers[.authorization], body: body.readableBytesView, now: now)
        let event: LiveKitEvent
        do {
            event = try JSONDecoder().decode(LiveKitEvent.self, from: Data(buffer: body))
        } catch {
            throw ServiceError.badRequest("Webhook body is not a LiveKit event")
        }
        let outcome = try await self.events.apply(event, at: Timestamp.millis(now))
        context.logger.info(
            "livekit webhook", metadata: ["event": "\(event.event)", "id": "\(event.id ?? "-")", "room": "\(event.room?.name ?? "-")", "outcome": "\(outcome.rawValue)"])
        return try JSONResponse.make(WebhookReceipt(event: event.event, outcome: outcome.rawValue))
    }
}
