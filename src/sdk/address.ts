/** The host API's port (seed 000). */
export const DEFAULT_AGENT_PORT = 10000;

/** `1.2.3.4` → `1.2.3.4:10000`; `1.2.3.4:10001` stays; IPv6 in brackets keeps its brackets. */
export function normalizeAddress(address: string): string {
  const a = address.trim().replace(/^https?:\/\//, "").replace(/\/+$/, "");
  if (/^\[.*\]:\d+$/.test(a) || /^[^:]+:\d+$/.test(a)) return a;
  if (a.startsWith("[") || !a.includes(":")) return `${a}:${DEFAULT_AGENT_PORT}`;
  return `[${a}]:${DEFAULT_AGENT_PORT}`; // a bare IPv6 address
}

/** The address as seed 000 writes it in host_config.json: a bare IP when the port is the default. */
export function seedAddress(address: string): string {
  const n = normalizeAddress(address);
  return n.endsWith(`:${DEFAULT_AGENT_PORT}`) ? n.slice(0, -`:${DEFAULT_AGENT_PORT}`.length) : n;
}

export function baseUrl(address: string, scheme: "http" | "https" = "http"): string {
  return `${scheme}://${normalizeAddress(address)}`;
}
