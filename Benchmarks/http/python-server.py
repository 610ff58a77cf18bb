"""Python peer for Scripts/bench: `python3 python-server.py PORT`.

http.server's ThreadingHTTPServer (one thread per connection), HTTP/1.1 keep-alive,
GET / -> 200 "Hello, World!" with Content-Length 13, request logging off.
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b"Hello, World!"


class HelloHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY the second one waits
    # for the client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        if self.close_connection:
            # http.server closes after a `Connection: close` request but does not say so;
            # wrk would then send its next request into the closed socket (a read error).
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 4096  # listen backlog; the default of 5 drops SYNs under load


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    server = Server(("127.0.0.1", port), HelloHandler)
    print(f"python-server listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()
