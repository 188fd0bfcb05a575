import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// The agent's systemd unit as scripts/setup.sh --systemd installs it (no systemd needed to check it).
const ROOT = resolve(import.meta.dirname, "..");
const render = (...args: string[]) => spawnSync(join(ROOT, "scripts/systemd-unit.sh"), args, { encoding: "utf8" });
const hasAnalyze = spawnSync("systemd-analyze", ["--version"]).status === 0;

describe("batu-agent.service", () => {
  const unit = render(ROOT, process.execPath);

  it("runs this checkout's agent on its conf and data dirs, and never takes the VMs down with it", () => {
    expect(unit.status, unit.stderr).toBe(0);
    const lines = unit.stdout.split("\n");
    expect(lines).toContain(`WorkingDirectory=${ROOT}`);
    expect(lines).toContain(`ExecStart=${process.execPath} ${ROOT}/dist/cli/main.js agent --conf-dir ${ROOT}/conf --data-dir ${ROOT}/data`);
    expect(lines).toContain("KillMode=process");
    expect(lines).toContain("Restart=on-failure");
    expect(lines).toContain("WantedBy=multi-user.target");
    expect(unit.stdout).not.toContain("@");
  });

  it("refuses paths a unit file cannot hold as they are", () => {
    expect(render("relative/dir", process.execPath).status).toBe(2);
    expect(render("/a dir/with space", process.execPath).status).toBe(2);
    expect(render(ROOT, "/usr/bin/node;rm").status).toBe(2);
  });

  it.skipIf(!hasAnalyze)("passes systemd-analyze verify without a warning (and a broken one does not)", () => {
    const dir = mkdtempSync(join(tmpdir(), "batu-unit-"));
    const verify = (text: string) => {
      writeFileSync(join(dir, "batu-agent.service"), text);
      return spawnSync("systemd-analyze", ["verify", join(dir, "batu-agent.service")], { encoding: "utf8" });
    };
    const good = verify(unit.stdout);
    expect(good.status, good.stderr).toBe(0);
    expect(good.stderr.trim()).toBe("");
    const bad = verify(unit.stdout.replace("KillMode=process", "KillMode=processes"));
    expect(bad.stderr).toMatch(/kill mode/i);
  });

  it("is installed only on request: setup.sh refuses an unknown flag before doing anything", () => {
    const r = spawnSync(join(ROOT, "scripts/setup.sh"), ["--sytemd"], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/usage: .*\[--systemd\]/);
  });
});
