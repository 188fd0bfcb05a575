import { afterEach, describe, expect, it } from "vitest";
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { HostApiError, HttpTransportError, UnreachableError, requestJson, sendHttp } from "./http.js";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
});

/** An agent stand-in on loopback; `handler` undefined: it accepts and never answers. */
async function agent(handler?: RequestListener): Promise<string> {
  const server = createServer(handler ?? (() => undefined));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("sendHttp", () => {
  it("bounds a silent reply with its own text", async () => {
    const address = await agent();
    const call = sendHttp({ address, method: "GET", path: "/", connectTimeoutMs: 1000, replyTimeoutMs: 100 });
    await expect(call).rejects.toEqual(new HttpTransportError("no reply within 100 ms"));
  });
});

describe("requestJson", () => {
  it("sends JSON with the bearer token and parses a 2xx reply", async () => {
    const address = await agent((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => res.end(JSON.stringify({ auth: req.headers.authorization, type: req.headers["content-type"], body: JSON.parse(body) })));
    });
    expect(await requestJson(address, "/x", { token: "t", body: { a: 1 } })).toEqual({ auth: "Bearer t", type: "application/json", body: { a: 1 } });
  });

  it("a non-2xx reply is a HostApiError with the agent's message and body", async () => {
    const address = await agent((_req, res) => {
      res.statusCode = 409;
      res.end(JSON.stringify({ message: "this host is not a master" }));
    });
    await expect(requestJson(address, "/x")).rejects.toEqual(
      new HostApiError(409, "this host is not a master", { message: "this host is not a master" }),
    );
  });

  it("no agent listening is an UnreachableError naming the URL and the cause", async () => {
    const address = await agent();
    const server = servers.pop()!;
    await new Promise((r) => server.close(r));
    const gone = requestJson(address, "/x");
    await expect(gone).rejects.toBeInstanceOf(UnreachableError);
    await expect(gone).rejects.toThrow(`cannot reach http://${address}/x: connect ECONNREFUSED`);
  });
});
