import { createServer, type Server } from "node:net";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { call, type AgentProcess } from "./agent-process.js";
import { until } from "./wait.js";

/** A free TCP port on loopback, found by binding port 0. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Holds a TCP port on all interfaces until closed (a port "in use on the host"). */
export function holdPort(): Promise<{ port: number; server: Server }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "0.0.0.0", () => resolve({ port: (server.address() as { port: number }).port, server }));
  });
}

/** True when the pid is a live process (a zombie is not). */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

export function qemuPid(agent: AgentProcess, vmId: string): number | undefined {
  const f = join(agent.dataDir, "vms", vmId, "qemu.pid");
  return existsSync(f) ? Number(readFileSync(f, "utf8").trim()) : undefined;
}

export async function listVms(agent: AgentProcess): Promise<any[]> {
  const r = await call(`${agent.url}/common/vm/list`, { token: agent.adminToken });
  if (r.status !== 200) throw new Error(`list failed: ${JSON.stringify(r)}`);
  return r.body;
}

/** Polls the VM list until `pred` holds for the VM, or fails after timeoutMs. */
export async function waitForVm(agent: AgentProcess, id: string, pred: (vm: any) => boolean, timeoutMs = 60_000): Promise<any> {
  const vms = await until(
    () => listVms(agent),
    (list) => list.some((v) => v.id === id && pred(v)),
    timeoutMs,
    `vm ${id} in the expected state`,
    200,
  );
  return vms.find((v) => v.id === id);
}

export function control(agent: AgentProcess, body: unknown) {
  return call(`${agent.url}/common/vm/control`, { token: agent.adminToken, body });
}

/** GET http://127.0.0.1:port/ with a timeout; the status, or 0 when nothing answered. */
export async function httpStatus(port: number, timeoutMs = 3000): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}

/** Rents the agent's node to `wallet` for an hour (the operator's grant); throws when refused. */
export async function grantNode(agent: AgentProcess, wallet: string): Promise<void> {
  const g = await call(`${agent.url}/common/rent/grant`, {
    token: agent.adminToken,
    body: { node_id: agent.nodeId, wallet, until: new Date(Date.now() + 3600_000).toISOString() },
  });
  if (g.status !== 200) throw new Error(`rent/grant: ${g.status} ${JSON.stringify(g.body)}`);
}

/** A test file's end: prints the errors the agent logged (what to read first when a test failed) and deletes its VMs (they outlive the agent by design). */
export async function endVmTests(agent: AgentProcess): Promise<void> {
  const errors = agent.logs().split("\n").filter((l) => /"level":(50|60)/.test(l));
  if (errors.length) console.error(errors.join("\n"));
  for (const vm of await listVms(agent).catch(() => [])) await control(agent, { vm_id: vm.id, action: "delete" });
}
