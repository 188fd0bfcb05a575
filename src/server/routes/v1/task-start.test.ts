import { describe, expect, it } from "vitest";
import { FieldError } from "../../../vm/create-request.js";
import { fromDbcCreate } from "./task-start.js";

/** DBC-NodeScript's tasks/start `additional`: every value String()-ed, unused ones empty. */
const nodeScript = {
  task_id: "NodeScript0000000000A1",
  ssh_port: "20022",
  custom_port: ["tcp,30000-30001", "udp,30000-30001"],
  image_name: "batu-demo.qcow2",
  gpu_count: "0",
  cpu_cores: "2",
  mem_size: "4",
  disk_size: "10",
  vnc_port: "5901",
  rdp_port: "",
  operation_system: "linux",
  bios_mode: "legacy",
  data_file_name: "",
  public_ip: "",
  network_filters: [],
  network_name: "",
  vm_xml: "",
  vm_xml_url: "",
};

const refusal = (a: Record<string, unknown>) => {
  try {
    fromDbcCreate(a, "alice");
  } catch (e) {
    if (e instanceof FieldError) return e.message;
    throw e;
  }
  return "accepted";
};

describe("fromDbcCreate", () => {
  it("reads NodeScript's body: its own task id, string numbers, empty optional fields as not given", () => {
    const r = fromDbcCreate(nodeScript, "alice");
    expect(r).toMatchObject({
      id: "NodeScript0000000000A1",
      owner: "alice",
      cores: 2,
      vcpus: 2,
      memoryBytes: 4 * 2 ** 30,
      dataDiskBytes: 10 * 2 ** 30,
      dataFileName: null,
      sshPort: 20022,
      vncPort: 5901,
      gpuCount: 0,
      networkName: null,
    });
    expect(r.rdpPort).toBeUndefined();
    expect(r.customPorts).toHaveLength(4);
  });

  it("picks ports left out; a port given empty gets DBC's refusal; the other system's port is ignored", () => {
    const { ssh_port: _s, vnc_port: _v, ...noPorts } = nodeScript;
    const picked = fromDbcCreate(noPorts, "alice");
    expect(picked.sshPort).toBeUndefined();
    expect(picked.vncPort).toBeUndefined();
    expect(refusal({ ...nodeScript, ssh_port: "" })).toBe("ssh_port is empty");
    expect(refusal({ ...nodeScript, vnc_port: "" })).toBe("vnc_port is empty");
    expect(refusal({ ...nodeScript, image_name: "" })).toBe("accepted"); // the image is checked by the service: `image_name is empty`
    const windows = fromDbcCreate({ ...nodeScript, operation_system: "windows", ssh_port: "", rdp_port: "3390" }, "alice");
    expect(windows).toMatchObject({ os: "windows", sshPort: null, rdpPort: 3390 });
    expect(refusal({ ...nodeScript, operation_system: "windows", rdp_port: "" })).toBe("rdp_port is empty");
  });

  it("refuses what DBC refuses, in DBC's words", () => {
    expect(refusal({ ...nodeScript, task_id: "short" })).toBe("wrong task id length");
    expect(refusal({ ...nodeScript, cpu_cores: "0" })).toBe("cpu_cores is invalid");
    expect(refusal({ ...nodeScript, gpu_count: "-1" })).toBe("gpu_count is invalid (usage: gpu_count >= 0)");
    expect(refusal({ ...nodeScript, operation_system: "beos" })).toBe("unsupported operation system: beos (usage: 'linux' 'windows')");
    expect(refusal({ ...nodeScript, network_name: "lan1" })).toBe("can not find network info");
    expect(refusal({ ...nodeScript, multicast: ["10.0.0.1:5558"] })).toBe("address is not a multicast address");
  });

  it("lets guests join multicast groups, but not the LAN's own control traffic", () => {
    expect(fromDbcCreate({ ...nodeScript, multicast: ["230.0.0.1:5558"] }, "alice").multicast).toEqual(["230.0.0.1:5558"]);
    expect(refusal({ ...nodeScript, multicast: ["230.0.0.1:123"] })).toMatch(/invalid multicast port/);
    for (const group of ["239.255.255.250:1900", "224.0.0.251:5353", "224.0.1.1:123", "239.255.255.253:427"]) {
      expect(refusal({ ...nodeScript, multicast: [group] }), group).toMatch(/is the LAN's own control traffic/);
    }
  });
});
