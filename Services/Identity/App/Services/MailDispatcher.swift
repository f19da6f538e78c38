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
        let date = Date(timeIntervalSince1970: TimeInterval(mail.createdAt) / 1000)
        let message = """
            From: \(from)\r
            To: \(mail.recipient)\r
            Subject: \(mail.subject)\r
            Date: \(date.formatted(.iso8601))\r
            Message-ID: <\(mail.id)@streamhub>\r
            MIME-Version: 1.0\r
            Content-Type: text/plain; charset=utf-8\r
            \r
            \(mail.body.replacingOccurrences(of: "\n", with: "\r\n"))\r

            """
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

/// Sends queued mail off the request path: claims due messages, delivers them, marks them sent;
/// a failed delivery is retried a minute later. Runs in every replica; each message is claimed by one.
public struct MailDispatcher: Service {
    let links: any SignInLinkRepository
    let transport: any MailTransport
    let from: String
    let interval: Duration
    let logger: Logger

    public init(links: any SignInLinkRepository, transport: any MailTransport, from: String, interval: Duration = .milliseconds(250), logger: Logger) {
        self.links = links
        self.transport = transport
        self.from = from
        self.interval = interval
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
            for mail in try await self.links.claimDueMail(at: Timestamp.millis(Date()), limit: 20) {
                do {
                    try await self.transport.deliver(mail, from: self.from)
                    try await self.links.markSent(id: mail.id, at: Timestamp.millis(Date()))
                    self.logger.info("mail sent", metadata: ["mail": "\(mail.id)"])
                } catch {
                    self.logger.warning("mail delivery failed, will retry", metadata: ["mail": "\(mail.id)", "error": "\(error)"])
                }
            }
        } catch {
            // The tables may not exist yet (start-up) or the database may be away: try again shortly.
            self.logger.debug("mail outbox not readable", metadata: ["error": "\(error)"])
        }
    }
}
