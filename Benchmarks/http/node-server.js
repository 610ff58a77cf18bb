// Node peer for Scripts/bench: `node node-server.js PORT`. One process, Node's `http`,
// GET / -> 200 "Hello, World!" with Content-Length 13, keep-alive held for an hour.
'use strict';
const http = require('http');

const port = Number(process.argv[2] || 8080);
const body = 'Hello, World!';
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 3600 * 1000;
server.headersTimeout = 3601 * 1000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
  console.log(`node-server listening on 127.0.0.1:${port}`);
});
