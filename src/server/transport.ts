import type { FastifyRequest } from "fastify";
import type { TLSSocket } from "node:tls";

/** Whether `ip` is this machine's loopback (127.0.0.0/8, ::1, or either mapped into IPv6). */
export function isLoopback(ip: string | undefined): boolean {
  if (!ip) return false;
  const v4 = ip.replace(/^::ffff:/i, "");
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || ip === "::1";
}

/** Whether a request came over TLS (the agent's HTTPS port). */
export function overTls(req: FastifyRequest): boolean {
  return (req.raw.socket as Partial<TLSSocket> | undefined)?.encrypted === true;
}

/**
 * Whether nothing a request carries crossed the network in clear: it came over TLS, or from this
 * machine (loopback: the local CLI). Host API calls and calls between agents need this; the renter
 * API, discovery's hello and the docs do not.
 */
export function privateTransport(req: FastifyRequest): boolean {
  return overTls(req) || isLoopback(req.socket?.remoteAddress);
}

/** The URL a caller should use instead of plain HTTP: this agent's HTTPS port on the address it reached. */
export function httpsUrlFor(req: FastifyRequest, tlsPort: number | undefined): string {
  const local = (req.socket?.localAddress ?? "").replace(/^::ffff:/i, "");
  const host = local.includes(":") ? `[${local}]` : local || "<host>";
  return `https://${host}:${tlsPort ?? 10443}`;
}
