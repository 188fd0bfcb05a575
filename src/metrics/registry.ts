import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { GroupList } from "../api/host.js";
import type { MemberState } from "../group/liveness.js";
import { VM_STATUSES } from "../vm/state.js";
import type { VmFigures } from "./vm-figures.js";

const MEMBER_STATES: readonly MemberState[] = ["alive", "suspect", "dead"];

/** Request latencies: the host API answers in milliseconds; creating a VM or a forwarded call takes seconds. */
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** A forwarded call is bounded by 2 s to connect and 10 s to reply (group/forward.ts). */
const FORWARD_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

/**
 * The metrics of one app, in a registry of its own (never prom-client's global one: a test process
 * builds several apps). Counters the app counts as things happen; gauges of state (VMs, members,
 * per-VM figures) are set from a fresh read at each scrape (`setVms`, `setMembers`).
 */
export class AppMetrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: "batu_http_requests_total",
    help: "HTTP requests answered, by method, route pattern and status",
    labelNames: ["method", "route", "status"] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: "batu_http_request_duration_seconds",
    help: "Time to answer an HTTP request, by method, route pattern and status",
    labelNames: ["method", "route", "status"] as const,
    buckets: HTTP_BUCKETS,
    registers: [this.registry],
  });

  readonly forwardDuration = new Histogram({
    name: "batu_forward_duration_seconds",
    help: "Renter calls a master forwarded to a member: time to the member's reply, by outcome (replied, unreachable)",
    labelNames: ["outcome"] as const,
    buckets: FORWARD_BUCKETS,
    registers: [this.registry],
  });

  readonly imageBytes = new Counter({
    name: "batu_image_transfer_bytes_total",
    help: "Image bytes this node's image center moved, by direction (download, upload)",
    labelNames: ["direction"] as const,
    registers: [this.registry],
  });

  private readonly vms = new Gauge({ name: "batu_vms", help: "VMs of this host, by status", labelNames: ["status"] as const, registers: [this.registry] });
  private readonly vmUnread = new Gauge({
    name: "batu_vm_figures_unread",
    help: "Running VMs whose live figures the last scrape could not read within its bound",
    registers: [this.registry],
  });
  private readonly vmVcpus = this.perVmGauge("batu_vm_vcpus", "vCPUs of a running VM");
  private readonly vmUptime = this.perVmGauge("batu_vm_uptime_seconds", "Time since the VM's QEMU started");
  private readonly vmCpu = this.perVmCounter("batu_vm_cpu_seconds_total", "vCPU time the VM's guest used (all vCPUs)");
  private readonly vmMemoryConfigured = this.perVmGauge("batu_vm_memory_configured_bytes", "Guest memory the VM was given");
  private readonly vmMemoryUsed = this.perVmGauge("batu_vm_memory_used_bytes", "Resident memory of the VM's QEMU process");
  private readonly vmDiskRead = this.perVmCounter("batu_vm_disk_read_bytes_total", "Bytes the guest read from its disks (QMP query-blockstats)");
  private readonly vmDiskWritten = this.perVmCounter("batu_vm_disk_written_bytes_total", "Bytes the guest wrote to its disks (QMP query-blockstats)");
  private readonly vmNetRx = this.perVmCounter("batu_vm_network_receive_bytes_total", "Bytes the guest's NICs received, where QEMU counts them");
  private readonly vmNetTx = this.perVmCounter("batu_vm_network_transmit_bytes_total", "Bytes the guest's NICs sent, where QEMU counts them");

  private readonly members = new Gauge({
    name: "batu_group_members",
    help: "Members of this master's group, by state (alive, suspect, dead); none on a member",
    labelNames: ["state"] as const,
    registers: [this.registry],
  });
  private readonly heartbeatAge = new Gauge({
    name: "batu_group_member_heartbeat_age_seconds",
    help: "Time since the master last heard from each member (its join or last heartbeat)",
    labelNames: ["address", "node_id", "nickname"] as const,
    registers: [this.registry],
  });

  constructor() {
    // The agent process itself: CPU, memory, event loop lag, open files (process_*, nodejs_*).
    collectDefaultMetrics({ register: this.registry });
  }

  /** Sets the VM gauges and counters from a scrape's read; VMs gone since the last scrape lose their series. */
  setVms(read: VmFigures): void {
    this.vms.reset();
    for (const s of VM_STATUSES) this.vms.set({ status: s }, 0);
    for (const vm of read.records) this.vms.inc({ status: vm.status });
    this.vmUnread.set(read.unread);
    const perVm = [this.vmVcpus, this.vmUptime, this.vmCpu, this.vmMemoryConfigured, this.vmMemoryUsed, this.vmDiskRead, this.vmDiskWritten, this.vmNetRx, this.vmNetTx];
    for (const m of perVm) m.reset();
    for (const f of read.figures) {
      const l = { vm_id: f.vm_id };
      this.vmVcpus.set(l, f.cpu.vcpus);
      this.vmMemoryConfigured.set(l, f.memory.configured_bytes);
      if (f.uptime_sec !== null) this.vmUptime.set(l, f.uptime_sec);
      // A counter read from QEMU: its value now, not an increment (QEMU's own counters restart with it).
      if (f.cpu.time_ms !== null) this.vmCpu.inc(l, f.cpu.time_ms / 1000);
      if (f.memory.used_bytes !== null) this.vmMemoryUsed.set(l, f.memory.used_bytes);
      if (f.disk.read_bytes !== null) this.vmDiskRead.inc(l, f.disk.read_bytes);
      if (f.disk.written_bytes !== null) this.vmDiskWritten.inc(l, f.disk.written_bytes);
      if (f.network.rx_bytes !== null) this.vmNetRx.inc(l, f.network.rx_bytes);
      if (f.network.tx_bytes !== null) this.vmNetTx.inc(l, f.network.tx_bytes);
    }
  }

  /** Sets the group gauges from the master's member list at `now`; `undefined` (not a master): no members. */
  setMembers(list: GroupList | undefined, now: Date): void {
    this.members.reset();
    this.heartbeatAge.reset();
    for (const s of MEMBER_STATES) this.members.set({ state: s }, 0);
    for (const m of list?.member ?? []) {
      this.members.inc({ state: m.state });
      const ageSec = Math.max(0, (now.getTime() - Date.parse(m.last_seen)) / 1000);
      this.heartbeatAge.set({ address: m.address, node_id: m.node_id ?? "", nickname: m.nickname }, ageSec);
    }
  }

  private perVmGauge(name: string, help: string): Gauge<"vm_id"> {
    return new Gauge({ name, help, labelNames: ["vm_id"] as const, registers: [this.registry] });
  }

  private perVmCounter(name: string, help: string): Counter<"vm_id"> {
    return new Counter({ name, help, labelNames: ["vm_id"] as const, registers: [this.registry] });
  }
}
