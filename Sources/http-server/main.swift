// The http-server command arrives with SimpleHTTPRequestHandler.
