import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SQLKit
import ServiceKit
import ServiceStorage
import Shared
import TestSupport
import Testing

@testable import IdentityApp

@Suite("Invitation mail: who sent it, the tenant's name quoted")
struct InvitationMailTests {
    @Test("a user-written name is quoted on one line, at most 60 characters, with every link-like word removed")
    func quoting() {
        #expect(MailText.quoted("Acme Streaming Inc.") == #""Acme Streaming Inc.""#)
        #expect(
            MailText.quoted("URGENT: verify your account at https://evil.example now")
                == #""URGENT: verify your account at [link removed] now""#)
        for link in ["evil.example", "www.evil", "x@evil.example", "mailto:x", "HTTP://A", "sub.evil.co/path", "a1.io"] {
            #expect(MailText.quoted("go \(link) today") == #""go [link removed] today""#, "\(link)")
        }
        #expect(MailText.quoted("v1.2 release, 3.5 stars") == #""v1.2 release, 3.5 stars""#)
        #expect(MailText.quoted("line\u{2028}break\u{200B}and\u{7}bell \"quoted\"") == #""line break and bell 'quoted'""#)
        // Found by fuzzing: a combining mark first joined the opening quote.
        #expect(MailText.quoted("\u{07F1}\u{0301}Acme").unicodeScalars.first == "\"")
        #expect(MailText.quoted("\u{07F1}\u{0301}Acme") == #""Acme""#)
        #expect(MailText.quoted("\u{0349}\u{0349}mailto:x") == #""[link removed]""#)
        let long = MailText.quoted(String(repeating: "name ", count: 30))
        #expect(long.count == 62 && long.hasSuffix("…\""))
    }

    @Test("the invitation names the inviter and quotes a hostile tenant name", arguments: TestDatabases.backends)
    func invitation(backend: String) async throws {
        try await SignInLimitTests().withIdentity(backend, settings: [:]) { h in
            let hostile = "URGENT: verify your account at https://evil.example or lose it"
            let signup = try await h.post(
                "/api/v1/auth/signup", #"{"email":"owner@example.com","password":"correct horse battery","name":"\#(hostile)"}"#)
            #expect(signup.status == .created)
            let body = try h.json(signup)
            let userId = try #require((body["user"] as? [String: Any])?["id"] as? String)
            let tenantId = try #require(body["tenantId"] as? String)
            let owner = Principal(kind: .user, scope: .tenant, subject: "user:\(userId)", tenantId: tenantId)
            try await IdentityHarness.markVerified(h.database, "owner@example.com")
            let invite = try await h.post("/api/v1/tenants/\(tenantId)/members", #"{"email":"new@example.com","role":"viewer"}"#, as: owner)
            #expect(invite.status == .created)
            struct Row: Decodable { var body: String }
            let mail = try #require(
                try await h.database.withSQL { sql in
                    try await sql.raw("SELECT body FROM identity_mail_outbox WHERE recipient = 'new@example.com'").first(decoding: Row.self)
                }
            ).body
            #expect(mail.hasPrefix(#"owner@example.com invited you to the StreamHub tenant "URGENT: verify your account at [link removed] or lose it"."#))
            #expect(!mail.contains("evil.example"))
            #expect(mail.contains("If you do not know who sent this, ignore it"))
            // A tenant named after its owner's email (the default) is not quoted as "[link removed]".
            let plain = try h.json(try await h.post("/api/v1/auth/signup", #"{"email":"plain@example.com","password":"correct horse battery"}"#))
            let plainOwner = Principal(
                kind: .user, scope: .tenant, subject: "user:\(try #require((plain["user"] as? [String: Any])?["id"] as? String))",
                tenantId: plain["tenantId"] as? String)
            let plainTenant = try #require(plain["tenantId"] as? String)
            try await IdentityHarness.markVerified(h.database, "plain@example.com")
            #expect(try await h.post("/api/v1/tenants/\(plainTenant)/members", #"{"email":"second@example.com","role":"viewer"}"#, as: plainOwner).status == .created)
            let second = try #require(
                try await h.database.withSQL { sql in
                    try await sql.raw("SELECT body FROM identity_mail_outbox WHERE recipient = 'second@example.com'").first(decoding: Row.self)
                }
            ).body
            #expect(second.hasPrefix("plain@example.com invited you to their StreamHub tenant."))
        }
    }
}
