import Database from "better-sqlite3";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { newLoginPassword, newVmId } from "../../src/vm/create-request.js";
import { DEMO_IMAGE } from "../../src/vm/images.js";
import type { VmSpec } from "../../src/vm/spec.js";
import { run } from "./proc.js";

const GiB = 2 ** 30;
const DESCS = ["training box", "inference worker", "ci runner", "jupyter notebook", "render node"];

/** A spec as batu stores one for a DBC `tasks/start` (src/vm/allocate.ts specFrom): linux, ssh + vnc + one custom port. */
export function syntheticSpec(i: number): VmSpec {
  const loginPassword = newLoginPassword();
  const cores = [2, 4, 8][i % 3]!;
  return {
    imageName: DEMO_IMAGE,
    cpu: { cores, threads: 1 },
    memoryMiB: cores * 2048,
    dataDiskBytes: i % 2 === 0 ? 100 * GiB : null,
    dataFileName: null,
    biosMode: "legacy",
    os: "linux",
    ports: {
      ssh: 20000 + i,
      rdp: null,
      vnc: 5900 + i,
      custom: [{ proto: "tcp", hostPort: 21000 + i, guestPort: 8888 }],
    },
    gpuCount: 0,
    startCommand: "",
    desc: `bench task ${String(i).padStart(4, "0")}: ${DESCS[i % DESCS.length]}`,
    loginUser: "root",
    loginPassword,
    vncPassword: loginPassword.slice(0, 8),
    multicast: [],
    networkName: null,
  };
}

export interface Seeded {
  ids: string[];
  ms: number;
  systemDiskBytes: number;
}

/**
 * Writes `count` closed tasks of `owner` straight into the (stopped) agent's store, with their
 * port reservations, two lifecycle log lines each and a system disk (`vms/<id>/vda.qcow2`, a qcow2
 * overlay on `baseImage` of 20 GiB, as batu's linked clones are). The rows carry no
 * `system_disk_bytes`, like records made before batu kept it: the first detail of a task reads its
 * real image once and stores the size. Nothing boots: a closed task without QEMU stays closed at agent start.
 */
export async function seedTasks(opts: { dataDir: string; root: string; owner: string; count: number; baseImage: string }): Promise<Seeded> {
  const t0 = performance.now();
  const systemDiskBytes = 20 * GiB;
  let base = opts.baseImage;
  if (!existsSync(base)) {
    base = join(opts.root, "base.qcow2");
    await run("qemu-img", ["create", "-q", "-f", "qcow2", base, "2G"]);
  }
  const template = join(opts.root, "vda-template.qcow2");
  await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", template, String(systemDiskBytes)]);

  const db = new Database(join(opts.dataDir, "batu.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("foreign_keys = ON");
  const ids: string[] = [];
  const day = 86_400_000;
  const start = Date.now() - 30 * day;
  try {
    const vm = db.prepare(
      `INSERT INTO vms (id, task_id, nickname, owner, image_name, spec_json, status, ready, pid, started_at, created_at, updated_at, last_error)
       VALUES (?, ?, '', ?, ?, ?, 'closed', 0, NULL, ?, ?, ?, NULL)`,
    );
    const port = db.prepare("INSERT INTO vm_ports (port, proto, vm_id, kind) VALUES (?, ?, ?, ?)");
    const log = db.prepare("INSERT INTO vm_log (vm_id, at, line) VALUES (?, ?, ?)");
    db.transaction(() => {
      for (let i = 0; i < opts.count; i++) {
        const id = newVmId();
        const spec = syntheticSpec(i);
        const created = new Date(start + (i * 30 * day) / opts.count);
        const started = new Date(created.getTime() + 2_000).toISOString();
        const closed = new Date(created.getTime() + 3_600_000).toISOString();
        vm.run(id, id, opts.owner, spec.imageName, JSON.stringify(spec), started, created.toISOString(), closed);
        port.run(spec.ports.ssh, "tcp", id, "ssh");
        port.run(spec.ports.vnc, "tcp", id, "vnc");
        for (const c of spec.ports.custom) port.run(c.hostPort, c.proto, id, "custom");
        log.run(id, created.toISOString(), "created");
        log.run(id, closed, "closed (guest powered off)");
        ids.push(id);
      }
    })();
  } finally {
    db.close();
  }
  for (const id of ids) {
    const dir = join(opts.dataDir, "vms", id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    copyFileSync(template, join(dir, "vda.qcow2"));
  }
  return { ids, ms: performance.now() - t0, systemDiskBytes };
}
