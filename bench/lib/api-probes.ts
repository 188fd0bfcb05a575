/**
 * In-process measurements of the pieces of the two calls, on an idle machine, to explain the wrk
 * figures: the qemu-img child a detail once needed per request (now only on the first read of a
 * record that lacks the size), the session signature check in full and remembered, the store read +
 * JSON of the list, and the list answered from memory (what every request but the first after a
 * change to the vms table costs).
 */
import { u8aToHex } from "@polkadot/util";
import Database from "better-sqlite3";
import { ok } from "../../src/api/v1/envelope.js";
import { verifySignature } from "../../src/auth/signature.js";
import { VerifiedSignatures } from "../../src/auth/verified-signatures.js";
import { taskDetail, TaskReplies, taskSummary } from "../../src/server/routes/v1/task-view.js";
import { VmRepo } from "../../src/vm/repo.js";
import { readOnlyVms } from "../../src/vm/testing.js";
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
  /** One sr25519 verification of the session id's signature (a session signature's first request). */
  sessionVerifyMs: number;
  /** The same signature again, answered by VerifiedSignatures (every later request). */
  sessionRememberedMs: number;
  /**
   * The list's store read, 1,000 rows: the old way (repo.list(), every VM with JSON.parse of each spec,
   * then filtered) and the current one (repo.summariesByOwner()); then map + JSON.stringify. `keptMs`:
   * the same reply from memory (TaskReplies.list hit, its version check included).
   */
  list: { repoListMs: number; summariesMs: number; shapeAndStringifyMs: number; replyBytes: number; keptMs: number };
  /** The detail's handler work: repo.get + taskDetail (disk size from the record) + JSON.stringify. */
  detailMs: number;
  /** The detail's parts: the record read alone, read + shape + stringify, and the reply from memory (TaskReplies.detail hit). */
  detail: { readMs: number; readShapeStringifyMs: number; keptMs: number };
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
  const remembered = new VerifiedSignatures();
  const signer = u8aToHex(o.publicKey);
  const sessionRememberedMs = await timeIt(3000, () => {
    if (!remembered.verify(o.sessionId, signer, o.sessionSign)) throw new Error("session signature does not verify");
  });

  const db = new Database(o.dbPath, { readonly: true, fileMustExist: true });
  try {
    const repo = new VmRepo(db);
    const repoListMs = await timeIt(30, () => repo.list().filter((v) => v.owner === o.owner));
    const summariesMs = await timeIt(30, () => repo.summariesByOwner(o.owner));
    const summaries = repo.summariesByOwner(o.owner);
    let replyBytes = 0;
    const shapeAndStringifyMs = await timeIt(30, () => {
      replyBytes = Buffer.byteLength(JSON.stringify(ok(summaries.map(taskSummary))));
    });
    // The agent's read path over the same file: only its reads are used (nothing here boots or writes).
    const replies = new TaskReplies(readOnlyVms(db).queries);
    const keptMs = await timeIt(3000, () => replies.list(o.owner));
    if (!replies.list(o.owner).equals(Buffer.from(JSON.stringify(ok(summaries.map(taskSummary)))))) {
      throw new Error("the list from memory differs from the list built anew");
    }
    const detailReadMs = await timeIt(300, () => repo.get(o.detailId)!);
    const detailMs = await timeIt(300, () => {
      const vm = repo.get(o.detailId)!;
      return JSON.stringify(ok(taskDetail(vm, "127.0.0.1", vm.systemDiskBytes)));
    });
    const detailKeptMs = await timeIt(3000, () => replies.detail(o.owner, o.detailId, "127.0.0.1"));
    return { qemuImgInfo, sessionVerifyMs, sessionRememberedMs, list: { repoListMs, summariesMs, shapeAndStringifyMs, replyBytes, keptMs }, detailMs, detail: { readMs: detailReadMs, readShapeStringifyMs: detailMs, keptMs: detailKeptMs } };
  } finally {
    db.close();
  }
}
