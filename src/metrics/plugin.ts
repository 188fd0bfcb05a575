import type { FastifyInstance } from "fastify";
import type { TransferredBytes } from "../image/center.js";
import type { AppDeps } from "../server/deps.js";
import { AppMetrics } from "./registry.js";
import { readVmFigures, VM_FIGURES_BOUND_MS } from "./vm-figures.js";

/** The route label of a request no route matched: raw URLs never become labels (one series per scanner's guess). */
const UNMATCHED_ROUTE = "(unmatched)";

export interface MetricsOptions {
  /** How long a scrape waits for the VMs' live figures; default VM_FIGURES_BOUND_MS. */
  vmFiguresBoundMs?: number;
}

/**
 * Adds `GET /metrics` (Prometheus text format; the admin token or the read-only metrics token) and
 * the hooks that count requests to the app, with a registry of its own. Call before any route is
 * registered: the request hook counts every route.
 */
export function installMetrics(app: FastifyInstance, deps: AppDeps, opts: MetricsOptions = {}): AppMetrics {
  const metrics = new AppMetrics();

  app.addHook("onResponse", async (req, reply) => {
    const labels = { method: req.method, route: req.routeOptions.url ?? UNMATCHED_ROUTE, status: String(reply.statusCode) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
  });

  const unsubscribe: Array<() => void> = [];
  if (deps.forwards) unsubscribe.push(deps.forwards.onForward((o) => metrics.forwardDuration.observe({ outcome: o.outcome }, o.seconds)));
  const onBytes = (b: TransferredBytes) => metrics.imageBytes.inc({ direction: b.direction }, b.bytes);
  deps.images.on("bytes", onBytes);
  unsubscribe.push(() => deps.images.off("bytes", onBytes));
  app.addHook("onClose", async () => {
    for (const u of unsubscribe) u();
  });

  app.get(
    "/metrics",
    {
      config: { auth: "metrics" },
      schema: {
        summary: "Prometheus metrics of this agent (docs/metrics.md)",
        description:
          "Requests by route pattern and status, VMs by status, each running VM's CPU, memory, disk and network " +
          "counters (read from QEMU at each scrape, within a bound), the group's members by state and their heartbeat " +
          "age (on a master), forwarded calls' latency, image bytes moved, and the agent process's own figures. " +
          "Takes the admin token or the read-only metrics token (conf/metrics.token), which opens nothing else.",
        tags: ["host"],
      },
    },
    async (_req, reply) => {
      metrics.setVms(await readVmFigures(deps.vmQueries, opts.vmFiguresBoundMs ?? VM_FIGURES_BOUND_MS));
      metrics.setMembers(deps.group.isMaster ? deps.group.list() : undefined, deps.group.now());
      return reply.header("content-type", metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );
  return metrics;
}
