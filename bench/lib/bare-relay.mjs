// The floor of a routed call: a bare node:http server that relays each POST, as is, to the member
// over one kept TLS connection (as a master does, without its checks), and streams the reply back.
// Usage: node bare-relay.mjs <member-host> <member-tls-port>; prints "port <n>" once listening.
import { createServer } from "node:http";
import { Agent, request } from "node:https";

const [host, port] = [process.argv[2], Number(process.argv[3])];
const agent = new Agent({ keepAlive: true, maxFreeSockets: 4, rejectUnauthorized: false });
const server = createServer((req, res) => {
  const upstream = request({ host, port, method: req.method, path: req.url, headers: { "content-type": "application/json", "content-length": req.headers["content-length"] }, agent }, (reply) => {
    res.writeHead(reply.statusCode ?? 502, { "content-type": reply.headers["content-type"] ?? "application/json", "content-length": reply.headers["content-length"] });
    reply.pipe(res);
  });
  upstream.on("error", () => res.writeHead(502).end());
  req.pipe(upstream);
});
server.keepAliveTimeout = 5_000;
server.listen(0, "127.0.0.1", () => console.log(`port ${server.address().port}`));
process.stdin.on("end", () => process.exit(0)).resume();
