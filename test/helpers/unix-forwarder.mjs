// A tiny TCP forwarder the LAN test runs inside a network namespace (`ip netns exec <ns> node
// unix-forwarder.mjs <socket path> <host> <port>`): each connection accepted on the unix socket (a
// file, so reachable from the root namespace) is piped to host:port as seen from inside the
// namespace. Plain JavaScript so node runs it without a loader. Prints "ready" once listening;
// exits when its stdin closes, so it never outlives the test that started it.
import { connect, createServer } from "node:net";
import { rmSync } from "node:fs";

const [socketPath, host, portText] = process.argv.slice(2);
const port = Number(portText);
if (!socketPath || !host || !Number.isInteger(port)) {
  console.error("usage: unix-forwarder.mjs <socket path> <host> <port>");
  process.exit(2);
}

const server = createServer((client) => {
  const upstream = connect({ host, port });
  client.pipe(upstream).pipe(client);
  // An agent that is down resets the client at once, as a refused TCP connection would.
  upstream.on("error", () => client.destroy());
  client.on("error", () => upstream.destroy());
});

rmSync(socketPath, { force: true });
server.listen(socketPath, () => process.stdout.write("ready\n"));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
