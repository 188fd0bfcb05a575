import { describe, expect, it } from "vitest";
import { httpBase, parseImageServer, parseImageServers } from "./servers.js";

describe("image server entries, as DBC's client conf writes them", () => {
  it("a bare module is an rsync daemon's (DBC's image servers), a path a batu server's HTTP prefix", () => {
    expect(parseImageServer("ID_1,127.0.0.1,873,images")).toEqual({ id: "ID_1", kind: "rsync", host: "127.0.0.1", port: 873, module: "images" });
    expect(parseImageServer("ID_2, 192.168.1.5, 10000, /image-server/v1")).toEqual({ id: "ID_2", kind: "http", host: "192.168.1.5", port: 10000, prefix: "/image-server/v1" });
    // DBC's default port.
    expect(parseImageServer("ID_3,10.0.0.1,,images")).toMatchObject({ kind: "rsync", port: 873 });
  });

  it("takes URLs too", () => {
    expect(parseImageServer("R,rsync://10.0.0.2/images")).toEqual({ id: "R", kind: "rsync", host: "10.0.0.2", port: 873, module: "images" });
    expect(parseImageServer("H,http://img.lan:10000")).toEqual({ id: "H", kind: "http", host: "img.lan", port: 10000, prefix: "/image-server/v1" });
    expect(httpBase(parseImageServer("H,http://img.lan:10000/x/y/") as any)).toBe("http://img.lan:10000/x/y");
  });

  it("refuses what is malformed, naming it", () => {
    expect(() => parseImageServer("ID_1")).toThrow(/expected <id>,<ip>,<port>,<module>/);
    expect(() => parseImageServer("../x,1.2.3.4,873,images")).toThrow(/the id/);
    expect(() => parseImageServer("A,1.2.3.4,99999,images")).toThrow(/the port/);
    expect(() => parseImageServer("A,1.2.3.4,873,../etc")).toThrow(/rsync module/);
    expect(() => parseImageServer("A,1.2.3.4,80,/a/../b")).toThrow(/HTTP prefix/);
    expect(() => parseImageServer("A,-rf,873,images")).toThrow(/address/);
    expect(() => parseImageServers(["A,1.2.3.4,873,images", "A,1.2.3.5,873,images"])).toThrow(/configured twice/);
  });
});
