import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventEmitter } from "node:events";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import Fastify, { type FastifyInstance } from "fastify";
import websocket from "@fastify/websocket";
import WebSocket from "ws";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { authHook } from "../auth.js";
import { errorHandler } from "../errors.js";
import { ConsoleTickets } from "./tickets.js";
import { consoleStatic } from "./static.js";
import { vncProxyRoutes, CONSOLE_SOCKET_PATH } from "./vnc-proxy.js";
import { vmEventRoutes } from "../routes/host/vm-events.js";
import { serveTls, type TlsServer } from "../tls-server.js";
import { loadTlsIdentity } from "../../auth/tls-identity.js";
import type { VmQueries } from "../../vm/queries.js";
import type { VmChange } from "../../vm/runtime.js";

const ADMIN = "admin-token-0123456789";
const auth = { authorization: `Bearer ${ADMIN}` };

describe("ConsoleTickets", () => {
  it("redeems a ticket once, for the VM it was issued for", () => {
    const tickets = new ConsoleTickets();
    const t = tickets.issue("vm-a");
    expect(t).toMatch(/^[\w-]+\.[\w-]{32}$/);
    expect(tickets.redeem(t)).toBe("vm-a");
    expect(tickets.redeem(t)).toBeUndefined();
  });

  it("refuses an expired ticket, and drops tickets never redeemed once they expire", () => {
    let now = 1_000_000;
    const tickets = new ConsoleTickets(30_000, () => now);
    const late = tickets.issue("vm-a");
    tickets.issue("vm-b");
    now += 29_999;
    expect(tickets.size).toBe(2);
    now += 1;
    expect(tickets.redeem(late)).toBeUndefined();
    expect(tickets.size).toBe(0);
  });

  it("refuses a ticket with the right id and a wrong secret, and burns nothing then", () => {
    const tickets = new ConsoleTickets();
    const t = tickets.issue("vm-a");
    const [id, secret] = t.split(".") as [string, string];
    const wrong = `${id}.${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`;
    for (const bad of [wrong, id, `${id}.`, "", `.${secret}`, 42, undefined, `${t}x`]) expect(tickets.redeem(bad)).toBeUndefined();
    expect(tickets.redeem(t)).toBe("vm-a");
  });
});

/** A stand-in for VmQueries: the records and the change events the routes read. */
function fakeVms() {
  const changes = new EventEmitter();
  const vm = (id: string, status: string) => ({
    id,
    nickname: id,
    status,
    ready: status === "running",
    imageName: "batu-demo.qcow2",
    createdAt: "2026-01-01T00:00:00Z",
    owner: null,
    rentalEnd: null,
    spec: { cpu: { cores: 1, threads: 1 }, memoryMiB: 512, dataDiskBytes: 0, startCommand: "", gpuCount: 0, vncPassword: "vncpass1", ports: { ssh: 20000, vnc: 0, custom: [] } },
  });
  const records = new Map([["vm-a", vm("vm-a", "running")], ["vm-b", vm("vm-b", "closed")]]);
  const queries = {
    list: () => [...records.values()],
    find: (id: string) => records.get(id),
    get: (id: string) => {
      const r = records.get(id);
      if (!r) throw Object.assign(new Error(`vm ${id} not found`), { statusCode: 404 });
      return r;
    },
    onChange: (l: (c: VmChange) => void) => {
      changes.on("change", l);
      return () => changes.off("change", l);
    },
  };
  return { queries: queries as unknown as VmQueries, records, changes, listeners: () => changes.listenerCount("change") };
}

describe("the console's server side", () => {
  let app: FastifyInstance;
  let url: string;
  let root: string;
  let vnc: Server;
  const vms = fakeVms();
  const tickets = new ConsoleTickets();
  /** What the stand-in VNC server received. */
  const received: Buffer[] = [];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "batu-console-"));
    mkdirSync(join(root, "assets"));
    writeFileSync(join(root, "index.html"), "<!doctype html><title>batu console</title>");
    writeFileSync(join(root, "assets", "app.js"), "console.log('app');".repeat(50));
    writeFileSync(join(root, "assets", "app.js.gz"), gzipSync("console.log('app');".repeat(50)));
    // A stand-in VNC server on loopback: greets like RFB, echoes what it gets.
    vnc = createServer((s) => {
      s.write("RFB 003.008\n");
      s.on("data", (b) => {
        received.push(b);
        s.write(Buffer.concat([Buffer.from("echo:"), b]));
      });
    });
    await new Promise<void>((r) => vnc.listen(0, "127.0.0.1", r));
    vms.records.get("vm-a")!.spec.ports.vnc = (vnc.address() as { port: number }).port;

    app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } }).withTypeProvider<TypeBoxTypeProvider>();
    app.setErrorHandler(errorHandler);
    app.addHook("onRequest", authHook({ adminToken: () => ADMIN }));
    await app.register(websocket);
    await app.register(vmEventRoutes, { deps: { vmQueries: vms.queries } });
    await app.register(vncProxyRoutes, { deps: { vmQueries: vms.queries, forwardHost: "127.0.0.1", tickets } });
    await app.register(consoleStatic, { root });
    app.get("/common/secret", async () => ({ secret: true }));
    url = await app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await app.close();
    vnc.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("serves the page and its assets without a token (compressed when the build wrote .gz), while the API keeps its token", async () => {
    const page = await app.inject({ method: "GET", url: "/" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toMatch(/text\/html/);
    expect(page.body).toContain("batu console");
    const asset = await app.inject({ method: "GET", url: "/assets/app.js", headers: { "accept-encoding": "gzip" } });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers["content-encoding"]).toBe("gzip");
    expect(asset.headers["cache-control"]).toMatch(/immutable/);
    expect((await app.inject({ method: "GET", url: "/common/secret" })).statusCode).toBe(401);
    // No wildcard route: an unknown path is the router's 404 (no route), never a file lookup.
    const unknown = await app.inject({ method: "GET", url: "/assets/nothing.js" });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ message: "Route GET:/assets/nothing.js not found" });
  });

  it("answers 503 with the way out when the console is not built", async () => {
    const bare = Fastify();
    bare.addHook("onRequest", authHook({ adminToken: () => ADMIN }));
    await bare.register(consoleStatic, { root: join(root, "absent") });
    const r = await bare.inject({ method: "GET", url: "/" });
    expect(r.statusCode).toBe(503);
    expect(r.body).toMatch(/npm run build/);
    await bare.close();
  });

  it("streams VM events to the operator only: the whole list first, then changes and deletions", async () => {
    expect((await fetch(`${url}/common/vm/events`)).status).toBe(401);
    expect((await fetch(`${url}/common/vm/events`, { method: "HEAD", headers: auth })).status).toBe(404);
    expect((await fetch(`${url}/common/vm/events`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    const abort = new AbortController();
    const res = await fetch(`${url}/common/vm/events`, { headers: auth, signal: abort.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const next = async (pattern: RegExp) => {
      while (!pattern.test(text)) text += (await reader.read()).value ?? "";
    };
    await next(/^event: list\ndata: .*\n\n/);
    const first = JSON.parse(/^event: list\ndata: (.*)$/m.exec(text)![1]!) as Array<{ id: string; status: string; ready: boolean }>;
    expect(first.map((v) => [v.id, v.status, v.ready])).toEqual([["vm-a", "running", true], ["vm-b", "closed", false]]);
    vms.changes.emit("change", { id: "vm-b", status: "starting", ready: false });
    vms.changes.emit("change", { id: "vm-b", status: "deleted", ready: false });
    await next(/event: deleted\n/);
    expect(text).toMatch(/event: vm\ndata: \{"id":"vm-b",.*"status":"starting","ready":false/);
    expect(text).toMatch(/event: deleted\ndata: \{"id":"vm-b"\}/);
    expect(vms.listeners()).toBe(1);
    abort.abort();
    await expect.poll(() => vms.listeners()).toBe(0);
  });

  it("issues console tickets to the operator for a running VM only", async () => {
    expect((await app.inject({ method: "POST", url: "/common/vm/console", payload: { vm_id: "vm-a" } })).statusCode).toBe(401);
    const r = await app.inject({ method: "POST", url: "/common/vm/console", headers: auth, payload: { vm_id: "vm-a" } });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ path: CONSOLE_SOCKET_PATH, password: "vncpass1", expires_in_s: 30, ticket: expect.any(String) });
    const off = await app.inject({ method: "POST", url: "/common/vm/console", headers: auth, payload: { vm_id: "vm-b" } });
    expect(off.statusCode).toBe(409);
    const bad = await app.inject({ method: "POST", url: "/common/vm/console", headers: auth, payload: { vm: "vm-a" } });
    expect(bad.statusCode).toBe(400);
  });

  /** Opens the console WebSocket with `ticket`; resolves with the socket, or the HTTP status it was refused with. */
  function openSocket(ticket: string): Promise<WebSocket | number> {
    return new Promise((resolve) => {
      const ws = new WebSocket(`${url.replace("http", "ws")}${CONSOLE_SOCKET_PATH}?ticket=${encodeURIComponent(ticket)}`);
      ws.once("open", () => resolve(ws));
      ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.once("error", () => resolve(0));
    });
  }

  it("carries the VM's VNC stream over the WebSocket with a valid ticket, once", async () => {
    const { ticket } = (await app.inject({ method: "POST", url: "/common/vm/console", headers: auth, payload: { vm_id: "vm-a" } })).json() as { ticket: string };
    const ws = await openSocket(ticket);
    expect(ws).toBeInstanceOf(WebSocket);
    const socket = ws as WebSocket;
    const frames: string[] = [];
    socket.on("message", (d: Buffer) => frames.push(d.toString()));
    await expect.poll(() => frames.join("")).toBe("RFB 003.008\n");
    socket.send(Buffer.from("RFB 003.008\n"));
    await expect.poll(() => frames.join("")).toBe("RFB 003.008\necho:RFB 003.008\n");
    expect(Buffer.concat(received).toString()).toBe("RFB 003.008\n");
    socket.close();
    // Single use: the same ticket opens nothing again.
    expect(await openSocket(ticket)).toBe(401);
  });

  it("refuses the upgrade without a valid ticket", async () => {
    expect(await openSocket("nope.nope")).toBe(401);
    const t = tickets.issue("vm-a");
    expect(await openSocket(`${t}x`)).toBe(401);
    const none = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${url.replace("http", "ws")}${CONSOLE_SOCKET_PATH}`);
      ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
    });
    expect(none).toBe(400);
  });

  it("carries the console over the agent's HTTPS port too (where other hosts reach it)", async () => {
    const tlsDir = mkdtempSync(join(tmpdir(), "batu-console-tls-"));
    let tls: TlsServer | undefined;
    try {
      const identity = await loadTlsIdentity(tlsDir, "node-console-test");
      tls = await serveTls(app, { host: "127.0.0.1", port: 0, key: identity.key, cert: identity.cert, requestTimeoutMs: 30_000 });
      const ticket = tickets.issue("vm-a");
      const socket = await new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`wss://127.0.0.1:${tls!.port}${CONSOLE_SOCKET_PATH}?ticket=${encodeURIComponent(ticket)}`, { rejectUnauthorized: false });
        ws.once("open", () => resolve(ws));
        ws.once("error", reject);
      });
      const greeting = await new Promise<string>((resolve) => socket.once("message", (d: Buffer) => resolve(d.toString())));
      expect(greeting).toBe("RFB 003.008\n");
      socket.close();
    } finally {
      tls?.force();
      await tls?.close();
      rmSync(tlsDir, { recursive: true, force: true });
    }
  });
});
