import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { run } from "./netns.js";
import { until } from "./wait.js";

/**
 * An etcd cluster (Debian's etcd-server; three members unless told) on one address, each member on its own ports,
 * run under `wrap` (a network namespace). Stopped by `stop()`, which SIGKILLs only these processes.
 */
export class EtcdCluster {
  private readonly children: ChildProcess[] = [];
  private output = "";

  private constructor(
    readonly ip: string,
    readonly clientPorts: number[],
  ) {}

  get endpoints(): string[] {
    return this.clientPorts.map((p) => `http://${this.ip}:${p}`);
  }

  /** `size` members (default 3) on `ip`, client ports basePort, basePort + 10, ...; peer ports one above each. */
  static async start(opts: { ip: string; dir: string; wrap?: string[]; basePort?: number; size?: number }): Promise<EtcdCluster> {
    const base = opts.basePort ?? 2379;
    const members = Array.from({ length: opts.size ?? 3 }, (_, i) => i).map((i) => ({ name: `e${i}`, client: base + i * 10, peer: base + i * 10 + 1 }));
    const cluster = new EtcdCluster(opts.ip, members.map((m) => m.client));
    const initial = members.map((m) => `${m.name}=http://${opts.ip}:${m.peer}`).join(",");
    for (const m of members) {
      const dataDir = join(opts.dir, m.name);
      mkdirSync(dataDir, { recursive: true });
      const argv = [
        ...(opts.wrap ?? []),
        "etcd",
        "--name", m.name,
        "--data-dir", dataDir,
        "--listen-client-urls", `http://${opts.ip}:${m.client}`,
        "--advertise-client-urls", `http://${opts.ip}:${m.client}`,
        "--listen-peer-urls", `http://${opts.ip}:${m.peer}`,
        "--initial-advertise-peer-urls", `http://${opts.ip}:${m.peer}`,
        "--initial-cluster", initial,
        "--initial-cluster-state", "new",
        "--initial-cluster-token", "batu-test",
        // Quick elections on a loaded two-core machine, without flapping.
        "--heartbeat-interval", "100",
        "--election-timeout", "1000",
        "--log-level", "warn",
      ];
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
      child.stdout!.on("data", (b: Buffer) => (cluster.output += b.toString()));
      child.stderr!.on("data", (b: Buffer) => (cluster.output += b.toString()));
      cluster.children.push(child);
    }
    // Asked from where etcd runs (the test itself may be outside its namespace): each member healthy.
    const healthy = (endpoint: string) =>
      run([...(opts.wrap ?? []), "curl", "-s", "-m", "2", `${endpoint}/health`]).then((r) => r.stdout.includes('"health":"true"'), () => false);
    try {
      await until(async () => (await Promise.all(cluster.endpoints.map(healthy))).every(Boolean), (ok) => ok, 30_000, "etcd healthy", 200);
    } catch (e) {
      await cluster.stop();
      throw new Error(`etcd did not start: ${(e as Error).message}\n${cluster.output.slice(-3000)}`);
    }
    return cluster;
  }

  logs(): string {
    return this.output;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.splice(0).map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once("exit", () => resolve());
            c.kill("SIGKILL");
          }),
      ),
    );
  }
}
