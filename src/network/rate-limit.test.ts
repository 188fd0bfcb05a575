/**
 * Tap caps rendered, then applied to real taps in a network namespace made for the test (needs root,
 * `ip`, `tc` and `nft`; skipped otherwise), and read back from the kernel.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exec } from "../lib/exec.js";
import { burstBytes, renderRateTable, tbfArgs, TapRateLimits } from "./rate-limit.js";

describe("rendering", () => {
  it("renders one ingress chain per capped tap, in bytes, and always replaces the table whole", () => {
    const script = renderRateTable([{ tap: "bt-b", mbit: 100 }, { tap: "bt-a", mbit: 8 }]);
    expect(script).toBe(
      [
        "table netdev batu_rate {}",
        "delete table netdev batu_rate",
        "table netdev batu_rate {",
        "  chain up_bt_a {",
        '    type filter hook ingress device "bt-a" priority 0; policy accept;',
        "    limit rate over 1000000 bytes/second burst 65536 bytes drop",
        "  }",
        "  chain up_bt_b {",
        '    type filter hook ingress device "bt-b" priority 0; policy accept;',
        "    limit rate over 12500000 bytes/second burst 625000 bytes drop",
        "  }",
        "}",
        "",
      ].join("\n"),
    );
    expect(renderRateTable([])).toBe("table netdev batu_rate {}\ndelete table netdev batu_rate\n");
  });

  it("shapes the guest's download with a tbf of 50 ms of burst, at least 64 KiB", () => {
    expect(tbfArgs("bt-a", 1000)).toEqual(["qdisc", "replace", "dev", "bt-a", "root", "tbf", "rate", "1000mbit", "burst", "6250000", "latency", "50ms"]);
    expect(burstBytes(1)).toBe(65_536);
  });
});

function whyNotRunnable(): string | null {
  if (process.getuid?.() !== 0) return "not root";
  for (const [tool, flag] of [["ip", "-V"], ["nft", "--version"], ["tc", "-V"]] as const) {
    if (spawnSync(tool, [flag]).status !== 0) return `${tool} is not installed`;
  }
  return null;
}
const skipReason = whyNotRunnable();
if (skipReason !== null) console.warn(`rate-limit.test.ts kernel part skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)("in a kernel", () => {
  const ns = `batu-rate-${process.pid}-${randomBytes(3).toString("hex")}`;
  const inNs = (...args: string[]) => exec("ip", ["netns", "exec", ns, ...args]);

  beforeAll(async () => {
    await exec("ip", ["netns", "add", ns]);
    for (const tap of ["bt-a", "bt-b"]) await inNs("ip", "tuntap", "add", "dev", tap, "mode", "tap");
  });
  afterAll(async () => {
    await exec("ip", ["netns", "del", ns]).catch(() => undefined);
  });

  it("caps each tap both ways, changes a cap, and lifts one", async () => {
    const limits = new TapRateLimits({ netns: ns });
    await limits.apply([{ tap: "bt-a", mbit: 100 }, { tap: "bt-b", mbit: 8 }]);
    expect(await limits.read("bt-a")).toEqual({ down_mbit: 100, up_mbit: 100 });
    expect(await limits.read("bt-b")).toEqual({ down_mbit: 8, up_mbit: 8 });

    await limits.apply([{ tap: "bt-a", mbit: 40 }, { tap: "bt-b", mbit: null }]);
    expect(await limits.read("bt-a")).toEqual({ down_mbit: 40, up_mbit: 40 });
    expect(await limits.read("bt-b")).toEqual({ down_mbit: null, up_mbit: null });

    // A new agent (nothing in memory) converges to what it is told, whatever the last one left.
    const again = new TapRateLimits({ netns: ns });
    await limits.apply([{ tap: "bt-a", mbit: 40 }, { tap: "bt-b", mbit: 8 }]);
    await again.apply([{ tap: "bt-a", mbit: null }, { tap: "bt-b", mbit: 20 }]);
    expect(await again.read("bt-b")).toEqual({ down_mbit: 20, up_mbit: 20 });
    expect(await again.read("bt-a")).toEqual({ down_mbit: null, up_mbit: null });

    await again.close();
    expect((await inNs("nft", "list", "tables")).stdout).not.toContain("batu_rate");
  });
});
