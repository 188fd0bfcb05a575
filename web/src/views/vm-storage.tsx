import { useState } from "preact/hooks";
import type { VmItem } from "../../../src/api/host-vm.js";
import type { HostClient } from "../api/host.js";
import { Reloaded, fieldsOf, useAction } from "./action.js";
import { gib } from "./format.js";
import { DiskTable } from "./disk-table.js";

const isDataDisk = (name: string) => /^vd[b-z]$/.test(name);

/** A VM's disks: add a data disk, grow one, delete one (`/common/vm/disk/*`). */
export function DisksPane({ client, vm }: { client: HostClient; vm: VmItem }) {
  const [version, setVersion] = useState(0);
  const { run, busy, line } = useAction(() => setVersion((v) => v + 1));
  const add = (size: number) =>
    void run(`Adding a ${size} GiB disk`, async () => {
      const d = await client.addDisk({ vm_id: vm.id, size_gib: size });
      return `Added ${d.name} (${gib(d.size_bytes)})`;
    });
  const grow = (disk: string, by: number) =>
    void run(`Growing ${disk} by ${by} GiB`, async () => {
      const d = await client.resizeDisk({ vm_id: vm.id, disk, grow_gib: by });
      return `${d.name} is now ${gib(d.size_bytes)}`;
    });
  const remove = (disk: string) => {
    if (!confirm(`Delete disk ${disk} of ${vm.nickname || vm.id}? Its data is lost.`)) return;
    void run(`Deleting ${disk}`, async () => {
      await client.deleteDisk({ vm_id: vm.id, disk });
      return `Deleted ${disk}`;
    });
  };
  return (
    <div data-pane-body="disks">
      <Reloaded
        version={version}
        load={() => client.disks(vm.id)}
        render={(d) => (
          <DiskTable
            rows={d.disks.map((x) => ({ name: x.name, size: x.size_bytes === null ? "—" : gib(x.size_bytes), file: x.file, dataDisk: isDataDisk(x.name) }))}
            busy={busy}
            addForm="disk-add"
            onAdd={add}
            onGrow={grow}
            onRemove={remove}
          />
        )}
      />
      {line}
    </div>
  );
}

/** A VM's snapshots: take one (live while it runs), restore one (the VM shut off), delete one (`/common/vm/snapshot/*`). */
export function SnapshotsPane({ client, vm }: { client: HostClient; vm: VmItem }) {
  const [version, setVersion] = useState(0);
  const { run, busy, line } = useAction(() => setVersion((v) => v + 1));
  const create = (e: Event) => {
    e.preventDefault();
    const field = fieldsOf(e);
    const name = field("name");
    const description = field("description");
    const disks = field("disks").split(/[\s,]+/).filter(Boolean);
    void run(`Taking snapshot ${name}${vm.status === "running" ? " (live)" : ""}`, async () => {
      const { snapshot } = await client.createSnapshot({ vm_id: vm.id, name, ...(description ? { description } : {}), ...(disks.length ? { disks } : {}) });
      return `Snapshot ${snapshot.name} taken (image ${snapshot.image_name})`;
    });
  };
  const restore = (name: string) => {
    if (!confirm(`Restore ${vm.nickname || vm.id} to snapshot ${name}? Its disks' changes since are lost.`)) return;
    void run(`Restoring ${name}`, async () => {
      await client.restoreSnapshot({ vm_id: vm.id, name });
      return `Restored ${name}`;
    });
  };
  const remove = (name: string) => {
    if (!confirm(`Delete snapshot ${name}?`)) return;
    void run(`Deleting snapshot ${name}`, async () => {
      await client.deleteSnapshot({ vm_id: vm.id, name });
      return `Deleted snapshot ${name}`;
    });
  };
  return (
    <div data-pane-body="snapshots">
      <Reloaded
        version={version}
        load={() => client.snapshots(vm.id)}
        render={(s) =>
          s.snapshots.length === 0 ? (
            <p class="muted">No snapshots.</p>
          ) : (
            <table>
              <tbody>
                {s.snapshots.map((x) => (
                  <tr data-snapshot={x.name}>
                    <td>{x.name}</td>
                    <td>{x.status}</td>
                    <td>{x.created_at}</td>
                    <td>{x.description}</td>
                    <td class="mono muted">{["vda", ...x.data_disks.map((d) => d.name)].join(" ")}</td>
                    <td class="actions">
                      <button class="small" disabled={busy} onClick={() => restore(x.name)} data-action="snapshot-restore">
                        restore
                      </button>
                      <button class="small danger" disabled={busy} onClick={() => remove(x.name)} data-action="snapshot-delete">
                        delete
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      />
      <form class="grid" onSubmit={create} data-form="snapshot-create">
        <label>
          Name <input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}" />
        </label>
        <label>
          Description <input name="description" />
        </label>
        <label>
          Data disks too <input name="disks" placeholder="vdb vdc (vda always)" />
        </label>
        <button type="submit" disabled={busy}>
          Take snapshot
        </button>
      </form>
      {vm.status === "running" && <p class="muted">A restore needs the VM shut off.</p>}
      {line}
    </div>
  );
}

/** The VM's caps on disk I/O and network: what applies, and what QEMU and the kernel enforce now (`GET /common/vm/limits`). */
export function LimitsPane({ client, vm }: { client: HostClient; vm: VmItem }) {
  const cap = (v: number | null, unit: string) => (v === null ? "no cap" : `${v} ${unit}`);
  return (
    <Reloaded
      version={0}
      load={() => client.limits(vm.id)}
      render={(l) => (
        <div data-pane-body="limits">
          <table>
            <tbody>
              <tr>
                <th>Disk IOPS</th>
                <td data-field="disk_iops">{cap(l.disk_iops, "IOPS")}</td>
              </tr>
              <tr>
                <th>Disk MB/s</th>
                <td data-field="disk_mbps">{cap(l.disk_mbps, "MB/s")}</td>
              </tr>
              <tr>
                <th>Network</th>
                <td data-field="net_mbit">{cap(l.net_mbit, "Mbit/s each way")}</td>
              </tr>
            </tbody>
          </table>
          <h4>Enforced now</h4>
          {l.enforced.disks.length === 0 && l.enforced.taps.length === 0 ? (
            <p class="muted">Nothing read back (the VM does not run).</p>
          ) : (
            <table>
              <tbody>
                {l.enforced.disks.map((d) => (
                  <tr>
                    <td class="mono">{d.disk}</td>
                    <td>{cap(d.iops, "IOPS")}</td>
                    <td>{cap(d.mbps, "MB/s")}</td>
                    <td class="mono muted">{d.group ?? ""}</td>
                  </tr>
                ))}
                {l.enforced.taps.map((t) => (
                  <tr>
                    <td class="mono">{t.tap}</td>
                    <td>down {cap(t.down_mbit, "Mbit/s")}</td>
                    <td>up {cap(t.up_mbit, "Mbit/s")}</td>
                    <td />
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
    />
  );
}
