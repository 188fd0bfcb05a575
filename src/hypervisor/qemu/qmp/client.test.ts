import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeTempDir, qemuAvailable } from "../testing.js";
import { QmpClient } from "./client.js";
import { QmpError, type QmpEvent } from "./errors.js";

const GREETING = { QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: "fake" }, capabilities: ["oob"] } };
type Msg = { execute: string; arguments?: Record<string, unknown>; id?: unknown };
type Handler = (msg: Msg, conn: Socket) => void;
const send = (conn: Socket, obj: unknown): boolean => conn.write(`${JSON.stringify(obj)}\r\n`);
const reply = (conn: Socket, msg: Msg, ret: unknown = {}): boolean => send(conn, { return: ret, id: msg.id });
const event = (name: string, data: unknown = {}) => ({ event: name, data, timestamp: { seconds: 1, microseconds: 2 } });

/** A fake QMP server on a real unix socket; `handler` answers everything after qmp_capabilities. */
class FakeQmp {
  readonly received: Msg[] = [];
  readonly conns: Socket[] = [];
  server: Server | undefined;
  greet = true;
  handler: Handler = (msg, conn) => reply(conn, msg);

  constructor(readonly path: string) {}

  async listen(): Promise<void> {
    this.server = createServer((conn) => {
      this.conns.push(conn);
      if (this.greet) send(conn, GREETING);
      let buf = "";
      conn.setEncoding("utf8");
      conn.on("data", (chunk: string) => {
        buf += chunk;
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
          const msg = JSON.parse(buf.slice(0, nl)) as Msg;
          buf = buf.slice(nl + 1);
          this.received.push(msg);
          if (msg.execute === "qmp_capabilities") reply(conn, msg);
          else this.handler(msg, conn);
        }
      });
      conn.on("error", () => {});
    });
    this.server.listen(this.path);
    await once(this.server, "listening");
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    if (this.server?.listening) await new Promise((r) => this.server?.close(r));
  }
}

describe("QmpClient against a fake QMP server", () => {
  let dir: string;
  let fake: FakeQmp;
  let client: QmpClient | undefined;

  beforeEach(async () => {
    dir = await makeTempDir();
    fake = new FakeQmp(join(dir, "qmp.sock"));
  });
  afterEach(async () => {
    await client?.close();
    client = undefined;
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("reads the greeting and negotiates capabilities first", async () => {
    await fake.listen();
    client = await QmpClient.connect(fake.path);
    expect(client.greeting.version.qemu).toEqual({ major: 7, minor: 2, micro: 22 });
    expect(fake.received.map((m) => m.execute)).toEqual(["qmp_capabilities"]);
    fake.handler = (msg, conn) => reply(conn, msg, { status: "running", running: true });
    await expect(client.execute("query-status")).resolves.toEqual({ status: "running", running: true });
    expect(fake.received[1]).toMatchObject({ execute: "query-status" });
    expect(fake.received[1]).not.toHaveProperty("arguments");
  });

  it("retries until the socket appears", async () => {
    const connecting = QmpClient.connect(fake.path, { deadlineMs: 5_000 });
    await sleep(300);
    await fake.listen();
    client = await connecting;
    expect(client.closed).toBe(false);
  });

  it("gives up at the deadline when no socket appears, or no greeting comes", async () => {
    const t0 = Date.now();
    await expect(QmpClient.connect(fake.path, { deadlineMs: 200 })).rejects.toMatchObject({ code: "connect" });
    expect(Date.now() - t0).toBeLessThan(2_000);
    fake.greet = false;
    await fake.listen();
    await expect(QmpClient.connect(fake.path, { deadlineMs: 200 })).rejects.toMatchObject({ code: "connect" });
  });

  it("matches replies to requests by id when they come out of order", async () => {
    await fake.listen();
    client = await QmpClient.connect(fake.path);
    const held: Msg[] = [];
    fake.handler = (msg, conn) => {
      held.push(msg);
      if (held.length === 3) for (const m of held.reverse()) reply(conn, m, { echo: m.arguments?.n });
    };
    const results = await Promise.all([1, 2, 3].map((n) => client!.execute("echo", { n })));
    expect(results).toEqual([{ echo: 1 }, { echo: 2 }, { echo: 3 }]);
    expect(new Set(fake.received.slice(1).map((m) => m.id)).size).toBe(3);
  });

  it("routes interleaved events apart, across split and joined chunks", async () => {
    await fake.listen();
    client = await QmpClient.connect(fake.path);
    const events: QmpEvent[] = [];
    client.on("event", (e) => events.push(e));
    fake.handler = (msg, conn) => {
      const text = `${JSON.stringify(event("STOP"))}\n${JSON.stringify({ return: { a: "é" }, id: msg.id })}\n${JSON.stringify(event("RESUME"))}\n`;
      const bytes = Buffer.from(text);
      const cut = bytes.indexOf(Buffer.from("é")) + 1; // split inside the two-byte character
      conn.write(bytes.subarray(0, cut));
      setTimeout(() => conn.write(bytes.subarray(cut)), 30);
    };
    await expect(client.execute("x")).resolves.toEqual({ a: "é" });
    await sleep(20);
    expect(events.map((e) => e.event)).toEqual(["STOP", "RESUME"]);
    expect(events[0]).toEqual({ event: "STOP", data: {}, timestamp: { seconds: 1, microseconds: 2 } });
  });

  it("waits for a matching event", async () => {
    await fake.listen();
    client = await QmpClient.connect(fake.path);
    fake.handler = (msg, conn) => {
      reply(conn, msg);
      send(conn, event("DEVICE_DELETED", { path: "/machine/peripheral/vdb/virtio-backend" }));
      send(conn, event("DEVICE_DELETED", { device: "vdb", path: "/machine/peripheral/vdb" }));
    };
    const deleted = client.waitForEvent("DEVICE_DELETED", { timeoutMs: 2_000, match: (e) => e.data.device === "vdb" });
    await client.execute("device_del", { id: "vdb" });
    await expect(deleted).resolves.toMatchObject({ data: { device: "vdb" } });
    await expect(client.waitForEvent("NEVER", { timeoutMs: 50 })).rejects.toMatchObject({ code: "timeout" });
  });

  it("times out a command, drops its late reply, and keeps working", async () => {
    await fake.listen();
    client = await QmpClient.connect(fake.path);
    fake.handler = (msg, conn) => {
      if (msg.execute === "slow") setTimeout(() => reply(conn, msg, "late"), 150);
      else reply(conn, msg, "fast");
    };
    const err = await client.execute("slow", undefined, { timeoutMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpError);
    expect(err).toMatchObject({ code: "timeout", command: "slow" });
    await sleep(200);
    await expect(client.execute("other")).resolves.toBe("fast");
  });

  it("turns an error reply into a QmpError with class and desc", async () => {
    await fake.listen();
    client = await QmpClient.connect(fake.path);
    fake.handler = (msg, conn) =>
      send(conn, { error: { class: "CommandNotFound", desc: "The command nope has not been found" }, id: msg.id });
    await expect(client.execute("nope")).rejects.toMatchObject({
      code: "command",
      command: "nope",
      qmpClass: "CommandNotFound",
      desc: "The command nope has not been found",
    });
  });

  it("rejects every pending call when the socket closes; quit counts closing as its answer", async () => {
    await fake.listen();
    client = await QmpClient.connect(fake.path);
    let closes = 0;
    client.on("close", () => closes++);
    fake.handler = (msg, conn) => {
      if (msg.execute === "hang-up") setTimeout(() => conn.destroy(), 20);
    };
    const a = client.execute("a");
    const quit = client.execute("quit");
    const b = client.execute("hang-up");
    await expect(a).rejects.toMatchObject({ code: "closed", command: "a" });
    await expect(b).rejects.toMatchObject({ code: "closed" });
    await expect(quit).resolves.toEqual({});
    expect(client.closed).toBe(true);
    expect(closes).toBe(1);
    await expect(client.execute("after")).rejects.toMatchObject({ code: "closed" });
  });

  it("aborts a call through its signal", async () => {
    await fake.listen();
    client = await QmpClient.connect(fake.path);
    fake.handler = () => {};
    const ac = new AbortController();
    const p = client.execute("x", undefined, { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: "aborted" });
  });
});

describe.runIf(qemuAvailable())("QmpClient against real QEMU", () => {
  let dir: string | undefined;
  let child: ChildProcess | undefined;

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("query-status, stop, cont, then quit ends the process", async () => {
    dir = await makeTempDir();
    const sock = join(dir, "qmp.sock");
    child = spawn(
      "qemu-system-x86_64",
      ["-accel", "tcg", "-machine", "pc", "-nodefaults", "-display", "none", "-m", "64", "-S", "-qmp", `unix:${sock},server=on,wait=off`],
      { stdio: "ignore" },
    );
    const exited = once(child, "exit");
    const client = await QmpClient.connect(sock, { deadlineMs: 10_000 });
    try {
      expect(client.greeting.version.qemu.major).toBeGreaterThanOrEqual(7);
      expect(await client.execute("query-status")).toMatchObject({ status: "prelaunch", running: false });
      const resumed = client.waitForEvent("RESUME", { timeoutMs: 5_000 });
      await client.execute("cont");
      await resumed;
      expect(await client.execute("query-status")).toMatchObject({ status: "running", running: true });
      const stopped = client.waitForEvent("STOP", { timeoutMs: 5_000 });
      await client.execute("stop");
      await stopped;
      expect(await client.execute("query-status")).toMatchObject({ status: "paused", running: false });
      await expect(client.execute("no-such-command")).rejects.toMatchObject({ code: "command", qmpClass: "CommandNotFound" });
      const shutdown = client.waitForEvent("SHUTDOWN", { timeoutMs: 5_000 });
      await client.execute("quit");
      expect((await shutdown).data).toMatchObject({ guest: false, reason: "host-qmp-quit" });
      const [code] = await exited;
      expect(code).toBe(0);
      await client.whenClosed();
      expect(client.closed).toBe(true);
    } finally {
      await client.close();
    }
  });
});
