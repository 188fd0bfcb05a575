import { describe, expect, it } from "vitest";
import { FieldError } from "../../../vm/create-request.js";
import { fromHostAdd } from "./vm-add.js";

const GiB = 2 ** 30;

describe("fromHostAdd", () => {
  it("maps seed 000's fields, strings or numbers", () => {
    const r = fromHostAdd({ nickname: "a", cpu_physical_core: "2", cpu_virtual_core: 4, main_memory: "1G", disk_memory: 8, start_command: "x" });
    expect(r).toMatchObject({ cores: 2, vcpus: 4, memoryBytes: GiB, dataDiskBytes: 8 * GiB, startCommand: "x", imageName: "batu-demo.qcow2", owner: null });
    expect(r.sshPort).toBeUndefined();
  });
  it("names the field that is wrong", () => {
    const bad = (body: Record<string, unknown>, field: string) => {
      try {
        fromHostAdd({ cpu_physical_core: 1, main_memory: "1G", ...body } as never);
        throw new Error("accepted");
      } catch (e) {
        expect(e).toBeInstanceOf(FieldError);
        expect((e as FieldError).field).toBe(field);
      }
    };
    bad({ main_memory: "lots" }, "main_memory");
    bad({ main_memory: "16M" }, "main_memory");
    bad({ disk_memory: "1Q" }, "disk_memory");
    bad({ cpu_physical_core: 2, cpu_virtual_core: 3 }, "cpu_virtual_core");
    bad({ ssh_port: "x" }, "ssh_port");
    bad({ vnc_port: 5000 }, "vnc_port");
    bad({ custom_port: ["sctp,1"] }, "custom_port");
  });
});
