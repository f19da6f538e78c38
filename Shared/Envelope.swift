/// The success envelope every enveloped public route answers with: `{"data": …, "error": null}`.
///
/// Errors never use the envelope; they use ``ErrorBody``.
public struct Envelope<Payload: Codable & Sendable>: Codable, Sendable {
    public var data: Payload
    /// Always `null` on the wire; present so clients can rely on the key.
    public var error: String?

    public init(data: Payload) {
        self.data = data
        self.error = nil
    }

    enum CodingKeys: String, CodingKey { case data, error }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.data, forKey: .data)
        // Encoded explicitly so the key is present as `null`, as the overview shows.
        try container.encodeNil(forKey: .error)
    }
}

extension Envelope: Equatable where Payload: Equatable {}
