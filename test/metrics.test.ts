import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "node:https";
import { call, runCli, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { endVmTests, waitForVm } from "./helpers/vm.js";
import { until } from "./helpers/wait.js";
import { parsePrometheusText, sample, type PromText } from "../src/metrics/testing.js";

// One real agent and one demo VM (real QEMU): /metrics scraped over HTTP as Prometheus would, with
// the read-only metrics token the agent made at its first start.
const agents = new TestAgents();
let agent: AgentProcess;
let metricsToken: string;
let vmId: string;

beforeAll(async () => {
  agent = await agents.start();
  metricsToken = readFileSync(join(agent.confDir, "metrics.token"), "utf8").trim();
});
afterAll(async () => {
  if (agent) await endVmTests(agent);
  await agents.cleanup();
});

async function scrape(token = metricsToken): Promise<{ status: number; contentType: string | null; text: string }> {
  const res = await fetch(`${agent.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, contentType: res.headers.get("content-type"), text: await res.text() };
}

describe("GET /metrics on a running agent", () => {
  it("answers the metrics token (made at first start, 0600) and refuses it everywhere else", async () => {
    expect(metricsToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const r = await scrape();
    expect(r.status).toBe(200);
    expect(r.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect((await scrape("not-the-token-0123456789")).status).toBe(401);
    expect((await call(`${agent.url}/common/vm/list`, { token: metricsToken })).status).toBe(401);
    expect((await call(`${agent.url}/common/token/rotate`, { token: metricsToken, body: { token: "metrics" } })).status).toBe(401);
  });

  it("shows a running demo VM: counted as running, with its CPU seconds, memory and disk bytes", async () => {
    const add = await call(`${agent.url}/common/vm/add`, {
      token: agent.adminToken,
      body: { nickname: "scraped", cpu_physical_core: 1, main_memory: "256M", disk_memory: "1G" },
    });
    expect(add.status, JSON.stringify(add.body)).toBe(200);
    vmId = add.body.id;
    // Booted: its guest has read its disk and spent CPU time.
    await waitForVm(agent, vmId, (vm) => vm.ready === true, 120_000);
    const m: PromText = await until(
      async () => parsePrometheusText((await scrape()).text),
      (t) => (sample(t, "batu_vm_disk_read_bytes_total", { vm_id: vmId }) ?? 0) > 0,
      30_000,
      "the VM's disk reads in /metrics",
      500,
    );
    expect(sample(m, "batu_vms", { status: "running" })).toBe(1);
    expect(sample(m, "batu_vm_figures_unread", {})).toBe(0);
    expect(sample(m, "batu_vm_cpu_seconds_total", { vm_id: vmId })).toBeGreaterThan(0);
    expect(sample(m, "batu_vm_vcpus", { vm_id: vmId })).toBe(1);
    expect(sample(m, "batu_vm_memory_configured_bytes", { vm_id: vmId })).toBe(256 * 2 ** 20);
    // QEMU's resident memory: more than nothing, and a TCG guest of 256 MiB stays well under 2 GiB.
    expect(sample(m, "batu_vm_memory_used_bytes", { vm_id: vmId })).toBeGreaterThan(2 ** 20);
    expect(sample(m, "batu_vm_memory_used_bytes", { vm_id: vmId })).toBeLessThan(2 * 2 ** 30);
    expect(sample(m, "batu_vm_disk_written_bytes_total", { vm_id: vmId })).toBeGreaterThanOrEqual(0);
    expect(m.types.get("batu_vm_cpu_seconds_total")).toBe("counter");
    expect(m.types.get("batu_vms")).toBe("gauge");
    // The requests made above, by route pattern.
    expect(sample(m, "batu_http_requests_total", { method: "POST", route: "/common/vm/add", status: "200" })).toBe(1);
    expect(sample(m, "batu_http_requests_total", { method: "GET", route: "/common/vm/list", status: "401" })).toBe(1);
  });

  it("is scraped over HTTPS as docs/metrics.md configures Prometheus: the agent's certificate as CA, server name localhost", async () => {
    const ca = readFileSync(join(agent.confDir, "tls.crt"));
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port: agent.tlsPort, path: "/metrics", ca, servername: "localhost", headers: { authorization: `Bearer ${metricsToken}` } },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(200);
  });

  it("takes a rotated metrics token at once (batu token rotate metrics) and refuses the old one", async () => {
    const r = await runCli(["token", "rotate", "metrics", "--conf-dir", agent.confDir, "--port", String(agent.port)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rotated the metrics token: the new one is in .*metrics\.token/);
    const fresh = readFileSync(join(agent.confDir, "metrics.token"), "utf8").trim();
    expect(fresh).not.toBe(metricsToken);
    expect((await scrape()).status).toBe(401);
    metricsToken = fresh;
    expect((await scrape()).status).toBe(200);
  });

  it("drops a deleted VM's series and counts it no more", async () => {
    const del = await call(`${agent.url}/common/vm/control`, { token: agent.adminToken, body: { vm_id: vmId, action: "delete" } });
    expect(del.status, JSON.stringify(del.body)).toBe(200);
    const m = await until(
      async () => parsePrometheusText((await scrape()).text),
      (t) => sample(t, "batu_vms", { status: "running" }) === 0 && sample(t, "batu_vms", { status: "deleting" }) === 0,
      30_000,
      "the VM gone from /metrics",
      300,
    );
    expect(m.samples.filter((s) => s.labels.vm_id === vmId)).toEqual([]);
  });
});
