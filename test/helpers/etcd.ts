import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "./netns.js";
import { freePort } from "./vm.js";
import { until } from "./wait.js";

/** PEM files: etcd's certificate and key, the CA both sides trust, and a client's certificate and key. */
export interface EtcdTls {
  ca: string;
  cert: string;
  key: string;
  clientCert: string;
  clientKey: string;
}

/**
 * Makes a CA, a server certificate for `ip` and a client certificate in `dir` (openssl, as an
 * operator would); returns their paths.
 */
export async function makeEtcdTls(dir: string, ip: string): Promise<EtcdTls> {
  mkdirSync(dir, { recursive: true });
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => run(["openssl", ...args], 30_000);
  await openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f("ca.key"), "-out", f("ca.crt"), "-days", "1", "-subj", "/CN=batu-test-ca");
  for (const [name, ext] of [["server", `subjectAltName=IP:${ip}`], ["client", "extendedKeyUsage=clientAuth"]] as const) {
    await openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f(`${name}.key`), "-out", f(`${name}.csr`), "-subj", `/CN=${name}`);
    writeFileSync(f(`${name}.ext`), `${ext}\n`);
    await openssl("x509", "-req", "-in", f(`${name}.csr`), "-CA", f("ca.crt"), "-CAkey", f("ca.key"), "-CAcreateserial", "-out", f(`${name}.crt`), "-days", "1", "-extfile", f(`${name}.ext`));
  }
  return { ca: f("ca.crt"), cert: f("server.crt"), key: f("server.key"), clientCert: f("client.crt"), clientKey: f("client.key") };
}

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
    private readonly scheme: "http" | "https" = "http",
  ) {}

  get endpoints(): string[] {
    return this.clientPorts.map((p) => `${this.scheme}://${this.ip}:${p}`);
  }

  /**
   * `size` members (default 3) on `ip`: client ports basePort, basePort + 10, ... and peer ports one
   * above each when given; else 2379... inside a namespace (`wrap`), or free ports of the loopback.
   */
  static async start(opts: { ip: string; dir: string; wrap?: string[]; basePort?: number; size?: number; tls?: EtcdTls }): Promise<EtcdCluster> {
    const size = opts.size ?? 3;
    const base = opts.basePort;
    // In a namespace of its own, etcd's usual ports; on a shared loopback, free ones, each asked for.
    const port = async (i: number, peer: 0 | 1) => (base !== undefined ? base + i * 10 + peer : opts.wrap ? 2379 + i * 10 + peer : await freePort());
    const members: { name: string; client: number; peer: number }[] = [];
    for (let i = 0; i < size; i++) members.push({ name: `e${i}`, client: await port(i, 0), peer: await port(i, 1) });
    const scheme = opts.tls ? "https" : "http";
    const cluster = new EtcdCluster(opts.ip, members.map((m) => m.client), scheme);
    const initial = members.map((m) => `${m.name}=http://${opts.ip}:${m.peer}`).join(",");
    for (const m of members) {
      const dataDir = join(opts.dir, m.name);
      mkdirSync(dataDir, { recursive: true });
      const argv = [
        ...(opts.wrap ?? []),
        "etcd",
        "--name", m.name,
        "--data-dir", dataDir,
        "--listen-client-urls", `${scheme}://${opts.ip}:${m.client}`,
        "--advertise-client-urls", `${scheme}://${opts.ip}:${m.client}`,
        ...(opts.tls ? ["--cert-file", opts.tls.cert, "--key-file", opts.tls.key, "--trusted-ca-file", opts.tls.ca, "--client-cert-auth"] : []),
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
      run([...(opts.wrap ?? []), "curl", "-s", "-m", "2", ...(opts.tls ? ["--cacert", opts.tls.ca, "--cert", opts.tls.clientCert, "--key", opts.tls.clientKey] : []), `${endpoint}/health`]).then((r) => r.stdout.includes('"health":"true"'), () => false);
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
