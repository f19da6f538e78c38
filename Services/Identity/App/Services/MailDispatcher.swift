import Foundation
import Logging
import ServiceKit
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// Where mail goes. Without SMTP settings: `.eml` files in a local outbox directory, which
/// `streamhub outbox` prints.
public protocol MailTransport: Sendable {
    func deliver(_ mail: OutgoingMail, from: String) async throws
}

/// Writes each message as an RFC 5322 `.eml` file named by its time and id (newest sort last).
public struct OutboxDirectory: MailTransport {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public func deliver(_ mail: OutgoingMail, from: String) async throws {
        try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: true)
        let message = MailMessage.render(mail, from: from)
        let name = String(format: "%013lld", mail.createdAt) + "-" + mail.id + ".eml"
        let target = (self.path as NSString).appendingPathComponent(name)
        let temporary = target + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(message.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown)
        }
        // rename(2): readers see the whole message or none of it.
        guard rename(temporary, target) == 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw CocoaError(.fileWriteUnknown)
        }
    }
}

/// Sends queued mail off the request path: claims due messages, delivers them, marks them sent.
/// A failed delivery is retried with a growing pause (5 s, 10 s, 20 s, … at most a minute); a
/// permanent refusal (an SMTP 5xx) is not retried, and a message whose link has expired is given
/// up. Runs in every replica; each message is claimed by one.
public struct MailDispatcher: Service {
    let links: any SignInLinkRepository
    let transport: any MailTransport
    let from: String
    let interval: Duration
    /// Mail older than this carries a dead link: not worth sending any more.
    let lifetime: Int64
    let logger: Logger

    public init(
        links: any SignInLinkRepository, transport: any MailTransport, from: String, interval: Duration = .milliseconds(250),
        lifetime: Int64 = 15 * 60 * 1000, logger: Logger
    ) {
        self.links = links
        self.transport = transport
        self.from = from
        self.interval = interval
        self.lifetime = lifetime
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.deliverDue()
                try? await Task.sleep(for: self.interval)
            }
        }
    }

    func deliverDue() async {
        do {
            let now = Timestamp.millis(Date())
            for mail in try await self.links.claimDueMail(at: now, limit: 20, notBefore: now - self.lifetime) {
                do {
                    try await self.transport.deliver(mail.message, from: self.from)
                    try await self.links.markSent(id: mail.message.id, at: Timestamp.millis(Date()))
                    self.logger.info("mail sent", metadata: ["mail": "\(mail.message.id)"])
                } catch {
                    let permanent = (error as? SMTPFailure)?.permanent ?? false
                    let pause = min(Int64(60_000), 5_000 << Int64(min(mail.attempts - 1, 4)))
                    let retryAt = permanent ? nil : Timestamp.millis(Date()) + pause
                    do {
                        try await self.links.markFailed(id: mail.message.id, retryAt: retryAt, at: Timestamp.millis(Date()))
                    } catch {
                        // The claim already put it a minute out: it is retried then.
                        self.logger.warning("mail failure not recorded", metadata: ["mail": "\(mail.message.id)", "error": "\(error)"])
                    }
                    self.logger.warning(
                        permanent ? "mail refused, not retried" : "mail delivery failed, will retry",
                        metadata: ["mail": "\(mail.message.id)", "attempt": "\(mail.attempts)", "error": "\(error)"])
                }
            }
        } catch {
            // The tables may not exist yet (start-up) or the database may be away: try again shortly.
            self.logger.debug("mail outbox not readable", metadata: ["error": "\(error)"])
        }
    }
}
