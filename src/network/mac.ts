import { createHash } from "node:crypto";

/** A stable, locally administered MAC for NIC number `nic` of VM `vmId` (QEMU's 52:54:00 prefix). */
export function macFor(vmId: string, nic = 0): string {
  const h = createHash("sha256").update(`${vmId}/${nic}`).digest();
  return ["52", "54", "00", h[0], h[1], h[2]].map((b) => (typeof b === "number" ? b.toString(16).padStart(2, "0") : b)).join(":");
}
