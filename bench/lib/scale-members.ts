/**
 * The simulated members' side of the group-wide VM list (bench:scale): what a master calls when it
 * lists the group's VMs is `POST /slave/group/vms` on each member, over TLS to the certificate pinned
 * for it. One HTTPS server in the bench process answers for all of them: each member has its own TLS
 * port on 127.0.0.1 (a plain listener that hands its connections to the one server), so the port a
 * call arrives on says which member is asked. Each member checks the master's proof (the MAC with the
 * session key it agreed, or the master's node-key signature) with batu's own ForwardVerifier, as a
 * member agent does, and answers with its VMs (serialized once: a member's own cost is not measured).
 */
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { createServer as createNetServer, type Server as NetServer } from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { VmItem } from "../../src/api/host-vm.js";
import { ForwardVerifier } from "../../src/group/forward.js";
import { MEMBER_VMS_PATH } from "../../src/group/group-vms.js";
import type { SessionKeys } from "../../src/group/session-keys.js";
import type { TlsIdentity } from "../../src/auth/tls-identity.js";

const STATUSES = ["running", "running", "running", "closed", "creating", "starting"] as const;
const IMAGES = ["ubuntu-22.04", "ubuntu-24.04", "debian-12", "batu-demo"] as const;

/** `count` VMs of member `member`, as a member's `toItem` shows them (fields and value shapes of VmItem). */
export function simVms(member: number, count: number): VmItem[] {
  return Array.from({ length: count }, (_, j) => {
    const n = member * count + j;
    return {
      id: `vm-${String(member).padStart(4, "0")}-${String(j).padStart(3, "0")}`,
      nickname: `sim-${member}-${j}`,
      cpu_physical_core: [1, 2, 4, 8][n % 4]!,
      cpu_virtual_core: [2, 4, 8, 16][n % 4]!,
      main_memory: ["2G", "4G", "8G", "16G"][n % 4]!,
      disk_memory: ["0", "20G", "100G"][n % 3]!,
      start_command: "",
      status: STATUSES[n % STATUSES.length]!,
      ready: n % STATUSES.length < 3,
      image_name: IMAGES[n % IMAGES.length]!,
      gpu_count: n % 5 === 0 ? 1 : 0,
      ssh_port: 20000 + (n % 40000),
      vnc_port: 5900 + j,
      custom_port: n % 3 === 0 ? [`${30000 + j}:80`] : [],
      created_at: new Date(Date.UTC(2026, 10, 1) + n * 1000).toISOString(),
      owner: n % 2 === 0 ? `5Grenter${String(n % 997).padStart(40, "x")}` : null,
    };
  });
}

export interface VmServingMember {
  nodeId: string;
  tlsPort: number;
  vms: VmItem[];
}

/** What the members answered, for the bench's checks. */
export interface ServedCounts {
  answered: number;
  refused: number;
}

/** The TLS side of all simulated members. */
export class SimVmServers {
  readonly counts: ServedCounts = { answered: 0, refused: 0 };
  private readonly server: HttpsServer;
  private readonly listeners: NetServer[] = [];
  private readonly byPort = new Map<number, { verifier: ForwardVerifier; body: Buffer }>();

  private constructor(identity: TlsIdentity) {
    this.server = createHttpsServer({ key: identity.key, cert: identity.cert, keepAliveTimeout: 5_000 }, (req, res) => this.answer(req, res));
  }

  /**
   * Listens on each member's TLS port (127.0.0.1 only). `sessions(nodeId)`: the member's side of its
   * session keys once it agreed one (its MACed calls are checked with it); `masterNodeId`: whose calls it takes.
   */
  static async start(identity: TlsIdentity, members: VmServingMember[], masterNodeId: string, sessions: (nodeId: string) => SessionKeys | undefined): Promise<SimVmServers> {
    const s = new SimVmServers(identity);
    for (const m of members) {
      // One verifier per member: its own seen nonces, its own session keys (read at each call: agreed later).
      const verifier = new ForwardVerifier(() => masterNodeId, undefined, undefined, lazySessions(() => sessions(m.nodeId)));
      s.byPort.set(m.tlsPort, { verifier, body: Buffer.from(JSON.stringify(m.vms)) });
      const listener = createNetServer((socket) => s.server.emit("connection", socket));
      await new Promise<void>((ok, fail) => {
        listener.once("error", fail);
        listener.listen(m.tlsPort, "127.0.0.1", () => ok());
      });
      s.listeners.push(listener);
    }
    return s;
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const member = this.byPort.get(req.socket.localPort ?? 0);
      const send = (status: number, body: Buffer | string) => {
        res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
        res.end(body);
      };
      if (!member || req.method !== "POST" || req.url !== MEMBER_VMS_PATH) return send(404, `{"message":"not found"}`);
      // As the member route checks it: the body as JSON text (the master sends "{}").
      const bodyText = JSON.stringify(JSON.parse(Buffer.concat(chunks).toString("utf8") || "null"));
      try {
        member.verifier.verify(req.headers, "POST", req.url, bodyText);
      } catch (e) {
        this.counts.refused++;
        return send(401, JSON.stringify({ message: (e as Error).message }));
      }
      this.counts.answered++;
      send(200, member.body);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.listeners.map((l) => new Promise<void>((ok) => l.close(() => ok()))));
    this.server.closeAllConnections();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }
}

/** A SessionKeys view that reads the member's keys at each call (they are agreed after the servers start). */
function lazySessions(of: () => SessionKeys | undefined): SessionKeys {
  return { get: (peer: string, id: string) => of()?.get(peer, id) } as unknown as SessionKeys;
}
