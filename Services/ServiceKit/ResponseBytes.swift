import HTTPTypes
import NIOCore

/// An HTTP/1.1 response head written as bytes, for the fast paths that answer without NIO's
/// encoder (`MediaRawFastPath`, the gateway's `GatewayFastPathHandler`).
extension ByteBuffer {
    /// `HTTP/1.1 <code> <reason>` and its line end, as NIO's encoder writes it.
    public mutating func writeStatusLine(_ status: HTTPResponse.Status) {
        self.writeStaticString("HTTP/1.1 ")
        self.writeString(String(status.code))
        self.writeStaticString(" ")
        self.writeString(status.reasonPhrase)
        self.writeStaticString("\r\n")
    }

    /// `name: value` and its line end; `value` must hold no line break (the callers' values are
    /// their own or a parsed header's).
    public mutating func writeHeader(_ name: String, _ value: String) {
        self.writeString(name)
        self.writeStaticString(": ")
        self.writeString(value)
        self.writeStaticString("\r\n")
    }
}
