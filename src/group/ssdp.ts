/**
 * The SSDP messages of group discovery: pure formatting and parsing, no sockets (see discovery.ts).
 *
 * The original server found its master by SSDP; batu keeps the protocol (an M-SEARCH multicast to
 * 239.255.255.250:1900, unicast `HTTP/1.1 200 OK` answers) so standard tools such as
 * `gssdp-discover` see batu masters, and adds three headers: the group name, the asker's challenge,
 * and the master's proof over it (join-proof.ts). No secret is ever in a datagram.
 */

export const SSDP_ADDRESS = "239.255.255.250";
export const SSDP_PORT = 1900;
/** The search target of a batu group master. */
export const MASTER_ST = "urn:batu-cloud:service:group-master:1";

export interface Search {
  /** Only the master of this group should answer; null: any batu master. */
  groupName: string | null;
  challenge: string;
}

export interface Answer {
  nodeId: string;
  groupName: string;
  /** The port of the master's agent (its HTTP API). */
  port: number;
  proof: string;
}

const CRLF = "\r\n";
const HEX = /^[0-9a-f]+$/;

export function formatSearch(s: Search): string {
  return [
    "M-SEARCH * HTTP/1.1",
    `HOST: ${SSDP_ADDRESS}:${SSDP_PORT}`,
    'MAN: "ssdp:discover"',
    "MX: 1",
    `ST: ${MASTER_ST}`,
    ...(s.groupName !== null ? [`X-BATU-GROUP: ${s.groupName}`] : []),
    `X-BATU-CHALLENGE: ${s.challenge}`,
    "",
    "",
  ].join(CRLF);
}

export function formatAnswer(a: Answer, host: string, serverVersion: string): string {
  return [
    "HTTP/1.1 200 OK",
    "CACHE-CONTROL: max-age=60",
    "EXT:",
    `ST: ${MASTER_ST}`,
    `USN: uuid:batu-${a.nodeId.slice(0, 32)}::${MASTER_ST}`,
    `LOCATION: http://${host.includes(":") ? `[${host}]` : host}:${a.port}/master/group/hello`,
    `SERVER: Linux UPnP/1.0 batu/${serverVersion}`,
    `X-BATU-NODE-ID: ${a.nodeId}`,
    `X-BATU-GROUP: ${a.groupName}`,
    `X-BATU-PORT: ${a.port}`,
    `X-BATU-PROOF: ${a.proof}`,
    "",
    "",
  ].join(CRLF);
}

/** The start line and headers (names lower-cased) of one SSDP datagram; null when it is not one. */
function parseMessage(text: string): { startLine: string; headers: Map<string, string> } | null {
  if (text.length > 4096) return null;
  const lines = text.split(/\r?\n/);
  const startLine = lines.shift()?.trim();
  if (!startLine) return null;
  const headers = new Map<string, string>();
  for (const line of lines) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return { startLine, headers };
}

/** A batu master search, or null for anything else (other SSDP traffic is common on a LAN). */
export function parseSearch(text: string): Search | null {
  const m = parseMessage(text);
  if (!m || !/^M-SEARCH \* HTTP\/1\.1$/i.test(m.startLine)) return null;
  if (m.headers.get("st") !== MASTER_ST) return null;
  const challenge = m.headers.get("x-batu-challenge") ?? "";
  if (challenge.length < 16 || challenge.length > 128 || !HEX.test(challenge)) return null;
  const group = m.headers.get("x-batu-group");
  return { groupName: group === undefined || group === "" ? null : group, challenge };
}

/** A batu master's answer, or null for anything else. */
export function parseAnswer(text: string): Answer | null {
  const m = parseMessage(text);
  if (!m || !/^HTTP\/1\.1 200/i.test(m.startLine) || m.headers.get("st") !== MASTER_ST) return null;
  const nodeId = m.headers.get("x-batu-node-id") ?? "";
  const groupName = m.headers.get("x-batu-group") ?? "";
  const port = Number(m.headers.get("x-batu-port"));
  const proof = m.headers.get("x-batu-proof") ?? "";
  if (!/^[0-9a-f]{64}$/.test(nodeId) || !groupName || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  if (!/^[0-9a-f]{64}$/.test(proof)) return null;
  return { nodeId, groupName, port, proof };
}
