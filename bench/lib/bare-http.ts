import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, writeFileSync } from "node:fs";
import { stopChild } from "./proc.js";

/**
 * The baseline: node:http and nothing else, in its own Node.js process (as the agent is). It reads
 * each request's body to the end (unparsed) and answers with the fixed bytes given for the path.
 */
const SERVER = `
const http = require("node:http");
const fs = require("node:fs");
const bodies = new Map(Object.entries(JSON.parse(fs.readFileSync(process.argv[1], "utf8")))
  .map(([path, r]) => [path, { type: r.type, body: Buffer.from(r.body, "base64") }]));
const server = http.createServer((req, res) => {
  req.on("data", () => {});
  req.on("end", () => {
    const r = bodies.get(req.url);
    if (!r) { res.writeHead(404, { "content-length": 0 }); res.end(); return; }
    res.writeHead(200, { "content-type": r.type, "content-length": r.body.length });
    res.end(r.body);
  });
});
server.keepAliveTimeout = 72000;
server.listen(0, "127.0.0.1", () => process.stdout.write(JSON.stringify({ port: server.address().port }) + "\\n"));
`;

/**
 * The floor: a bare Fastify with batu's logger and request log (one JSON line per request to a file,
 * as the agent's stderr), its JSON body parser, and nothing else: the same bytes for each path. What
 * any request through Fastify under batu's logging policy costs, whatever the handler does. `quiet`:
 * its routes are logged as batu's heartbeat is (`quietLog`: at debug while they succeed).
 */
const FASTIFY = `
const { createRequire } = require("node:module");
const { pathToFileURL } = require("node:url");
const fs = require("node:fs");
const [bodiesFile, repo, quiet] = process.argv.slice(1);
const Fastify = createRequire(repo + "/package.json")("fastify");
(async () => {
  const { createLogger } = await import(pathToFileURL(repo + "/dist/lib/logger.js").href);
  const { RequestLog } = await import(pathToFileURL(repo + "/dist/server/request-log.js").href);
  const { accessLoggerOf } = await import(pathToFileURL(repo + "/dist/lib/access-log.js").href);
  const bodies = Object.entries(JSON.parse(fs.readFileSync(bodiesFile, "utf8")));
  const log = createLogger().child({ node: "bench-floor" });
  const app = Fastify({ loggerInstance: log, logController: new RequestLog(accessLoggerOf(log)), bodyLimit: 1024 * 1024 });
  for (const [path, r] of bodies) {
    const body = Buffer.from(r.body, "base64");
    app.post(path, { config: { quietLog: quiet === "quiet" } }, async (req, reply) => reply.type(r.type).send(body));
  }
  await app.listen({ host: "127.0.0.1", port: 0 });
  process.stdout.write(JSON.stringify({ port: app.server.address().port }) + "\\n");
})();
`;

export type BareKind = "node:http" | "fastify";

export class BareHttp {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  /**
   * `replies`: path → content type and exact bytes to answer with. `fastify`: the floor server, its
   * log (stderr) appended to `logPath`, its routes logged as batu's quiet ones with `quietLog`.
   */
  static async start(
    bodiesFile: string,
    replies: Record<string, { type: string; bytes: Buffer }>,
    kind: BareKind = "node:http",
    opts: { repo?: string; logPath?: string; quietLog?: boolean } = {},
  ): Promise<BareHttp> {
    const json = Object.fromEntries(Object.entries(replies).map(([p, r]) => [p, { type: r.type, body: r.bytes.toString("base64") }]));
    writeFileSync(bodiesFile, JSON.stringify(json));
    const args = kind === "fastify" ? ["-e", FASTIFY, bodiesFile, opts.repo ?? process.cwd(), opts.quietLog ? "quiet" : "logged"] : ["-e", SERVER, bodiesFile];
    const logFd = kind === "fastify" && opts.logPath ? openSync(opts.logPath, "a") : null;
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", logFd ?? "inherit"], detached: true });
    if (logFd !== null) closeSync(logFd);
    const port = await new Promise<number>((ok, fail) => {
      let out = "";
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        fail(new Error(`bare ${kind} server did not start in 10 s`));
      }, 10_000);
      child.once("exit", (c) => {
        clearTimeout(timer);
        fail(new Error(`bare ${kind} server exited with ${c}`));
      });
      child.stdout!.on("data", (b: Buffer) => {
        out += b.toString();
        const m = /\{"port":(\d+)\}/.exec(out);
        if (m) {
          clearTimeout(timer);
          ok(Number(m[1]));
        }
      });
    });
    return new BareHttp(child, `http://127.0.0.1:${port}`);
  }

  get pid(): number {
    return this.child.pid!;
  }

  async stop(): Promise<void> {
    await stopChild(this.child, 5_000);
  }
}
