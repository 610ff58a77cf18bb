/// A handler class that reads a value of its own type given to its server: the canned answers
/// of a test double, a store, a configuration.
///
/// Declare the type the handlers need, and give the value when the server is made:
///
/// ```swift
/// final class Stubs: Sendable { … }
///
/// final class StubHandler: BaseHTTPRequestHandler, ContextualHandler {
///     typealias Context = Stubs
///     override func doGET() throws { let answer = context.answer(for: path) … }
/// }
///
/// let server = try HTTPServer(("127.0.0.1", 0), StubHandler.self, context: Stubs())
/// ```
///
/// The server's initializer takes only `Handler.Context`, so a value of another type does not
/// compile. Each server has its own value: parallel tests do not share one. The value is
/// `Sendable` because the server's thread reads it while the thread that made it may still
/// hold it; state that changes belongs in a `Mutex` or an actor inside it.
public protocol ContextualHandler: BaseHTTPRequestHandler {
    /// The type of the value the server is given (`HTTPServer(_:_:context:tls:)`).
    associatedtype Context: Sendable
}

extension ContextualHandler {
    /// The value given to the server as `context:`.
    public var context: Context {
        guard let context = server.handlerContext as? Context else {
            // Only a server made without `context:` gets here, and `serveForever()` stops such
            // a server first, with the same message.
            fatalError(HTTPServer.missingContextMessage(for: Self.self))
        }
        return context
    }
}

extension HTTPServer {
    /// Binds `address` and listens, like `init(_:_:tls:)`, and keeps `context` for the
    /// handlers to read as `context`.
    /// - Parameters:
    ///   - address: the host and the port (0 for any free port).
    ///   - handler: the handler class; one instance serves each connection.
    ///   - context: the value every handler of this server reads as `context`.
    ///   - tls: a certificate chain and key to serve HTTPS with instead of HTTP.
    /// - Throws: as `init(_:_:tls:)`.
    public convenience init<Handler: ContextualHandler>(
        _ address: (host: String, port: Int), _ handler: Handler.Type, context: Handler.Context,
        tls: TLSConfiguration? = nil
    ) throws {
        try self.init(address, handler, tls: tls)
        handlerContext = context
    }

    /// Stops a server whose handler class reads a context it was not given, before the
    /// first request, rather than in a handler.
    func checkHandlerContext() {
        if handlerContext == nil, let contextual = handlerType as? any ContextualHandler.Type {
            fatalError(HTTPServer.missingContextMessage(for: contextual))
        }
    }

    static func missingContextMessage(for handler: any ContextualHandler.Type) -> String {
        "\(handler) reads a context, and this server was made without one: "
            + "make it with HTTPServer(_:_:context:)"
    }
}
