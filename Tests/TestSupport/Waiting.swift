/// Waiting on a condition with a deadline (tests never sleep a fixed time).
public enum Waiting {
    /// Checks `condition` every 50 ms until it holds. - Throws: ``TimedOut`` past `deadline`.
    public static func until(deadline: Duration, _ what: String, _ condition: () async throws -> Bool) async throws {
        let end = ContinuousClock.now + deadline
        while ContinuousClock.now < end {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TimedOut(description: "timed out waiting for \(what)")
    }

    public struct TimedOut: Error, CustomStringConvertible {
        public var description: String
    }
}
