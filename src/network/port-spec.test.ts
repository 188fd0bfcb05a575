import { describe, expect, it } from "vitest";
import {
  PortSpecError,
  parseCustomPort,
  parseCustomPorts,
  parsePortField,
  parseRdpPort,
  parseSshPort,
  parseVncPort,
  portConflictMessage,
  type PortSpecErrorCode,
} from "./port-spec.js";

function specError(fn: () => unknown): PortSpecError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PortSpecError);
    return e as PortSpecError;
  }
  throw new Error("expected a PortSpecError");
}

const USAGE = "(usage: 'tcp,123' 'udp,111:222' 'tcp,333-444' 'udp,555-666:777-888')";

describe("single port fields (DBC wording)", () => {
  it("accepts digit strings and integers", () => {
    expect(parseSshPort("5684")).toBe(5684);
    expect(parseSshPort(22)).toBe(22);
    expect(parseRdpPort("3389")).toBe(3389);
    expect(parseVncPort("5900")).toBe(5900);
    expect(parseVncPort("65535")).toBe(65535);
    expect(parseSshPort("0022")).toBe(22);
  });

  it.each([
    [() => parseSshPort(""), "empty", "ssh_port is empty"],
    [() => parseSshPort(undefined), "empty", "ssh_port is empty"],
    [() => parseSshPort("22a"), "not_digit", "ssh_port is not digit"],
    [() => parseSshPort(" 22"), "not_digit", "ssh_port is not digit"],
    [() => parseSshPort("-1"), "not_digit", "ssh_port is not digit"],
    [() => parseSshPort(22.5), "not_digit", "ssh_port is not digit"],
    [() => parseSshPort({}), "not_digit", "ssh_port is not digit"],
    [() => parseSshPort("0"), "out_of_range", "ssh_port is invalid (usage: [1, 65535])"],
    [() => parseSshPort("65536"), "out_of_range", "ssh_port is invalid (usage: [1, 65535])"],
    [() => parseSshPort("99999999999999999999"), "out_of_range", "ssh_port is invalid (usage: [1, 65535])"],
    [() => parseRdpPort(""), "empty", "rdp_port is empty"],
    [() => parseRdpPort("x"), "not_digit", "rdp_port is not digit"],
    [() => parseVncPort(""), "empty", "vnc_port is empty"],
    [() => parseVncPort("59o0"), "not_digit", "vnc_port is not digit"],
    [() => parseVncPort("5899"), "out_of_range", "vnc_port is invalid (usage: [5900, 65535])"],
    [() => parseVncPort(70000), "out_of_range", "vnc_port is invalid (usage: [5900, 65535])"],
    [() => parseVncPort("5899", "new_vnc_port"), "out_of_range", "new_vnc_port is invalid (usage: [5900, 65535])"],
  ] as Array<[() => unknown, PortSpecErrorCode, string]>)("%#: refuses with %s", (fn, code, message) => {
    const e = specError(fn);
    expect(e.code).toBe(code);
    expect(e.message).toBe(message);
  });

  it("names the field given", () => {
    const e = specError(() => parsePortField("new_ssh_port", "abc"));
    expect(e.field).toBe("new_ssh_port");
    expect(e.message).toBe("new_ssh_port is not digit");
  });

  it("formats DBC's conflict message", () => {
    expect(portConflictMessage("ssh_port", 5684)).toBe("port conflict, exist ssh_port = 5684");
    expect(portConflictMessage("vnc_port", 5904)).toBe("port conflict, exist vnc_port = 5904");
  });
});

describe("custom_port entries", () => {
  it("parses DBC's four documented shapes", () => {
    expect(parseCustomPort("tcp,123")).toEqual([{ proto: "tcp", hostPort: 123, guestPort: 123 }]);
    expect(parseCustomPort("udp,111:222")).toEqual([{ proto: "udp", hostPort: 111, guestPort: 222 }]);
    expect(parseCustomPort("tcp,333-335")).toEqual([
      { proto: "tcp", hostPort: 333, guestPort: 333 },
      { proto: "tcp", hostPort: 334, guestPort: 334 },
      { proto: "tcp", hostPort: 335, guestPort: 335 },
    ]);
    expect(parseCustomPort("udp,555-557:777-779")).toEqual([
      { proto: "udp", hostPort: 555, guestPort: 777 },
      { proto: "udp", hostPort: 556, guestPort: 778 },
      { proto: "udp", hostPort: 557, guestPort: 779 },
    ]);
    expect(parseCustomPort("tcp,333-444")).toHaveLength(112);
    expect(parseCustomPort("udp,555-666:777-888")).toHaveLength(112);
  });

  it("tolerates case and spaces, a one-port range, and the port edges", () => {
    expect(parseCustomPort(" TCP , 80 : 8080 ")).toEqual([{ proto: "tcp", hostPort: 80, guestPort: 8080 }]);
    expect(parseCustomPort("tcp,7-7:9-9")).toEqual([{ proto: "tcp", hostPort: 7, guestPort: 9 }]);
    expect(parseCustomPort("udp,1:65535")).toEqual([{ proto: "udp", hostPort: 1, guestPort: 65535 }]);
  });

  it.each([
    ["", "empty", "the entry is empty"],
    ["tcp", "bad_format", "expected '<protocol>,<ports>'"],
    ["tcp,1,2", "bad_format", "expected '<protocol>,<ports>'"],
    ["tcp/udp,123", "bad_protocol", "protocol must be 'tcp' or 'udp'"],
    ["sctp,123", "bad_protocol", "protocol must be 'tcp' or 'udp'"],
    [",123", "bad_protocol", "protocol must be 'tcp' or 'udp'"],
    ["tcp,", "empty", "a port is empty"],
    ["tcp,80:", "empty", "a port is empty"],
    ["tcp,:80", "empty", "a port is empty"],
    ["tcp,1:2:3", "bad_format", "more than one ':'"],
    ["tcp,abc", "not_digit", "'abc' is not a port or a port range"],
    ["tcp,-5", "not_digit", "'-5' is not a port or a port range"],
    ["tcp,1-2-3", "not_digit", "'1-2-3' is not a port or a port range"],
    ["tcp,0", "out_of_range", "port 0 is out of range [1, 65535]"],
    ["tcp,65536", "out_of_range", "port 65536 is out of range [1, 65535]"],
    ["tcp,123456", "out_of_range", "port 123456 is out of range [1, 65535]"],
    ["udp,10:0", "out_of_range", "port 0 is out of range [1, 65535]"],
    ["tcp,444-333", "reversed_range", "range 444-333 starts after it ends"],
    ["tcp,100-101:200", "range_length_mismatch", "host range has 2 ports, guest range 1"],
    ["udp,555-666:777-880", "range_length_mismatch", "host range has 112 ports, guest range 104"],
  ] as Array<[string, PortSpecErrorCode, string]>)("refuses %j (%s)", (entry, code, why) => {
    const e = specError(() => parseCustomPort(entry));
    expect(e.code).toBe(code);
    expect(e.field).toBe("custom_port");
    expect(e.entry).toBe(entry);
    expect(e.message).toBe(`custom_port '${entry}' is invalid: ${why} ${USAGE}`);
  });

  it("refuses entries that are not strings", () => {
    const e = specError(() => parseCustomPort(123));
    expect(e.code).toBe("not_string");
    expect(e.message).toBe("custom_port entries must be strings like 'tcp,123'");
  });
});

describe("custom_port lists", () => {
  it("concatenates entries in order; absent means none", () => {
    expect(parseCustomPorts(["tcp,80", "udp,80", "tcp,81:8081"])).toEqual([
      { proto: "tcp", hostPort: 80, guestPort: 80 },
      { proto: "udp", hostPort: 80, guestPort: 80 },
      { proto: "tcp", hostPort: 81, guestPort: 8081 },
    ]);
    expect(parseCustomPorts(undefined)).toEqual([]);
    expect(parseCustomPorts([])).toEqual([]);
  });

  it("refuses a host port forwarded twice with the same protocol", () => {
    const e = specError(() => parseCustomPorts(["tcp,100-110", "tcp,105:22"]));
    expect(e.code).toBe("duplicate");
    expect(e.entry).toBe("tcp,105:22");
    expect(e.message).toContain("tcp port 105 is already forwarded by 'tcp,100-110'");
  });

  it("refuses lists that are not arrays and lists that expand too far", () => {
    expect(specError(() => parseCustomPorts("tcp,80")).code).toBe("bad_format");
    const e = specError(() => parseCustomPorts(["tcp,1000-1999", "udp,1-100"]));
    expect(e.code).toBe("too_many");
    expect(e.message).toBe("custom_port expands to more than 1024 ports");
    expect(parseCustomPorts(["tcp,1-10", "udp,1-10"], { maxForwards: 20 })).toHaveLength(20);
    expect(specError(() => parseCustomPorts(["tcp,1-10", "udp,1-11"], { maxForwards: 20 })).code).toBe("too_many");
    expect(specError(() => parseCustomPorts(["tcp,1-65535"])).code).toBe("too_many");
  });

  it("uses the field name given (modify's new_custom_port)", () => {
    const e = specError(() => parseCustomPorts(["xyz,1"], { field: "new_custom_port" }));
    expect(e.field).toBe("new_custom_port");
    expect(e.message.startsWith("new_custom_port 'xyz,1' is invalid: ")).toBe(true);
  });
});
