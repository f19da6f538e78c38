/// One test process runs every suite at once; on two cores, the end-to-end stacks (five processes
/// each) starve the timers of tests that measure a timing window. Both take this lock: a stack
/// and a timing-window test never run together (stacks already run one at a time).
public actor HeavyLoad {
    public static let shared = HeavyLoad()

    var busy = false
    var waiters: [CheckedContinuation<Void, Never>] = []

    public func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await self.acquire()
        defer { self.release() }
        return try await body()
    }

    public func acquire() async {
        guard self.busy else {
            self.busy = true
            return
        }
        await withCheckedContinuation { self.waiters.append($0) }
    }

    public func release() {
        if self.waiters.isEmpty {
            self.busy = false
        } else {
            self.waiters.removeFirst().resume()
        }
    }
}
