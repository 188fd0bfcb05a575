/**
 * In-process measurements of the pieces of the two calls, on an idle machine, to explain the wrk
 * figures: the qemu-img child of the detail, the session signature check of every request, and
 * the store read + JSON of the list.
 */
import Database from "better-sqlite3";
import { ok } from "../../src/api/v1/envelope.js";
import { verifySignature } from "../../src/auth/signature.js";
import { taskDetail, taskSummary } from "../../src/server/routes/v1/task-view.js";
import { VmRepo } from "../../src/vm/repo.js";
import { cpuDelta, procCpu } from "./api-agent.js";
import { run } from "./proc.js";
import { quantile } from "./stats.js";

const med = (xs: number[]) => quantile(xs, 0.5)!;

/** Median wall ms of `fn` over `n` calls (after 3 unmeasured ones). */
async function timeIt(n: number, fn: () => unknown): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    xs.push(performance.now() - t);
  }
  return med(xs);
}

export interface Probes {
  /** `qemu-img info --output=json -U vda.qcow2`, one after another: wall ms and CPU ms (the child's) per call. */
  qemuImgInfo: { n: number; wallMs: number; cpuMs: number };
  /** One sr25519 verification of the session id's signature (every request with a session id does one). */
  sessionVerifyMs: number;
  /** The list's handler work, 1,000 rows: SELECT alone, repo.list() (SELECT + JSON.parse of each spec), then filter + map + JSON.stringify. */
  list: { selectMs: number; repoListMs: number; shapeAndStringifyMs: number; replyBytes: number };
  /** The detail's handler work without qemu-img: repo.get + taskDetail + JSON.stringify. */
  detailNoDiskMs: number;
}

export async function runProbes(o: {
  dbPath: string;
  owner: string;
  detailId: string;
  diskPath: string;
  sessionId: string;
  sessionSign: string;
  publicKey: Uint8Array;
}): Promise<Probes> {
  const n = 40;
  const walls: number[] = [];
  const before = procCpu("self");
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await run("qemu-img", ["info", "--output=json", "-U", o.diskPath]);
    walls.push(performance.now() - t);
  }
  const qemuImgInfo = { n, wallMs: med(walls), cpuMs: (cpuDelta(before, procCpu("self")).children * 1000) / n };

  const sessionVerifyMs = await timeIt(300, () => {
    if (!verifySignature(o.sessionId, o.sessionSign, o.publicKey)) throw new Error("session signature does not verify");
  });

  const db = new Database(o.dbPath, { readonly: true, fileMustExist: true });
  try {
    const repo = new VmRepo(db);
    const selectMs = await timeIt(30, () => db.prepare("SELECT * FROM vms ORDER BY created_at, id").all());
    const repoListMs = await timeIt(30, () => repo.list());
    const all = repo.list();
    let replyBytes = 0;
    const shapeAndStringifyMs = await timeIt(30, () => {
      replyBytes = Buffer.byteLength(JSON.stringify(ok(all.filter((v) => v.owner === o.owner).map(taskSummary))));
    });
    const detailNoDiskMs = await timeIt(300, () => JSON.stringify(ok(taskDetail(repo.get(o.detailId)!, "127.0.0.1", 20 * 2 ** 30))));
    return { qemuImgInfo, sessionVerifyMs, list: { selectMs, repoListMs, shapeAndStringifyMs, replyBytes }, detailNoDiskMs };
  } finally {
    db.close();
  }
}
