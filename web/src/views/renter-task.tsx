import { useState } from "preact/hooks";
import type { RenterClient } from "../api/renter.js";
import { Reloaded, fieldsOf, useAction } from "./action.js";
import { DiskTable } from "./disk-table.js";

type Pane = "detail" | "log" | "modify" | "password" | "disks" | "snapshots";

/** A value of a DBC reply as text (its shapes are DBC's: nested values show as JSON). */
const shown = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));

/** One task of the renter: its detail, the `new_*` fields of tasks/modify, its disks and snapshots. */
export function RenterTask({ client, taskId }: { client: RenterClient; taskId: string }) {
  const [pane, setPane] = useState<Pane>("detail");
  const [version, setVersion] = useState(0);
  const { run, busy, line } = useAction(() => setVersion((v) => v + 1));
  return (
    <div class="card detail" data-task-detail={taskId}>
      <h3 class="mono">{taskId}</h3>
      <div class="tabs">
        {(["detail", "log", "modify", "password", "disks", "snapshots"] as const).map((p) => (
          <button class={pane === p ? "tab active" : "tab"} data-pane={p} onClick={() => setPane(p)}>
            {p}
          </button>
        ))}
      </div>
      {pane === "detail" && (
        <Reloaded
          version={version}
          load={() => client.detail(taskId)}
          render={(d) => (
            <table>
              <tbody>
                {Object.entries(d).map(([k, v]) => (
                  <tr data-field={k}>
                    <th>{k}</th>
                    <td class="mono">{shown(v)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        />
      )}
      {pane === "log" && <Reloaded version={version} load={() => client.logs(taskId)} render={(l) => <pre class="log">{l.log_content.join("\n")}</pre>} />}
      {pane === "password" && <PasswordForm client={client} taskId={taskId} run={run} busy={busy} />}
      {pane === "modify" && <ModifyForm client={client} taskId={taskId} run={run} busy={busy} />}
      {pane === "disks" && <RenterDisks client={client} taskId={taskId} run={run} busy={busy} version={version} />}
      {pane === "snapshots" && <RenterSnapshots client={client} taskId={taskId} run={run} busy={busy} version={version} />}
      {line}
    </div>
  );
}

type Run = (label: string, op: () => Promise<string>) => Promise<void>;
interface PaneProps {
  client: RenterClient;
  taskId: string;
  run: Run;
  busy: boolean;
}

/** The fields of tasks/modify that DBC allows; empty ones change nothing. */
const MODIFY_FIELDS = [
  ["new_cpu_cores", "CPU cores"],
  ["new_mem_size", "Memory (GB)"],
  ["new_gpu_count", "GPUs"],
  ["new_ssh_port", "SSH port"],
  ["new_rdp_port", "RDP port"],
  ["new_vnc_port", "VNC port"],
  ["new_custom_port", "Custom ports (DBC syntax)"],
  ["new_network_filters", "Network filters"],
  ["new_public_ip", "Public IP"],
] as const;

function ModifyForm({ client, taskId, run, busy }: PaneProps) {
  const submit = (e: Event) => {
    e.preventDefault();
    const field = fieldsOf(e);
    const additional = Object.fromEntries(MODIFY_FIELDS.map(([k]) => [k, field(k)]).filter(([, v]) => v !== ""));
    void run("Modifying the task", async () => `Modified: ${shown(await client.modify(taskId, additional))}`);
  };
  return (
    <form class="grid" onSubmit={submit} data-form="task-modify">
      {MODIFY_FIELDS.map(([k, label]) => (
        <label>
          {label} <input name={k} placeholder="unchanged" />
        </label>
      ))}
      <button type="submit" disabled={busy}>
        Modify
      </button>
      <p class="muted wide">CPU, memory, GPUs and a new VNC port take effect at the next boot; the other ports at once.</p>
    </form>
  );
}

/** tasks/passwd: a guest user's password, set through the guest agent. */
function PasswordForm({ client, taskId, run, busy }: PaneProps) {
  const submit = (e: Event) => {
    e.preventDefault();
    const field = fieldsOf(e);
    const user = field("username");
    void run(`Setting ${user}'s password`, async () => `Password of ${user} set: ${shown(await client.passwd(taskId, user, field("password")))}`);
  };
  return (
    <form class="actions" onSubmit={submit} data-form="task-passwd">
      <label>
        User <input name="username" required />
      </label>
      <label>
        New password <input name="password" type="password" required />
      </label>
      <button type="submit" disabled={busy}>
        Set password
      </button>
    </form>
  );
}

function RenterDisks({ client, taskId, run, busy, version }: PaneProps & { version: number }) {
  const add = (size: number) => void run(`Adding a ${size} GiB disk`, async () => `Added: ${shown(await client.addDisk(taskId, size))}`);
  const grow = (disk: string, by: number) => void run(`Growing ${disk} by ${by} GiB`, async () => `Grown: ${shown(await client.resizeDisk(taskId, disk, by))}`);
  const remove = (disk: string) => {
    if (!confirm(`Delete disk ${disk}? Its data is lost.`)) return;
    void run(`Deleting ${disk}`, async () => `Deleted ${disk}: ${shown(await client.deleteDisk(taskId, disk))}`);
  };
  return (
    <div>
      <Reloaded
        version={version}
        load={() => client.disks(taskId)}
        render={(list) => (
          <DiskTable
            rows={list.map((d) => ({ name: d.name, size: shown(d.size), file: d.file, dataDisk: d.name !== "vda" }))}
            busy={busy}
            addForm="task-disk-add"
            onAdd={add}
            onGrow={grow}
            onRemove={remove}
          />
        )}
      />
    </div>
  );
}

/** A task's snapshots; a new one is a long operation, followed through `operations/<id>` until it ends. */
function RenterSnapshots({ client, taskId, run, busy, version }: PaneProps & { version: number }) {
  const [progress, setProgress] = useState("");
  const create = (e: Event) => {
    e.preventDefault();
    const field = fieldsOf(e);
    const name = field("name");
    void run(`Taking snapshot ${name}`, async () => {
      const { operation_id } = await client.createSnapshot(taskId, name, field("desc"));
      if (!operation_id) return `Snapshot ${name} begun`;
      for (;;) {
        const op = await client.operation(operation_id);
        setProgress(`${op.state} ${op.progress ?? ""}`);
        if (op.end_time !== null) {
          setProgress("");
          if (op.error) throw new Error(op.error);
          return `Snapshot ${name}: ${op.state}`;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    });
  };
  const restore = (name: string) => {
    if (!confirm(`Restore the task to snapshot ${name}? What its disks wrote since is lost.`)) return;
    void run(`Restoring ${name}`, async () => `Restored ${name}: ${shown(await client.restoreSnapshot(taskId, name))}`);
  };
  const remove = (name: string) => {
    if (!confirm(`Delete snapshot ${name}?`)) return;
    void run(`Deleting snapshot ${name}`, async () => `Deleted snapshot ${name}: ${shown(await client.deleteSnapshot(taskId, name))}`);
  };
  return (
    <div>
      <Reloaded
        version={version}
        load={() => client.snapshots(taskId)}
        render={(list) =>
          list.length === 0 ? (
            <p class="muted">No snapshots.</p>
          ) : (
            <table>
              <tbody>
                {list.map((s) => (
                  <tr data-snapshot={s.snapshot_name}>
                    {Object.values(s).map((v) => (
                      <td>{shown(v)}</td>
                    ))}
                    <td class="actions">
                      <button class="small" disabled={busy} onClick={() => restore(s.snapshot_name)} data-action="snapshot-restore">
                        restore
                      </button>
                      <button class="small danger" disabled={busy} onClick={() => remove(s.snapshot_name)} data-action="snapshot-delete">
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
      <form class="grid" onSubmit={create} data-form="task-snapshot-create">
        <label>
          Name <input name="name" required />
        </label>
        <label class="wide">
          Description <input name="desc" />
        </label>
        <button type="submit" disabled={busy}>
          Take snapshot
        </button>
      </form>
      {progress && (
        <p class="muted" data-progress="operation">
          {progress}
        </p>
      )}
    </div>
  );
}

/** The renter's LAN networks (`/api/v1/lan*`): list, create, delete. */
export function RenterLans({ client }: { client: RenterClient }) {
  const [version, setVersion] = useState(0);
  const { run, busy, line } = useAction(() => setVersion((v) => v + 1));
  const create = (e: Event) => {
    e.preventDefault();
    const field = fieldsOf(e);
    const name = field("network_name");
    void run(`Creating LAN ${name}`, async () => `Created LAN ${name}: ${shown(await client.createLan(name, field("ip_cidr")))}`);
  };
  const remove = (name: string) => {
    if (!confirm(`Delete LAN ${name}?`)) return;
    void run(`Deleting LAN ${name}`, async () => `Deleted LAN ${name}: ${shown(await client.deleteLan(name))}`);
  };
  return (
    <section>
      <h2>My LAN networks</h2>
      <Reloaded
        version={version}
        load={() => client.lans()}
        render={(list) =>
          list.length === 0 ? (
            <p class="muted">No LAN networks.</p>
          ) : (
            <table>
              <tbody>
                {list.map((n) => (
                  <tr data-lan={n.network_name}>
                    <td class="mono">{n.network_name}</td>
                    <td class="mono">{shown(n.ip_cidr)}</td>
                    <td class="mono muted">{shown(n.vxlan_vni)}</td>
                    <td>
                      <button class="small danger" disabled={busy} onClick={() => remove(n.network_name)} data-action="lan-delete">
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
      <form class="actions" onSubmit={create} data-form="lan-create">
        <label>
          Name <input name="network_name" required />
        </label>
        <label>
          Subnet <input name="ip_cidr" placeholder="10.20.0.0/24" required />
        </label>
        <button type="submit" disabled={busy}>
          Create LAN
        </button>
      </form>
      {line}
    </section>
  );
}
