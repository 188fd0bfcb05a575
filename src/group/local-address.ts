import { connect } from "node:net";

/**
 * The local IP this host uses to reach `host:port`: what a peer on that network sees as our address.
 * Opens and closes one TCP connection.
 */
export function localAddressToward(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: host.replace(/^\[|\]$/g, ""), port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out connecting to ${host}:${port}`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      const local = socket.localAddress ?? "127.0.0.1";
      socket.end();
      resolve(local.replace(/^::ffff:/, ""));
    });
    socket.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** `host:port` split; the port of a normalized address is always present. */
export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(":");
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** Formats an IP and port as an address, bracketing IPv6. */
export function joinAddress(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}
