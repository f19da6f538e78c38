import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL

/// How identity reaches an SMTP server: `SMTP_HOST`, `SMTP_PORT`, `SMTP_SECURITY`
/// (`starttls` | `tls` | `none`), `SMTP_USERNAME` / `SMTP_PASSWORD` (AUTH PLAIN or LOGIN) and
/// `SMTP_CA_FILE` (PEM trust roots instead of the system's, for a private CA).
public struct SMTPSettings: Sendable {
    public enum Security: String, Sendable, CaseIterable {
        /// Plain connection upgraded with STARTTLS; a server that does not offer it is refused
        /// (never a silent downgrade). Port 587 by default.
        case starttls
        /// TLS from the first byte ("SMTPS"). Port 465 by default.
        case tls
        /// No TLS at all: only for a relay on the same host or network. Port 25 by default.
        case none

        public var defaultPort: Int {
            switch self {
            case .starttls: 587
            case .tls: 465
            case .none: 25
            }
        }
    }

    public var host: String
    public var port: Int
    public var security: Security
    public var username: String?
    public var password: String?
    public var caFile: String?
    /// The name identity gives in EHLO.
    public var heloName: String
    /// Connect, and then each reply of the server, must come within this time.
    public var timeout: TimeAmount

    public init(
        host: String, port: Int? = nil, security: Security = .starttls, username: String? = nil, password: String? = nil,
        caFile: String? = nil, heloName: String = "streamhub.localdomain", timeout: TimeAmount = .seconds(30)
    ) {
        self.host = host
        self.port = port ?? security.defaultPort
        self.security = security
        self.username = username
        self.password = password
        self.caFile = caFile
        self.heloName = heloName
        self.timeout = timeout
    }
}

/// Why a delivery failed. `permanent` (a 5xx reply) is not retried.
public struct SMTPFailure: Error, CustomStringConvertible {
    public var description: String
    public var permanent: Bool
}

/// Sends each message in one SMTP session (RFC 5321) over SwiftNIO: EHLO, STARTTLS when asked,
/// AUTH PLAIN or LOGIN, MAIL FROM, RCPT TO, DATA with dot-stuffing, QUIT.
public struct SMTPTransport: MailTransport {
    public let settings: SMTPSettings
    let tls: NIOSSLContext?

    /// Fails at start-up (not at the first mail) when the TLS settings cannot be used.
    public init(settings: SMTPSettings) throws {
        self.settings = settings
        if settings.security == .none {
            self.tls = nil
        } else {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let caFile = settings.caFile {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            self.tls = try NIOSSLContext(configuration: configuration)
        }
    }

    public func deliver(_ mail: OutgoingMail, from: String) async throws {
        let settings = self.settings
        let tls = self.tls
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(settings.timeout)
            .connect(host: settings.host, port: settings.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if settings.security == .tls, let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: settings.tlsHostname))
                    }
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: settings.timeout))
                    try channel.pipeline.syncOperations.addHandler(CloseWhenIdle())
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let raw = channel.channel
        try await channel.executeThenClose { inbound, outbound in
            var session = SMTPSession(lines: inbound.makeAsyncIterator(), outbound: outbound)
            try await session.expect(220, after: "connecting")
            var capabilities = try await session.command("EHLO \(settings.heloName)", expect: [250])
            if settings.security == .starttls {
                guard capabilities.contains(where: { $0.uppercased() == "STARTTLS" }), let tls else {
                    throw SMTPFailure(description: "\(settings.host):\(settings.port) does not offer STARTTLS (set SMTP_SECURITY=none for a plain relay)", permanent: false)
                }
                _ = try await session.command("STARTTLS", expect: [220])
                // TLS goes under everything else; the server says nothing more until the handshake.
                try await raw.eventLoop.submit {
                    try raw.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: settings.tlsHostname), position: .first)
                }.get()
                capabilities = try await session.command("EHLO \(settings.heloName)", expect: [250])
            }
            if let username = settings.username {
                try await session.authenticate(username: username, password: settings.password ?? "", capabilities: capabilities)
            }
            let eightBit = capabilities.contains { $0.uppercased() == "8BITMIME" }
            _ = try await session.command("MAIL FROM:<\(MailMessage.address(of: from))>" + (eightBit ? " BODY=8BITMIME" : ""), expect: [250])
            _ = try await session.command("RCPT TO:<\(mail.recipient)>", expect: [250, 251])
            _ = try await session.command("DATA", expect: [354])
            try await session.send(MailMessage.dotStuffed(MailMessage.render(mail, from: from)) + ".\r\n")
            try await session.expect(250, after: "the message")
            // The message is accepted; a server that closes without answering QUIT changes nothing.
            _ = try? await session.command("QUIT", expect: [221])
        }
    }
}

extension SMTPSettings {
    /// SNI and certificate name: none for an IP address.
    var tlsHostname: String? {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, self.host, &v4) == 1 || inet_pton(AF_INET6, self.host, &v6) == 1 { return nil }
        return self.host
    }
}

/// One SMTP conversation: commands out, replies (multi-line `250-…` up to `250 …`) in.
struct SMTPSession {
    var lines: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    mutating func reply() async throws -> (code: Int, lines: [String]) {
        var texts: [String] = []
        while true {
            guard let buffer = try await self.lines.next() else {
                throw SMTPFailure(description: "the SMTP server closed the connection", permanent: false)
            }
            let line = String(buffer: buffer)
            guard line.utf8.count >= 3, let code = Int(line.prefix(3)) else {
                throw SMTPFailure(description: "unreadable SMTP reply \(line.prefix(80).debugDescription)", permanent: false)
            }
            texts.append(String(line.dropFirst(4)))
            if line.utf8.count == 3 || line.dropFirst(3).first == " " { return (code, texts) }
        }
    }

    mutating func expect(_ code: Int, after what: String) async throws {
        let answer = try await self.reply()
        guard answer.code == code else { throw Self.failure(answer, after: what) }
    }

    /// Sends `line` and returns the reply's text lines (EHLO's are the server's capabilities).
    mutating func command(_ line: String, expect codes: Set<Int>, shown: String? = nil) async throws -> [String] {
        try await self.send(line + "\r\n")
        let answer = try await self.reply()
        guard codes.contains(answer.code) else { throw Self.failure(answer, after: shown ?? String(line.prefix(4))) }
        return answer.lines
    }

    func send(_ text: String) async throws {
        try await self.outbound.write(ByteBuffer(string: text))
    }

    mutating func authenticate(username: String, password: String, capabilities: [String]) async throws {
        let mechanisms = Set(
            capabilities.filter { $0.uppercased().hasPrefix("AUTH ") || $0.uppercased().hasPrefix("AUTH=") }
                .flatMap { $0.dropFirst(5).uppercased().split(separator: " ").map(String.init) })
        if mechanisms.contains("PLAIN") {
            let credentials = Data(([0] + Array(username.utf8) + [0] + Array(password.utf8))).base64EncodedString()
            _ = try await self.command("AUTH PLAIN \(credentials)", expect: [235], shown: "AUTH PLAIN")
        } else if mechanisms.contains("LOGIN") {
            _ = try await self.command("AUTH LOGIN", expect: [334])
            _ = try await self.command(Data(username.utf8).base64EncodedString(), expect: [334], shown: "AUTH LOGIN user name")
            _ = try await self.command(Data(password.utf8).base64EncodedString(), expect: [235], shown: "AUTH LOGIN password")
        } else {
            throw SMTPFailure(description: "the SMTP server offers neither AUTH PLAIN nor AUTH LOGIN (offered: \(mechanisms.sorted()))", permanent: true)
        }
    }

    /// Never echoes what was sent (it may be a credential), only the server's answer.
    static func failure(_ answer: (code: Int, lines: [String]), after what: String) -> SMTPFailure {
        SMTPFailure(
            description: "SMTP server answered \(answer.code) \(answer.lines.joined(separator: " ").prefix(200)) after \(what)",
            permanent: (500...599).contains(answer.code))
    }
}

/// Closes the connection when the server has been silent for the read timeout.
final class CloseWhenIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// The RFC 5322 text of a message, shared by the outbox files and SMTP.
enum MailMessage {
    static func render(_ mail: OutgoingMail, from: String) -> String {
        let date = Date(timeIntervalSince1970: TimeInterval(mail.createdAt) / 1000)
        let body = mail.body.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n")
        return """
            From: \(from)\r
            To: \(mail.recipient)\r
            Subject: \(mail.subject)\r
            Date: \(Self.rfc5322Date(date))\r
            Message-ID: <\(mail.id)@streamhub>\r
            MIME-Version: 1.0\r
            Content-Type: text/plain; charset=utf-8\r
            Content-Transfer-Encoding: 8bit\r
            \r
            \(body)\r

            """
    }

    /// `Fri, 27 Nov 2026 16:46:00 +0000`.
    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter.string(from: date)
    }

    /// The bare address of `Name <address>` (or the whole string when it has no angle brackets).
    static func address(of mailbox: String) -> String {
        guard let open = mailbox.lastIndex(of: "<"), let close = mailbox.lastIndex(of: ">"), open < close else {
            return mailbox.trimmingCharacters(in: .whitespaces)
        }
        return String(mailbox[mailbox.index(after: open)..<close])
    }

    /// RFC 5321 §4.5.2: a line starting with "." gets one more, so no line of the body ends DATA.
    static func dotStuffed(_ message: String) -> String {
        message.split(separator: "\r\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix(".") ? "." + $0 : String($0) }
            .joined(separator: "\r\n")
    }
}
