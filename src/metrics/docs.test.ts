import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { AppMetrics } from "./registry.js";

// docs/metrics.md and the Grafana dashboard name the metrics the code has, and only those.
const ROOT = resolve(import.meta.dirname, "../..");
const doc = readFileSync(resolve(ROOT, "docs/metrics.md"), "utf8");
const dashboard = JSON.parse(readFileSync(resolve(ROOT, "docs/grafana/batu.json"), "utf8")) as { panels: Array<{ type: string; targets?: Array<{ expr: string }> }> };
const metrics = new AppMetrics();
const families = new Map(metrics.registry.getMetricsAsArray().map((m) => [m.name, (m as unknown as { type: string }).type ?? ""]));
const SERIES_SUFFIXES = ["", "_bucket", "_sum", "_count"];

describe("the metrics' documentation", () => {
  it("lists every batu metric in docs/metrics.md, and no metric the agent does not have", () => {
    const ours = [...families.keys()].filter((n) => n.startsWith("batu_"));
    expect(ours.length).toBeGreaterThan(15);
    for (const name of ours) expect(doc, name).toContain(`| \`${name}\` |`);
    const documented = [...doc.matchAll(/^\| `(batu_[a-z_]+)` \|/gm)].map((m) => m[1]!);
    expect(documented.sort()).toEqual(ours.sort());
  });

  it("has a dashboard whose every query names metrics the agent serves", () => {
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(15);
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:batu|process|nodejs)_[a-z_]+)/g)].map((m) => m[1]!)));
    for (const series of used) {
      const family = SERIES_SUFFIXES.map((s) => (s && series.endsWith(s) ? series.slice(0, -s.length) : series)).find((f) => families.has(f));
      expect(family, series).toBeDefined();
    }
    // Every batu family shows somewhere on it.
    for (const name of families.keys()) if (name.startsWith("batu_")) expect([...used].some((u) => u.startsWith(name)), name).toBe(true);
  });
});
