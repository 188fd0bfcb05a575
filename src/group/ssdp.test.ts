import { describe, expect, it } from "vitest";
import { MASTER_ST, formatAnswer, formatSearch, parseAnswer, parseSearch } from "./ssdp.js";

const NODE = "ab".repeat(32);
const PROOF = "cd".repeat(32);

describe("SSDP messages", () => {
  it("a search round-trips, with and without a group name", () => {
    const challenge = "0123456789abcdef0123456789abcdef";
    const text = formatSearch({ groupName: "lab", challenge });
    expect(text).toMatch(/^M-SEARCH \* HTTP\/1\.1\r\n/);
    expect(text).toContain('MAN: "ssdp:discover"\r\n');
    expect(text.endsWith("\r\n\r\n")).toBe(true);
    expect(parseSearch(text)).toEqual({ groupName: "lab", challenge });
    expect(parseSearch(formatSearch({ groupName: null, challenge }))).toEqual({ groupName: null, challenge });
  });

  it("an answer round-trips and names where the master's API is", () => {
    const text = formatAnswer({ nodeId: NODE, groupName: "lab", port: 10000, proof: PROOF }, "10.0.0.1", "0.1.0");
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text).toContain("LOCATION: http://10.0.0.1:10000/master/group/hello\r\n");
    expect(parseAnswer(text)).toEqual({ nodeId: NODE, groupName: "lab", port: 10000, proof: PROOF });
  });

  it("ignores other SSDP traffic and malformed batu messages", () => {
    const upnp = "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n";
    expect(parseSearch(upnp)).toBeNull();
    expect(parseSearch(`M-SEARCH * HTTP/1.1\r\nST: ${MASTER_ST}\r\nX-BATU-CHALLENGE: nothex!\r\n\r\n`)).toBeNull();
    expect(parseSearch("NOTIFY * HTTP/1.1\r\n\r\n")).toBeNull();
    expect(parseSearch("x".repeat(5000))).toBeNull();
    const answer = formatAnswer({ nodeId: NODE, groupName: "lab", port: 10000, proof: PROOF }, "10.0.0.1", "0.1.0");
    expect(parseAnswer(answer.replace("X-BATU-PORT: 10000", "X-BATU-PORT: 70000"))).toBeNull();
    expect(parseAnswer(answer.replace(`X-BATU-NODE-ID: ${NODE}`, "X-BATU-NODE-ID: me"))).toBeNull();
    expect(parseAnswer(answer.replace(`ST: ${MASTER_ST}`, "ST: upnp:rootdevice"))).toBeNull();
    expect(parseAnswer("")).toBeNull();
  });
});
