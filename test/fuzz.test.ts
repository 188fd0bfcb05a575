// Every route of the agent's OpenAPI document, walked with malformed input: broken and deeply nested
// JSON, wrong types, odd sizes and encodings, repeated parameters, bad paths and headers, with and
// without each kind of credential. The agent must answer each with a 4xx carrying a message (never a
// 5xx, never a hang) and stay up. Bodies are always type-invalid, so nothing is ever created, joined
// or discovered: no VM starts, and no request leaves this machine.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { TestAgents, type AgentProcess } from "./helpers/agent-process.js";

interface Reply {
  status: number;
  body: string;
  contentType: string;
}

/** One raw HTTP exchange with a bound: a stream (SSE) is closed after its headers, a hang fails. */
function send(agent: AgentProcess, method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // A connection per request: a reused keep-alive socket the server closed would fail the client, not the server.
    const req = httpRequest({ host: "127.0.0.1", port: agent.port, method, path, headers, timeout: 5_000, agent: false }, (res) => {
      const contentType = String(res.headers["content-type"] ?? "");
      if (contentType.startsWith("text/event-stream")) {
        res.destroy();
        return resolve({ status: res.statusCode ?? 0, body: "", contentType });
      }
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), contentType }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within 5 s`)));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Bytes that are not an HTTP request at all: the server must answer 400 or close, and live on. */
function sendRaw(agent: AgentProcess, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(agent.port, "127.0.0.1");
    let got = "";
    s.setTimeout(5_000, () => s.destroy());
    s.on("data", (d) => (got += d.toString("latin1")));
    s.on("close", () => resolve(got));
    s.on("error", () => resolve(got));
    s.end(bytes);
  });
}

type Schema = { type?: string | string[]; properties?: Record<string, Schema>; anyOf?: Schema[]; oneOf?: Schema[]; $ref?: string };

/** The JSON types a schema allows (all of them when it does not say). */
function allowedTypes(schema: Schema | undefined): Set<string> {
  if (!schema) return new Set(["string", "number", "integer", "boolean", "object", "array", "null"]);
  const alts = schema.anyOf ?? schema.oneOf;
  if (alts) return new Set(alts.flatMap((a) => [...allowedTypes(a)]));
  if (schema.type === undefined) return allowedTypes(undefined);
  return new Set(Array.isArray(schema.type) ? schema.type : [schema.type]);
}

/** A value of a JSON type the schema does not allow. */
function wrongValue(schema: Schema | undefined, i: number): unknown {
  const ok = allowedTypes(schema);
  const candidates: Array<[string, unknown]> = [
    ["object", { nested: { deeper: [1, "two", null] } }],
    ["array", [[], {}, "x".repeat(i % 3 === 0 ? 70_000 : 3)]],
    ["number", i % 2 === 0 ? -1.5e308 : 2 ** 60],
    ["boolean", true],
    ["string", "\u0000\ud800 ☃ 𝄞".repeat(1 + (i % 5))],
    ["null", null],
  ];
  const found = candidates.find(([t]) => !ok.has(t) && !(t === "number" && ok.has("integer")));
  return found ? found[1] : undefined;
}

/** Bodies that can never pass the route's schema: not JSON, not an object, or every known field of a wrong type. */
function badBodies(schema: Schema | undefined, nested: string): Array<{ body: string | Buffer; type?: string }> {
  const props = Object.entries(schema?.properties ?? {});
  const wrongFields = (i: number) => Object.fromEntries(props.map(([k, p]) => [k, wrongValue(p, i)]));
  const bodies: Array<{ body: string | Buffer; type?: string }> = [
    { body: "{" },
    { body: "[1," },
    { body: "" },
    { body: "null" },
    { body: "[]" },
    { body: '"just a string"' },
    { body: "12345678901234567890" },
    { body: '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}' },
    { body: nested },
    { body: Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0x22, 0xc3]) },
    { body: "{}", type: "application/x-www-form-urlencoded" },
    { body: "data=%7B%22nickname%22%3A5%7D", type: "application/x-www-form-urlencoded" },
    { body: "{}", type: "text/plain" },
    { body: "{}", type: "application/json; charset=utf-16" },
    { body: "{}", type: "multipart/form-data; boundary=x" },
  ];
  // Objects whose every known field has the wrong type: invalid however lenient the rest of the schema.
  if (props.length > 0) for (let i = 0; i < 4; i++) bodies.push({ body: JSON.stringify(wrongFields(i)) });
  return bodies;
}

const agents = new TestAgents();
let agent: AgentProcess;

beforeAll(async () => {
  agent = await agents.start();
});
afterAll(() => agents.cleanup());

describe("fuzz: every route with malformed input", () => {
  it("answers each request with a 4xx and a message, never a 5xx or a hang, and stays up", async () => {
    const doc = JSON.parse((await send(agent, "GET", "/docs/json", {})).body) as {
      paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: Schema }> }; parameters?: Array<{ name: string; in: string }> }>>;
    };
    const nested = "[".repeat(20_000) + "]".repeat(20_000);
    const credentials: Array<[string, Record<string, string>]> = [
      ["none", {}],
      ["admin token", { authorization: `Bearer ${agent.adminToken}` }],
      ["wrong token", { authorization: "Bearer wrong-token" }],
      ["odd authorization", { authorization: "Basic \u00ff\u00fe==" }],
    ];
    const oddIds = ["%00", "..%2F..%2Fetc%2Fpasswd", "a".repeat(300), "%F0%9F%98%80", "%ZZ", "null"];
    type Case = { route: string; method: string; path: string; headers: Record<string, string>; body?: string | Buffer };
    const cases: Case[] = [];
    for (const [template, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const schema = op.requestBody?.content?.["application/json"]?.schema;
        const query = (op.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name);
        for (const id of template.includes("{") ? oddIds : [""]) {
          const path = template.replace(/\{[^}]+\}/g, id);
          const repeated = query.length ? `?${query.map((q) => `${q}=1&${q}=2&${q}[]=3&${q}=%00`).join("&")}` : "?x=%ZZ&x=2";
          for (const [, auth] of credentials) {
            if (method === "get") {
              cases.push({ route: `GET ${template}`, method: "GET", path: `${path}${repeated}`, headers: { ...auth, "x-odd": "\u00e9" } });
              continue;
            }
            for (const { body, type } of badBodies(schema, nested)) {
              cases.push({ route: `${method.toUpperCase()} ${template}`, method: method.toUpperCase(), path: `${path}${repeated}`, headers: { ...auth, "content-type": type ?? "application/json" }, body });
            }
          }
        }
      }
    }
    // Wrong methods and paths that no route has.
    for (const path of ["/", "/common", "/api/v1", "/api/v1/", "/api/v1/tasks/a/b/c/d", "/%2e%2e/%2e%2e", `/${"x".repeat(5000)}`]) {
      for (const method of ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) cases.push({ route: `${method} (no route)`, method, path, headers: {}, body: method === "GET" ? undefined : "{" });
    }

    // Failures by route and answer, each with its first example: what a reader needs to fix it.
    const failures = new Map<string, { count: number; example: string }>();
    const fail = (c: Case, kind: string, example: string) => {
      const key = `${c.route}: ${kind}`;
      const f = failures.get(key) ?? { count: 0, example };
      f.count++;
      failures.set(key, f);
    };
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        const what = `${c.method} ${c.path.slice(0, 120)} (${c.headers.authorization ? "with credentials" : "no credentials"}, ${String(c.body ?? "").slice(0, 40)})`;
        let r: Reply;
        try {
          r = await send(agent, c.method, c.path, c.headers, c.body);
        } catch (e) {
          fail(c, "no answer", `${what}: ${(e as Error).message}`);
          continue;
        }
        if (r.status >= 500) fail(c, String(r.status), `${what}: ${r.body.slice(0, 200)}`);
        else if (r.status >= 400 && !/"message"\s*:\s*"[^"]/.test(r.body)) fail(c, `${r.status} without a message`, `${what}: ${r.body.slice(0, 200)}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    expect(cases.length).toBeGreaterThan(2000);
    expect([...failures].map(([key, f]) => `${key} ×${f.count}, e.g. ${f.example}`), `of ${cases.length} requests`).toEqual([]);

    // Not HTTP at all.
    for (const junk of ["\x00\x01\x02\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", `GET /${"a".repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, "POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"]) {
      const answer = await sendRaw(agent, junk);
      expect(answer === "" || /^HTTP\/1\.1 4\d\d/.test(answer), JSON.stringify(answer.slice(0, 80))).toBe(true);
    }
    // Still serving, still authenticated.
    expect((await send(agent, "GET", "/common/config", { authorization: `Bearer ${agent.adminToken}` })).status).toBe(200);
    expect((await send(agent, "GET", "/common/vm/list", {})).status).toBe(401);
    expect(JSON.parse((await send(agent, "GET", "/common/vm/list", { authorization: `Bearer ${agent.adminToken}` })).body)).toEqual([]);
  }, 120_000);
});
