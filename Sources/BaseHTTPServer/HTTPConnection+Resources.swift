import HTTPParser
import UVLoop

/// The connection's resources over time: the exchange it borrows from the server while it
/// has work, and the deadlines one sweep timer enforces.
extension HTTPConnection {
    // MARK: The borrowed exchange

    /// Hands the exchange back to the server once nothing waits in it (between requests, or
    /// while closing), so that idle connections own none: a crowd of them costs little
    /// memory, and the busy ones share warm buffers. Called when control returns to the loop;
    /// never while parsing, which holds the exchange.
    ///
    /// The request attributes (`path`, `headers`, …) go with it: once a response is finished
    /// and the connection idle, they read as before the first request.
    func returnExchange() {
        guard let reference = handler.exchangeReference, !parsing, phase == .idle || phase == .closing,
              reference._withUnsafeGuaranteedRef({ $0.isDone }) else { return }
        giveBackExchange()
    }

    // MARK: Deadlines

    /// Enforces the deadline of the current phase; called by the server's one sweep timer.
    func checkDeadlines(now: UInt32) {
        let configuration = server.configuration
        if tcp.queuedBytes > 0, expired(writeProgressAt, configuration.writeTimeout, now) {
            abort()
            return
        }
        switch phase {
        case .head where expired(phaseSince, configuration.headTimeout, now),
             .body where expired(phaseSince, configuration.bodyTimeout, now):
            timeOut()
        case .idle where expired(phaseSince, configuration.idleTimeout, now):
            if exchange?.pending.isEmpty ?? true { closeGracefully() }
        case .closing where expired(phaseSince, 2, now):
            abort()
        default:
            break
        }
    }

    /// Whether `seconds` (0: no deadline) have passed since `since`. The times wrap every
    /// 49.7 days, which no deadline comes near, so the difference is always right.
    private func expired(_ since: UInt32, _ seconds: Double, _ now: UInt32) -> Bool {
        seconds > 0 && Double(now &- since) >= seconds * 1000
    }

    private func timeOut() {
        requestRefused = true
        phase = .handling
        handler.prepareForError(requestLine: [], work, connection: self)
        handler.sendError(408)
        handler.closeConnection = true
        finishResponse()
    }
}
