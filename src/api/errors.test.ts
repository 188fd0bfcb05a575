import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { HostErrors } from "./errors.js";

describe("error catalogue", () => {
  it("docs/errors.md lists every code with its status", () => {
    const doc = readFileSync(resolve(import.meta.dirname, "../../docs/errors.md"), "utf8");
    for (const [code, { status }] of Object.entries(HostErrors)) {
      expect(doc, code).toMatch(new RegExp(`\\| \`${code}\` \\| ${status} \\|`));
    }
  });
});
