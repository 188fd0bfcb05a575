import { Agent, type AgentOptions } from "node:https";
import { connect, type ConnectionOptions, type TLSSocket } from "node:tls";
import type { Duplex } from "node:stream";
import { createHash } from "node:crypto";

/** Where another agent serves TLS, and the certificate it must present (pinned by its node id). */
export interface TlsEndpoint {
  port: number;
  /** SHA-256 of the certificate (DER), 64 lowercase hex characters. */
  sha256: string;
}

/** How long a TLS handshake may take once connected, unless the caller bounds it tighter. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** The peer presented a certificate other than the one pinned: nothing was sent to it. */
export class TlsPinError extends Error {
  constructor(
    readonly expected: string,
    readonly got: string,
  ) {
    super(`its TLS certificate (sha256 ${got.slice(0, 16)}…) is not the one pinned for it (sha256 ${expected.slice(0, 16)}…)`);
    this.name = "TlsPinError";
  }
}

/**
 * An https.Agent that trusts exactly one certificate, by its SHA-256: agents' certificates are
 * self-signed, so no CA or host name says anything; the pin, learnt under the peer's node key, does.
 * A connection is handed to the request only after the handshake and the pin check, so not one byte
 * of a request (a forwarded call, a heartbeat, a join) reaches a peer with another certificate.
 * Sessions are never resumed: every connection shows its certificate. Keep-alive pools per pin.
 */
export class PinnedTlsAgent extends Agent {
  constructor(
    readonly sha256: string,
    opts: AgentOptions = {},
    private readonly handshakeTimeoutMs = TLS_HANDSHAKE_TIMEOUT_MS,
  ) {
    super({ ...opts, maxCachedSessions: 0 });
  }

  // Node's Agent takes a socket from this callback when the method returns nothing (lib/_http_agent.js).
  override createConnection(options: ConnectionOptions, callback?: (err: Error | null, socket: Duplex) => void): Duplex {
    // servername "": no SNI (the host is an IP, and no name is checked anyway).
    const socket: TLSSocket = connect({ ...options, rejectUnauthorized: false, servername: "", session: undefined });
    let settled = false;
    const done = (err: Error | null) => {
      if (settled) return;
      settled = true;
      socket.off("timeout", onTimeout);
      socket.off("error", done);
      // Back to the pool's idle bound (none unless the agent has one).
      socket.setTimeout(options.timeout ?? 0);
      if (err) {
        socket.on("error", () => undefined); // a late error of a socket given up on is nobody's
        socket.destroy();
      }
      callback?.(err, socket);
    };
    const onTimeout = () => done(new Error(`no TLS handshake within ${this.handshakeTimeoutMs} ms`));
    socket.setTimeout(this.handshakeTimeoutMs);
    socket.on("timeout", onTimeout);
    socket.once("error", done);
    socket.once("secureConnect", () => {
      const got = createHash("sha256").update(socket.getPeerCertificate().raw).digest("hex");
      done(got === this.sha256 ? null : new TlsPinError(this.sha256, got));
    });
    return undefined as unknown as Duplex;
  }
}
