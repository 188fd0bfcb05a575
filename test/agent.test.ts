import { afterAll, afterEach, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "node:net";
import { call, readOnlyMount, runCli, TestAgents, type AgentProcess } from "./helpers/agent-process.js";
import { memberJoinProof, memberKeyProof, newNonce, verifyMasterProof } from "../src/group/join-proof.js";
import { cryptoWaitReady, testNode } from "../src/group/testing.js";

const agents = new TestAgents();
const freshDir = () => agents.dir();
const agentIn = (dir: string, extra: { port?: number } = {}): Promise<AgentProcess> => agents.start({ dir, ...extra });

afterEach(async () => {
  await Promise.all(agents.running().map((a) => agents.stop(a, "kill")));
});
afterAll(() => agents.cleanup());

describe("agent: first start", () => {
  it("creates the conf files with seed 000's defaults and an identity of mode 0600", async () => {
    const dir = freshDir();
    const a = await agentIn(dir);
    const conf = join(dir, "conf");
    expect(JSON.parse(readFileSync(join(conf, "config.json"), "utf8"))).toEqual({ nickname: "", batu: true });
    expect(JSON.parse(readFileSync(join(conf, "host_config.json"), "utf8"))).toEqual({
      host_type: "master",
      group_name: "group1",
    });
    expect(existsSync(join(conf, "host_config_ex2.json"))).toBe(true);
    for (const f of ["admin.token", "join.token", "node.key"]) {
      expect(statSync(join(conf, f)).mode & 0o777).toBe(0o600);
    }
    // State and conf are the owner's alone, whatever the umask (the test runner's is 022 or looser).
    expect(statSync(conf).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, "data")).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, "data", "batu.db")).mode & 0o777).toBe(0o600);
    expect(a.nodeId).toMatch(/^[0-9a-f]{64}$/);
    expect(a.adminToken).not.toEqual(a.joinToken);
    // The one log line says where it listens, its role and its node id.
    const line = a.logs().split("\n").find((l) => l.includes('"agent listening"'))!;
    expect(JSON.parse(line)).toMatchObject({ role: "master", nodeId: a.nodeId, url: a.url });
  });

  it("cuts off a client that stalls in the middle of a request (--request-timeout)", async () => {
    const a = await agents.start({ dir: freshDir(), extraArgs: ["--request-timeout", "1"] });
    const closed = await new Promise<{ answer: string; byServer: boolean }>((resolve) => {
      const s = connect(a.port, "127.0.0.1");
      let answer = "";
      const giveUp = setTimeout(() => {
        s.destroy();
        resolve({ answer, byServer: false });
      }, 15_000);
      s.on("data", (d) => (answer += d.toString()));
      s.on("close", () => {
        clearTimeout(giveUp);
        resolve({ answer, byServer: true });
      });
      // Headers, then one byte of a 100-byte body, then nothing.
      s.write("POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
    });
    expect(closed.byServer).toBe(true);
    expect(closed.answer === "" || /^HTTP\/1\.1 408/.test(closed.answer)).toBe(true);
    // The agent serves on.
    expect((await call(`${a.url}/common/config`, { token: a.adminToken })).status).toBe(200);
  });

  it("stops cleanly on SIGTERM and SIGINT", async () => {
    const a = await agentIn(freshDir());
    expect(await a.stop()).toBe(0);
    const b = await agentIn(freshDir());
    b.child.kill("SIGINT");
    expect(await b.stop()).toBe(0);
  });
});

describe("host API: config and errors", () => {
  it("GET /common/config answers config.json; 401 without or with a wrong token", async () => {
    const dir = freshDir();
    mkdirSync(join(dir, "conf"), { recursive: true });
    writeFileSync(join(dir, "conf", "config.json"), JSON.stringify({ nickname: "box-1", batu: true, discript: "yes" }));
    const a = await agentIn(dir);
    expect(await call(`${a.url}/common/config`, { token: a.adminToken })).toEqual({
      status: 200,
      body: { nickname: "box-1", batu: true, discript: "yes" },
    });
    const none = await call(`${a.url}/common/config`);
    expect(none.status).toBe(401);
    expect(none.body.message).toMatch(/token/);
    expect((await call(`${a.url}/common/config`, { token: "x".repeat(43) })).status).toBe(401);
    // The join token is not an admin token.
    expect((await call(`${a.url}/common/config`, { token: a.joinToken })).status).toBe(401);
  });

  it("unknown path → 404 with a message; /docs serves OpenAPI for every route", async () => {
    const a = await agentIn(freshDir());
    const r = await call(`${a.url}/no/such/path`, { token: a.adminToken });
    expect(r.status).toBe(404);
    expect(r.body.message).toContain("/no/such/path");
    const docs = await call(`${a.url}/docs/json`);
    expect(docs.status).toBe(200);
    for (const p of ["/common/config", "/master/group/json", "/master/group/join", "/master/group/list", "/slave/group/my/master"]) {
      expect(Object.keys(docs.body.paths)).toContain(p);
    }
    expect((await fetch(`${a.url}/docs`)).status).toBe(200);
  });
});

describe("host API: group", () => {
  it("records a member with the join token; re-joining updates, never duplicates", async () => {
    const a = await agentIn(freshDir());
    const url = `${a.url}/master/group/json`;
    const first = await call(url, { token: a.joinToken, body: { address: "127.0.0.1:10001", nickname: "m1" } });
    expect(first).toMatchObject({ status: 200, body: { message: "ok", node_id: a.nodeId, address: "127.0.0.1:10001" } });
    // The same host again through the original code's path: one record, updated.
    const again = await call(`${a.url}/master/group/join`, { token: a.joinToken, body: { address: "127.0.0.1:10001", nickname: "m1b" } });
    expect(again.status).toBe(200);
    // A token alone never claims a node id (that takes the node's key: `batu group join`)...
    const claimed = await call(url, { token: a.joinToken, body: { address: "127.0.0.1:10003", node_id: "cd".repeat(32) } });
    expect(claimed).toMatchObject({ status: 400, body: { message: expect.stringMatching(/^node_id: /) } });
    // ...nor another host's address (the master would connect there)...
    const elsewhere = await call(url, { token: a.joinToken, body: { address: "10.1.2.3:10000" } });
    expect(elsewhere).toMatchObject({ status: 400, body: { message: expect.stringMatching(/^address: a member registers the address it calls from/) } });
    expect((await call(url, { token: a.joinToken, body: { address: "127.0.0.1:99999" } })).status).toBe(400);
    // ...while the operator may record any host by hand, as seed 000 allowed.
    const byHand = await call(url, { token: a.adminToken, body: { address: "10.1.2.3", node_id: "ab".repeat(32), nickname: "by hand" } });
    expect(byHand.body.address).toBe("10.1.2.3:10000");
    // Without a body: the caller's IP and port 10000.
    expect((await call(url, { token: a.joinToken, method: "POST" })).body.address).toBe("127.0.0.1:10000");
    const list = await call(`${a.url}/master/group/list`, { token: a.adminToken });
    expect(list.status).toBe(200);
    expect(list.body.master).toBe(a.url.replace("http://", ""));
    const byAddress = Object.fromEntries(list.body.member.map((m: { address: string }) => [m.address, m]));
    expect(Object.keys(byAddress).sort()).toEqual(["10.1.2.3:10000", "127.0.0.1:10000", "127.0.0.1:10001"]);
    expect(byAddress["127.0.0.1:10001"]).toMatchObject({ node_id: null, nickname: "m1b", state: "alive" });
    expect(byAddress["10.1.2.3:10000"]).toMatchObject({ node_id: "ab".repeat(32) });
    // The original server's key, which its GUI reads: the same list.
    expect(list.body.members).toEqual(list.body.member);
  });

  it("answers browser pages of the origins conf lists (CORS), and every call still needs its token", async () => {
    const dir = freshDir();
    mkdirSync(join(dir, "conf"), { recursive: true });
    writeFileSync(join(dir, "conf", "config.json"), JSON.stringify({ nickname: "gui-host", batu: true, cors_origins: ["http://gui.example:8080"] }));
    const a = await agentIn(dir);
    const url = `${a.url}/master/group/list`;
    const preflight = (origin: string) =>
      fetch(url, { method: "OPTIONS", headers: { origin, "access-control-request-method": "GET", "access-control-request-headers": "authorization" } });
    const ok = await preflight("http://gui.example:8080");
    expect(ok.status).toBe(204);
    expect(ok.headers.get("access-control-allow-origin")).toBe("http://gui.example:8080");
    expect(ok.headers.get("access-control-allow-headers")).toMatch(/authorization/);
    expect((await preflight("http://evil.example")).headers.get("access-control-allow-origin")).toBeNull();
    const withToken = await fetch(url, { headers: { origin: "http://gui.example:8080", authorization: `Bearer ${a.adminToken}` } });
    expect(withToken.status).toBe(200);
    expect(withToken.headers.get("access-control-allow-origin")).toBe("http://gui.example:8080");
    expect(((await withToken.json()) as { members: unknown[] }).members).toEqual([]);
    const without = await fetch(url, { headers: { origin: "http://gui.example:8080" } });
    expect(without.status).toBe(401);
  });

  it("refuses bad joins with 400/401 naming the problem and records nothing", async () => {
    const a = await agentIn(freshDir());
    const url = `${a.url}/master/group/json`;
    const cases: Array<[unknown, string]> = [
      [{ address: 5 }, "address"],
      [{ node_id: "xyz" }, "node_id"],
      [{ address: "1.2.3.4", extra: true }, "extra"],
      [[1, 2], "body"],
    ];
    for (const [body, field] of cases) {
      const r = await call(url, { token: a.joinToken, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.message).toContain(field);
    }
    const bad = await call(url, { token: a.joinToken, rawBody: '{"address": ' });
    expect(bad).toEqual({ status: 400, body: { message: "body: is not valid JSON" } });
    expect((await call(url, { token: a.adminToken.slice(1), body: {} })).status).toBe(401);
    expect((await call(url, { body: {} })).status).toBe(401);
    expect((await call(`${a.url}/master/group/list`, { token: a.adminToken })).body.member).toEqual([]);
  });

  it("a join by proof: the master proves itself over a challenge, the member without sending the token; replays refused", async () => {
    const a = await agentIn(freshDir());
    const challenge = newNonce();
    const hello = await call(`${a.url}/master/group/hello?challenge=${challenge}`);
    expect(hello.status).toBe(200);
    expect(hello.body).toMatchObject({ node_id: a.nodeId, group_name: "group1" });
    expect(verifyMasterProof(a.joinToken, hello.body, challenge)).toBe(true);
    expect(verifyMasterProof("some-other-join-token-000", hello.body, challenge)).toBe(false);
    expect((await call(`${a.url}/master/group/hello?challenge=short`)).status).toBe(400);

    await cryptoWaitReady();
    const node = testNode(9);
    const claim = { masterNodeId: a.nodeId, nodeId: node.nodeId, address: "127.0.0.1:10009", nickname: "p1", at: Date.now(), nonce: newNonce(), tlsPort: null, certSha256: null };
    const body = (token: string, c = claim) => ({
      address: c.address,
      node_id: c.nodeId,
      nickname: c.nickname,
      proof: { at: c.at, nonce: c.nonce, mac: memberJoinProof(token, c) },
      key_proof: memberKeyProof(node.key, c),
    });
    const url = `${a.url}/master/group/join`;
    const wrong = await call(url, { body: body("some-other-join-token-000") });
    expect(wrong).toMatchObject({ status: 401, body: { message: expect.stringMatching(/join token/) } });
    // A proof binds what is recorded: the same proof for another address is refused.
    const moved = await call(url, { body: { ...body(a.joinToken), address: "127.0.0.1:10006" } });
    expect(moved.status).toBe(401);
    expect((await call(`${a.url}/master/group/list`, { token: a.adminToken })).body.member).toEqual([]);
    const ok = await call(url, { body: body(a.joinToken) });
    expect(ok).toMatchObject({ status: 200, body: { address: "127.0.0.1:10009", node_id: a.nodeId } });
    const replay = await call(url, { body: body(a.joinToken) });
    expect(replay).toMatchObject({ status: 401, body: { message: expect.stringMatching(/replayed/) } });
    const noNode = await call(url, { body: { proof: body(a.joinToken).proof } });
    expect(noNode).toMatchObject({ status: 400, body: { message: expect.stringMatching(/^proof: .*node_id/) } });
  });

  it("a master has no master: /slave/group/my/master → 409", async () => {
    const a = await agentIn(freshDir());
    const r = await call(`${a.url}/slave/group/my/master`, { token: a.adminToken });
    expect(r.status).toBe(409);
    expect(r.body.message).toMatch(/master/);
  });

  it("two agents: `batu group join` makes one a member of the other, at once and across restarts", async () => {
    const master = await agentIn(freshDir());
    const memberDir = freshDir();
    const member = await agentIn(memberDir);
    const args = ["group", "join", master.url.replace("http://", ""), "--conf-dir", member.confDir, "--data-dir", member.dataDir, "--port", String(member.port)];

    const refused = await runCli([...args, "--token", "wrong-token-wrong-token"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refused/);
    expect(JSON.parse(readFileSync(join(member.confDir, "host_config.json"), "utf8")).host_type).toBe("master");

    const ok = await runCli(args, { BATU_JOIN_TOKEN: master.joinToken });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("joined group group1");
    // The running member took its new role without a restart.
    const mine = await call(`${member.url}/slave/group/my/master`, { token: member.adminToken });
    expect(mine).toMatchObject({ status: 200, body: { message: "ok", master: master.url.replace("http://", "") } });
    expect((await call(`${member.url}/master/group/list`, { token: member.adminToken })).body).toEqual({
      message: "this host is not a master",
    });
    const hostConfig = JSON.parse(readFileSync(join(member.confDir, "host_config.json"), "utf8"));
    expect(hostConfig).toMatchObject({ host_type: "slave", master: master.url.replace("http://", ""), have_group: true, master_node_id: master.nodeId });
    const list = await call(`${master.url}/master/group/list`, { token: master.adminToken });
    expect(list.body.member).toEqual([
      expect.objectContaining({ address: `127.0.0.1:${member.port}`, node_id: member.nodeId, state: "alive" }),
    ]);

    // Restarts keep identity, role and the master's records.
    await agents.stop(member);
    await agents.stop(master);
    const master2 = await agents.restart(master);
    const member2 = await agents.restart(member);
    expect(master2.nodeId).toBe(master.nodeId);
    expect(master2.adminToken).toBe(master.adminToken);
    expect(master2.joinToken).toBe(master.joinToken);
    expect(member2.nodeId).toBe(member.nodeId);
    expect((await call(`${master2.url}/master/group/list`, { token: master2.adminToken })).body.member[0].node_id).toBe(member.nodeId);
    expect((await call(`${member2.url}/slave/group/my/master`, { token: member2.adminToken })).status).toBe(200);
  });

  it("`batu group join` with no agent running registers offline and writes host_config.json", async () => {
    const master = await agentIn(freshDir());
    const dir = freshDir();
    const r = await runCli(["group", "join", master.url.replace("http://", ""), "--token", master.joinToken, "--conf-dir", join(dir, "conf"), "--data-dir", join(dir, "data"), "--port", "1"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, "conf", "host_config.json"), "utf8")).host_type).toBe("slave");
    const list = await call(`${master.url}/master/group/list`, { token: master.adminToken });
    expect(list.body.member).toHaveLength(1);
  });
});

describe("agent: bad configuration stops the start and is never overwritten", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["config.json", "{not json", /config\.json: is not valid JSON/],
    ["config.json", JSON.stringify({ nickname: 5, batu: true }), /config\.json: field "nickname"/],
    ["host_config.json", JSON.stringify({ host_type: "boss" }), /host_config\.json: field "host_type" must be one of master, slave, none/],
    ["host_config.json", JSON.stringify({ host_type: "slave", master: "1.2.3.4" }), /host_config\.json: field "have_group"/],
  ];
  for (const [file, content, message] of cases) {
    it(`${file}: ${content}`, async () => {
      const dir = freshDir();
      mkdirSync(join(dir, "conf"));
      writeFileSync(join(dir, "conf", file), content);
      const r = await runCli(["agent", "--port", "0", "--host", "127.0.0.1", "--network", "user", "--conf-dir", join(dir, "conf"), "--data-dir", join(dir, "data")]);
      expect(r.code).toBe(78);
      expect(r.stderr).toMatch(message);
      expect(readFileSync(join(dir, "conf", file), "utf8")).toBe(content);
    });
  }

  it("a read-only conf dir: starts when the files exist, stops naming the file when one is missing", async () => {
    const dir = freshDir();
    const conf = join(dir, "conf");
    const a = await agentIn(dir);
    await agents.stop(a);
    const b = await agents.restart(a, { wrap: readOnlyMount(conf) });
    expect(b.nodeId).toBe(a.nodeId);
    await b.stop();

    rmSync(join(conf, "config.json"));
    const r = await runCli(
      ["agent", "--port", "0", "--host", "127.0.0.1", "--network", "user", "--conf-dir", conf, "--data-dir", join(dir, "data")],
      {},
      30_000,
      readOnlyMount(conf),
    );
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/config\.json: is missing and cannot be created/);
  });
});
