import Hummingbird
import NIOPosix

// hummingbird-hello PORT: `GET /` answers "Hello, World!" (as bench-server), on 127.0.0.1,
// one event-loop thread (the other servers in Scripts/bench serve from one thread too), no
// request logging.
let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 8080 : 8080
let router = Router()
router.get("/") { _, _ -> String in "Hello, World!" }
let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "hummingbird"),
    eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup(numberOfThreads: 1))
)
print("hummingbird-hello listening on 127.0.0.1:\(port)")
try await app.runService()
