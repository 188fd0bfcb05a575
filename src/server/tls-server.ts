import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { FastifyInstance } from "fastify";
import { SERVER_LIMITS } from "./limits.js";

export interface TlsServerOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  /** PEM. */
  key: string;
  cert: string;
  requestTimeoutMs: number;
}

/** The agent's HTTPS side: the same app as its plain port, over TLS. */
export interface TlsServer {
  server: Server;
  port: number;
  /** Stops accepting, ends idle connections now and the rest after their request (or at `force`). */
  close(): Promise<void>;
  /** Ends every connection still open (event streams included). */
  force(): void;
}

/**
 * Serves `app` over TLS too: every route (the host API, calls between agents, the renter API), through
 * Fastify's own request handler, so hooks, validation and errors are the plain port's. The client
 * bounds of server/limits.ts apply here as there. The certificate is self-signed: peers pin it.
 */
export async function serveTls(app: FastifyInstance, opts: TlsServerOptions): Promise<TlsServer> {
  const server = createServer(
    {
      key: opts.key,
      cert: opts.cert,
      minVersion: "TLSv1.2",
      requestTimeout: opts.requestTimeoutMs,
      headersTimeout: Math.min(SERVER_LIMITS.headersTimeoutMs, opts.requestTimeoutMs),
      keepAliveTimeout: SERVER_LIMITS.keepAliveTimeoutMs,
      connectionsCheckingInterval: SERVER_LIMITS.checkingIntervalMs,
      // A peer that connects and never finishes its handshake is cut off like a silent client.
      handshakeTimeout: SERVER_LIMITS.headersTimeoutMs,
    },
    (req, res) => app.routing(req, res),
  );
  // WebSocket upgrades (the console's VNC) go where @fastify/websocket listens for them, the app's own
  // server: it routes them through the same hooks, which see the TLS socket.
  server.on("upgrade", (req, socket, head) => app.server.emit("upgrade", req, socket, head));
  server.maxConnections = SERVER_LIMITS.maxConnections;
  server.setTimeout(SERVER_LIMITS.idleTimeoutMs);
  // A malformed request or a failed handshake costs its socket, never the agent (as Fastify does on the plain port).
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === "ECONNRESET" || !socket.writable) return void socket.destroy();
    socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  });
  server.on("tlsClientError", (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
    force: () => server.closeAllConnections(),
  };
}
