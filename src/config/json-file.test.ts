import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SystemConfig } from "../api/host.js";
import { ConfigError, loadJsonFile } from "./json-file.js";
import { checkHostConfig } from "./host-files.js";

const dir = () => mkdtempSync(join(tmpdir(), "batu-conf-"));

describe("loadJsonFile", () => {
  it("creates a missing file from the defaults", () => {
    const p = join(dir(), "config.json");
    expect(loadJsonFile(p, SystemConfig, { nickname: "", batu: true })).toEqual({ nickname: "", batu: true });
    expect(JSON.parse(readFileSync(p, "utf8"))).toEqual({ nickname: "", batu: true });
  });

  it("names the file and the field, and leaves the file alone", () => {
    const p = join(dir(), "config.json");
    writeFileSync(p, '{"nickname": true, "batu": true}');
    expect(() => loadJsonFile(p, SystemConfig, { nickname: "", batu: true })).toThrow(ConfigError);
    try {
      loadJsonFile(p, SystemConfig, { nickname: "", batu: true });
    } catch (e) {
      expect((e as ConfigError).file).toBe(p);
      expect((e as ConfigError).field).toBe("nickname");
    }
    expect(readFileSync(p, "utf8")).toBe('{"nickname": true, "batu": true}');
  });

  it("refuses text that is not JSON", () => {
    const p = join(dir(), "config.json");
    writeFileSync(p, "nickname=x");
    expect(() => loadJsonFile(p, SystemConfig, { nickname: "", batu: true })).toThrow(/is not valid JSON/);
  });
});

describe("checkHostConfig", () => {
  it("accepts the seed's master and member shapes and the original 'none'", () => {
    expect(checkHostConfig({ host_type: "master", group_name: "group1" })).toBeUndefined();
    expect(checkHostConfig({ host_type: "slave", master: "192.168.1.44", have_group: true })).toBeUndefined();
    expect(checkHostConfig({ host_type: "none" })).toBeUndefined();
  });
  it("names the wrong field of the chosen shape", () => {
    expect(checkHostConfig({ host_type: "master" })?.[0]).toBe("group_name");
    expect(checkHostConfig({ host_type: "slave", master: "a b", have_group: true })?.[0]).toBe("master");
    expect(checkHostConfig({ host_type: 1 })?.[0]).toBe("host_type");
    expect(checkHostConfig([])?.[0]).toBe("(root)");
  });
});
