import { createSocket, type Socket } from "node:dgram";
import { createServer, type AddressInfo, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  PortAllocator,
  PortRangeExhaustedError,
  PortReservationCancelledError,
  PortTakenError,
  probeHostPort,
  type PortProbe,
} from "./port-allocator.js";
import type { Protocol } from "./port-spec.js";

const ranges = { forward: { min: 20000, max: 29999 }, vnc: { min: 5900, max: 6999 } };
const freeProbe: PortProbe = async () => true;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function tcpServer(host = "0.0.0.0"): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen({ port: 0, host }, resolve));
  cleanups.push(() => new Promise((r) => server.close(() => r())));
  return (server.address() as AddressInfo).port;
}

async function udpSocket(): Promise<number> {
  const socket: Socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind({ port: 0, address: "0.0.0.0" }, resolve));
  cleanups.push(() => new Promise((r) => socket.close(() => r())));
  return socket.address().port;
}

async function rejection<T>(p: Promise<unknown>, type: new (...args: never[]) => T): Promise<T> {
  const e = await p.catch((err: unknown) => err);
  expect(e).toBeInstanceOf(type);
  return e as T;
}

describe("probeHostPort", () => {
  it("sees a bound TCP server (any address) and a bound UDP socket", async () => {
    const tcp = await tcpServer();
    expect(await probeHostPort(tcp, "tcp")).toBe(false);
    const local = await tcpServer("127.0.0.1");
    expect(await probeHostPort(local, "tcp")).toBe(false);
    const udp = await udpSocket();
    expect(await probeHostPort(udp, "udp")).toBe(false);
  });

  it("finds a closed port free, and leaves it free", async () => {
    const port = await tcpServer();
    await cleanups.pop()!();
    expect(await probeHostPort(port, "tcp")).toBe(true);
    expect(await probeHostPort(port, "tcp")).toBe(true);
  });
});

describe("PortAllocator", () => {
  it("never gives one port to two owners under 50 concurrent reserve() calls (real host probe)", async () => {
    const alloc = new PortAllocator({ ranges });
    const got = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        alloc.reserve(`vm${i}`, [{ kind: "forward", label: "ssh" }, { kind: "vnc" }, { kind: "forward", proto: "udp" }]),
      ),
    );
    const keys = got.flat().map((r) => `${r.proto}/${r.port}`);
    expect(new Set(keys).size).toBe(150);
    for (const [i, rs] of got.entries()) {
      expect(rs[0]).toMatchObject({ owner: `vm${i}`, kind: "forward", proto: "tcp", label: "ssh" });
      expect(rs[1]!.port).toBeGreaterThanOrEqual(5900);
      expect(rs[1]!.port).toBeLessThanOrEqual(6999);
    }
  });

  it("stays collision-free when probes interleave slowly and some ports are busy", async () => {
    const busy = new Set([30001, 30004, 30007]);
    const probe: PortProbe = async (port) => {
      await sleep(Math.random() * 10);
      return !busy.has(port);
    };
    const alloc = new PortAllocator({ ranges: { small: { min: 30000, max: 30039 } }, probe });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => alloc.reserve(`vm${i}`, [{ kind: "small" }])),
    );
    const won = outcomes.flatMap((o) => (o.status === "fulfilled" ? o.value : []));
    const lost = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason as unknown] : []));
    expect(won).toHaveLength(37); // 40 ports, 3 bound on the "host"
    expect(new Set(won.map((r) => r.port)).size).toBe(37);
    expect(won.some((r) => busy.has(r.port))).toBe(false);
    expect(lost).toHaveLength(13);
    for (const e of lost) expect(e).toBeInstanceOf(PortRangeExhaustedError);
  });

  it("refuses a specific port bound by a real server on the host, and replaces a bound 'any' port", async () => {
    const alloc = new PortAllocator({ ranges });
    const port = await tcpServer();
    const e = await rejection(alloc.reserve("vm1", [{ port, label: "ssh" }]), PortTakenError);
    expect(e).toMatchObject({ port, proto: "tcp", by: "host" });
    expect(alloc.owned("vm1")).toEqual([]);

    const near = new PortAllocator({ ranges: { r: { min: port, max: Math.min(port + 5, 65535) } } });
    const [got] = await near.reserve("vm2", [{ kind: "r" }]);
    expect(got!.port).not.toBe(port);
    const udp = await udpSocket();
    await expect(alloc.reserve("vm3", [{ port: udp, proto: "udp" }])).rejects.toMatchObject({ by: "host", proto: "udp" });
  });

  it("refuses a port another VM holds, naming it", async () => {
    const alloc = new PortAllocator({ ranges, probe: freeProbe });
    await alloc.reserve("vm1", [{ port: 5684 }]);
    const e = await rejection(alloc.reserve("vm2", [{ port: 5684 }]), PortTakenError);
    expect(e).toMatchObject({ port: 5684, proto: "tcp", by: "vm", owner: "vm1" });
    expect(e.message).toBe("tcp port 5684 is held by vm vm1");
    expect(alloc.holder(5684)).toBe("vm1");
  });

  it("is all or nothing: a failing request frees what the call took", async () => {
    const probe: PortProbe = async (port) => port !== 22222;
    const alloc = new PortAllocator({ ranges, probe });
    await expect(alloc.reserve("vm1", [{ port: 22221 }, { kind: "vnc" }, { port: 22222 }])).rejects.toBeInstanceOf(
      PortTakenError,
    );
    expect(alloc.owned("vm1")).toEqual([]);
    expect(alloc.holder(22221)).toBeUndefined();
  });

  it("returns ports an owner already holds without probing again, and refuses asking twice in one call", async () => {
    let probes = 0;
    const alloc = new PortAllocator({ ranges, probe: async () => (probes++, true) });
    await alloc.reserve("vm1", [{ port: 5901 }]);
    expect(probes).toBe(1);
    const again = await alloc.reserve("vm1", [{ port: 5901 }, { port: 20001 }]);
    expect(again.map((r) => r.port)).toEqual([5901, 20001]);
    expect(probes).toBe(2);
    await expect(alloc.reserve("vm1", [{ port: 20002 }, { port: 20002 }])).rejects.toMatchObject({ by: "vm", owner: "vm1" });
    expect(alloc.holder(20002)).toBeUndefined();
  });

  it("keeps 'any' picks off ports asked for by number in the same call", async () => {
    const alloc = new PortAllocator({ ranges: { r: { min: 100, max: 101 } }, probe: freeProbe });
    const got = await alloc.reserve("vm1", [{ kind: "r" }, { port: 100 }]);
    expect(got.map((r) => r.port)).toEqual([101, 100]);
  });

  it("treats tcp and udp of one number as different ports", async () => {
    const alloc = new PortAllocator({ ranges, probe: freeProbe });
    await alloc.reserve("vm1", [{ port: 7000, proto: "tcp" }]);
    await alloc.reserve("vm2", [{ port: 7000, proto: "udp" }]);
    expect(alloc.holder(7000, "tcp")).toBe("vm1");
    expect(alloc.holder(7000, "udp")).toBe("vm2");
  });

  it("releases by owner and by port", async () => {
    const alloc = new PortAllocator({ ranges, probe: freeProbe });
    await alloc.reserve("vm1", [{ port: 20010 }, { port: 20011, proto: "udp" }, { kind: "vnc" }]);
    expect(alloc.owned("vm1").map((r) => `${r.proto}/${r.port}`)).toEqual(["tcp/5900", "tcp/20010", "udp/20011"]);
    expect(alloc.releasePort("vm2", 20010)).toBe(false);
    expect(alloc.releasePort("vm1", 20010)).toBe(true);
    expect(alloc.release("vm1")).toHaveLength(2);
    expect(alloc.owned("vm1")).toEqual([]);
    await alloc.reserve("vm2", [{ port: 20010 }, { port: 5900 }]);
  });

  it("restores reservations from the store without probing and defends them", async () => {
    let probes = 0;
    const alloc = new PortAllocator({ ranges: { r: { min: 100, max: 102 } }, probe: async () => (probes++, true) });
    alloc.load([
      { owner: "vm1", port: 100, proto: "tcp", kind: "r", label: "ssh" },
      { owner: "vm1", port: 5904, proto: "tcp", kind: null },
      { owner: "vm2", port: 101, proto: "tcp", kind: "r" },
    ]);
    alloc.load([{ owner: "vm1", port: 100, proto: "tcp", kind: "r" }]); // idempotent
    expect(probes).toBe(0);
    expect(alloc.owned("vm1")).toEqual([
      { owner: "vm1", port: 100, proto: "tcp", kind: "r", label: "ssh" },
      { owner: "vm1", port: 5904, proto: "tcp", kind: null },
    ]);
    await expect(alloc.reserve("vm3", [{ port: 5904 }])).rejects.toMatchObject({ by: "vm", owner: "vm1" });
    expect((await alloc.reserve("vm3", [{ kind: "r" }]))[0]!.port).toBe(102);
    await expect(alloc.reserve("vm4", [{ kind: "r" }])).rejects.toBeInstanceOf(PortRangeExhaustedError);
    expect(() => alloc.load([{ owner: "vm9", port: 100, proto: "tcp", kind: null }])).toThrow(PortTakenError);
  });

  it("remembers ports found bound on the host for a while", async () => {
    const probed: number[] = [];
    const alloc = new PortAllocator({
      ranges: { r: { min: 200, max: 203 } },
      probe: async (port) => (probed.push(port), port !== 200),
    });
    expect((await alloc.reserve("a", [{ kind: "r" }]))[0]!.port).toBe(201);
    alloc.release("a");
    // The cursor wraps back to 200 eventually; it is skipped without a new probe.
    for (const owner of ["b", "c", "d"]) await alloc.reserve(owner, [{ kind: "r" }]);
    expect(probed.filter((p) => p === 200)).toHaveLength(1);
  });

  it("fails a reservation whose owner was released while it was probing", async () => {
    const alloc = new PortAllocator({ ranges, probe: async () => (await sleep(20), true) });
    const pending = alloc.reserve("vm1", [{ kind: "forward" }]);
    alloc.release("vm1");
    await rejection(pending, PortReservationCancelledError);
    expect(alloc.owned("vm1")).toEqual([]);
  });

  it("rejects bad input", async () => {
    expect(() => new PortAllocator({ ranges: { r: { min: 10, max: 5 } } })).toThrow(RangeError);
    const alloc = new PortAllocator({ ranges, probe: freeProbe });
    await expect(alloc.reserve("vm1", [{ port: 0 }])).rejects.toBeInstanceOf(RangeError);
    await expect(alloc.reserve("vm1", [{ port: 70000 }])).rejects.toBeInstanceOf(RangeError);
    const loose = alloc as unknown as PortAllocator<string>;
    await expect(loose.reserve("vm1", [{ kind: "nope", proto: "tcp" as Protocol }])).rejects.toBeInstanceOf(RangeError);
  });
});
