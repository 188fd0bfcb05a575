import { request } from "node:http";

/**
 * One HTTP request over a unix socket (node:http `socketPath`): how the test, in the root network
 * namespace, talks to an agent in another one through a forwarder. The URL's host only fills the
 * Host header; its path and query are what the server sees.
 */
export function requestOverSocket(
  socketPath: string,
  url: string,
  opts: { method: string; headers: Record<string, string>; body?: string | undefined; timeoutMs?: number },
): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method: opts.method,
        path: `${u.pathname}${u.search}`,
        headers: { host: u.host, ...opts.headers, ...(opts.body === undefined ? {} : { "content-length": String(Buffer.byteLength(opts.body)) }) },
        timeout: opts.timeoutMs ?? 30_000,
        // A fresh connection each time: the forwarder pipes each one to the agent as it is now.
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${opts.method} ${url} via ${socketPath}: no reply in ${opts.timeoutMs ?? 30_000} ms`)));
    req.on("error", (e) => reject(new Error(`${opts.method} ${url} via ${socketPath}: ${e.message} (is the agent there up?)`)));
    req.end(opts.body);
  });
}
