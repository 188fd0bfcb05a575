import { describe, expect, it } from "vitest";
import { validationMessage } from "./errors.js";

describe("validationMessage", () => {
  it("names the missing, unknown or wrong field", () => {
    expect(validationMessage("body", [{ keyword: "required", instancePath: "", params: { missingProperty: "vm_id" } }])).toBe("vm_id: is required");
    expect(validationMessage("body", [{ keyword: "additionalProperties", instancePath: "/a", params: { additionalProperty: "b" } }])).toBe("a.b: is not a known field");
    expect(validationMessage("body", [{ keyword: "type", instancePath: "/cpu_cores", message: "must be integer" }])).toBe("cpu_cores: must be integer");
    expect(validationMessage("querystring", [{ keyword: "type", instancePath: "", message: "must be object" }])).toBe("querystring: must be object");
  });
});
