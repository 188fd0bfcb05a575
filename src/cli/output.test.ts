import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { bytes, duration, keyValues, outputFormat, render, table } from "./output.js";

const rows = [
  { id: "a1", name: "web", cpus: 2, note: null },
  { id: "b22", name: "database", cpus: 16, note: "x" },
];
const columns = [
  { header: "id", value: (r: (typeof rows)[number]) => r.id },
  { header: "cpus", value: (r: (typeof rows)[number]) => r.cpus, align: "right" as const },
  { header: "name", value: (r: (typeof rows)[number]) => r.name },
  { header: "note", value: (r: (typeof rows)[number]) => r.note },
];

describe("output: tables for people", () => {
  it("aligns columns under upper-case headers, numbers right, absent values as -", () => {
    expect(table(rows, columns)).toBe(["ID   CPUS  NAME      NOTE", "a1      2  web       -", "b22    16  database  x"].join("\n"));
  });

  it("a table of no rows is its header", () => {
    expect(table([], columns)).toBe("ID  CPUS  NAME  NOTE");
  });

  it("key: value lines, keys aligned", () => {
    expect(keyValues([["id", "a1"], ["memory", "1G"], ["gpus", null]])).toBe("id:     a1\nmemory: 1G\ngpus:   -");
  });

  it("bytes and durations read as people read them", () => {
    expect([bytes(512), bytes(1536), bytes(256 * 2 ** 20), bytes(3.5 * 2 ** 30), bytes(null)]).toEqual(["512 B", "1.50 KiB", "256 MiB", "3.50 GiB", "-"]);
    expect([duration(42), duration(125), duration(7300), duration(90000), duration(null)]).toEqual(["42s", "2m 5s", "2h 1m", "1d 1h", "-"]);
  });
});

describe("output: JSON and YAML for scripts", () => {
  it("prints the data as it came: one line of JSON, or YAML that parses back to it", () => {
    const data = [{ id: "a1", ready: true, ports: [22, 80], owner: null }];
    const human = () => "never called";
    expect(render(data, "json", human)).toBe('[{"id":"a1","ready":true,"ports":[22,80],"owner":null}]');
    expect(parseYaml(render(data, "yaml", human))).toEqual(data);
    expect(render(data, "table", () => "a table")).toBe("a table");
  });

  it("-o names the format; --json is -o json; a disagreement or an unknown format is a usage error", () => {
    expect(outputFormat({})).toBe("table");
    expect(outputFormat({ json: true })).toBe("json");
    expect(outputFormat({ output: "YAML" })).toBe("yaml");
    expect(outputFormat({ json: true, output: "json" })).toBe("json");
    expect(() => outputFormat({ json: true, output: "yaml" })).toThrow(expect.objectContaining({ exitCode: 2, message: expect.stringMatching(/disagree/) }));
    expect(() => outputFormat({ output: "xml" })).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
});
