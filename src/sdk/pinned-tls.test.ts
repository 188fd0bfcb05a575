import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:https";
import { createServer as createNetServer, type Server as NetServer } from "node:net";
import type { AddressInfo } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTlsIdentity, type TlsIdentity } from "../auth/tls-identity.js";
import { HttpTransportError, UnreachableError, requestJson, sendHttp } from "./http.js";
import { HostClient } from "./host-client.js";

let ours: TlsIdentity;
let theirs: TlsIdentity;
let server: Server;
let address: string;
let silent: NetServer;
let silentAddress: string;
let requests = 0;

beforeAll(async () => {
  ours = await loadTlsIdentity(mkdtempSync(join(tmpdir(), "batu-pin-")), "a".repeat(64));
  theirs = await loadTlsIdentity(mkdtempSync(join(tmpdir(), "batu-pin-")), "b".repeat(64));
  server = createServer({ key: ours.key, cert: ours.cert }, (req, res) => {
    requests++;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ message: "ok", auth: req.headers.authorization ?? null }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Accepts, reads and never says a word: a TLS handshake that never completes.
  silent = createNetServer((socket) => socket.resume());
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  silentAddress = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await new Promise((r) => silent.close(r));
});

describe("TLS to a pinned certificate", () => {
  it("talks to the peer whose certificate has the pinned SHA-256 (self-signed: no CA, no name checked)", async () => {
    const before = requests;
    const reply = await requestJson<{ message: string; auth: string }>(address, "/x", { token: "secret-token", tls: { sha256: ours.sha256 } });
    expect(reply).toEqual({ message: "ok", auth: "Bearer secret-token" });
    expect(requests).toBe(before + 1);
    expect(new HostClient(address, undefined, 1000, { sha256: ours.sha256 }).url).toBe(`https://${address}`);
  });

  it("refuses a peer with any other certificate before sending a byte: the token never reaches it", async () => {
    const before = requests;
    const call = requestJson(address, "/x", { token: "secret-token", tls: { sha256: theirs.sha256 } });
    await expect(call).rejects.toBeInstanceOf(UnreachableError);
    await expect(call).rejects.toThrow(/^cannot reach https:\/\/127\.0\.0\.1:\d+\/x: its TLS certificate \(sha256 [0-9a-f]{16}…\) is not the one pinned for it/);
    expect(requests).toBe(before);
  });

  it("bounds a handshake that never completes by the connect bound, and gives its socket up", async () => {
    const closed = new Promise<void>((r) => silent.once("connection", (s) => s.once("close", () => r())));
    const call = sendHttp({ address: silentAddress, method: "GET", path: "/", tls: { sha256: ours.sha256 }, connectTimeoutMs: 200, replyTimeoutMs: 5000 });
    await expect(call).rejects.toEqual(new HttpTransportError("no connection within 200 ms"));
    await closed;
  });
});
