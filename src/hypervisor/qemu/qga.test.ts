import { once } from "node:events";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildQemuArgv } from "./argv.js";
import { startQemu } from "./process.js";
import { guestAgentCall, GuestAgentError } from "./qga.js";
import { makeTempDir, minimalSpec, qemuAvailable, QemuTestJanitor } from "./testing.js";

type Msg = { execute: string; arguments?: Record<string, unknown> };

/** A guest agent on a real unix socket: line-delimited JSON, no greeting, as qemu-ga speaks. */
async function fakeAgent(path: string, answer: (msg: Msg, conn: Socket) => void): Promise<{ server: Server; received: Msg[] }> {
  const received: Msg[] = [];
  const server = createServer((conn) => {
    let buf = "";
    conn.setEncoding("utf8");
    conn.on("error", () => undefined);
    conn.on("data", (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const msg = JSON.parse(buf.slice(0, nl)) as Msg;
        buf = buf.slice(nl + 1);
        received.push(msg);
        answer(msg, conn);
      }
    });
  });
  server.listen(path);
  await once(server, "listening");
  return { server, received };
}

const reply = (conn: Socket, value: unknown) => conn.write(`${JSON.stringify(value)}\n`);

describe("guestAgentCall", () => {
  let dir: string;
  let server: Server | undefined;
  beforeEach(async () => {
    dir = await makeTempDir("batu-qga-");
  });
  afterEach(async () => {
    server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("syncs first, skipping a stale reply left in the channel, then runs the command", async () => {
    const agent = await fakeAgent(join(dir, "qga.sock"), (msg, conn) => {
      if (msg.execute === "guest-sync") {
        reply(conn, { return: 12345 }); // an earlier caller's sync reply, still in the channel
        conn.write("garbage that is not json\n");
        reply(conn, { return: msg.arguments!.id });
      } else reply(conn, { return: {} });
    });
    server = agent.server;
    await guestAgentCall(join(dir, "qga.sock"), "guest-set-user-password", { username: "root", password: "c2VjcmV0", crypted: false });
    expect(agent.received.map((m) => m.execute)).toEqual(["guest-sync", "guest-set-user-password"]);
    expect(agent.received[1]!.arguments).toEqual({ username: "root", password: "c2VjcmV0", crypted: false });
  });

  it("turns the agent's error into a command_failed error with its words", async () => {
    server = (
      await fakeAgent(join(dir, "qga.sock"), (msg, conn) =>
        reply(conn, msg.execute === "guest-sync" ? { return: msg.arguments!.id } : { error: { class: "GenericError", desc: "user 'nobody' not found" } }),
      )
    ).server;
    await expect(guestAgentCall(join(dir, "qga.sock"), "guest-set-user-password", {})).rejects.toMatchObject({
      code: "command_failed",
      message: "guest-set-user-password: GenericError: user 'nobody' not found",
    });
  });

  it("gives up after its timeout when nothing answers, and when there is no socket", async () => {
    server = (await fakeAgent(join(dir, "qga.sock"), () => undefined)).server;
    const t0 = Date.now();
    await expect(guestAgentCall(join(dir, "qga.sock"), "guest-info", undefined, { timeoutMs: 200 })).rejects.toMatchObject({ code: "not_responding" });
    expect(Date.now() - t0).toBeLessThan(2000);
    await expect(guestAgentCall(join(dir, "nope.sock"), "guest-info")).rejects.toBeInstanceOf(GuestAgentError);
  });
});

describe.runIf(qemuAvailable())("the guest agent channel of a real QEMU", () => {
  const janitor = new QemuTestJanitor();
  afterEach(() => janitor.cleanup());

  it("is served on qga.sock; a guest without an agent does not answer", async () => {
    const runDir = janitor.dir(await makeTempDir());
    const spec = { ...minimalSpec(runDir), guestAgent: true };
    const { pid } = await startQemu([...buildQemuArgv(spec), "-S"], runDir);
    janitor.vm(pid, runDir);
    expect(existsSync(join(runDir, "qga.sock"))).toBe(true);
    await expect(guestAgentCall(join(runDir, "qga.sock"), "guest-info", undefined, { timeoutMs: 500 })).rejects.toMatchObject({ code: "not_responding" });
  });
});
