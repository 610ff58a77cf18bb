import HTTPParser
import UVLoop

/// The connection's resources over time: the deadlines one sweep timer enforces, and the
/// parser and buffers it borrows from the server while busy and gives back when idle.
extension HTTPConnection {
    // MARK: Borrowed parser and buffers

    func makeParser() -> ParserBox {
        let box = takeSpareParser() ?? ParserBox(RequestParser(limits: server.configuration.parserLimits))
        parserBox = box
        return box
    }

    private func takeSpareParser() -> ParserBox? {
        defer { server.spareParser = nil }
        return server.spareParser
    }

    /// Hands the parser and the output buffers back to the server when this connection no
    /// longer needs them (between requests), so that idle connections own none: a crowd of
    /// them costs little memory, and the busy ones share warm buffers. Called when control
    /// returns to the loop.
    func returnScratch() {
        if phase == .idle || phase == .closing, let box = parserBox {
            parserBox = nil
            if server.spareParser == nil {
                box.parser.reset()  // a closing connection's parser may hold a sticky error
                server.spareParser = box
            }
        }
        if output.isEmpty { server.recycle(&output) }
        if response.stage == .none {
            server.recycle(&response.head)
            server.recycle(&response.held)
        }
    }

    /// Gives up every buffer and the parser while the connection waits for its next request,
    /// so that a crowd of idle keep-alive connections costs little memory.
    func releaseIdleMemory() {
        parserBox = nil
        output.removeAll(keepingAtMost: 0)
        response.head.removeAll(keepingAtMost: 0)
        response.held.removeAll(keepingAtMost: 0)
        headBytes = []
        body = []
        handler.releaseIdleMemory()
    }

    // MARK: Deadlines

    /// Enforces the deadline of the current phase; called by the server's one sweep timer.
    func checkDeadlines(now: UInt64) {
        let configuration = server.configuration
        if tcp.queuedBytes > 0, expired(writeProgressAt, configuration.writeTimeout, now) {
            abort()
            return
        }
        switch phase {
        case .head where expired(phaseSince, configuration.headTimeout, now),
             .body where expired(phaseSince, configuration.bodyTimeout, now):
            timeOut()
        case .idle where pending.isEmpty && expired(phaseSince, configuration.idleTimeout, now):
            closeGracefully()
        case .idle where pending.isEmpty && output.isEmpty && tcp.queuedBytes == 0:
            releaseIdleMemory()
        case .closing where expired(phaseSince, 2, now):
            abort()
        default:
            break
        }
    }

    private func expired(_ since: UInt64, _ seconds: Double, _ now: UInt64) -> Bool {
        seconds > 0 && now >= since + UInt64(seconds * 1000)
    }

    private func timeOut() {
        requestRefused = true
        phase = .handling
        head = nil
        body = []
        handler.prepareForError(requestLine: [], connection: self)
        handler.sendError(408)
        handler.closeConnection = true
        finishResponse()
    }
}

/// A connection's parser on the heap, so that an idle connection can let it go.
final class ParserBox {
    @exclusivity(unchecked) var parser: RequestParser

    init(_ parser: RequestParser) {
        self.parser = parser
    }
}
