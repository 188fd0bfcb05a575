import { useState } from "preact/hooks";
import type { GroupMember } from "../../../src/api/host.js";
import { HostApiError, type HostClient } from "../api/host.js";
import { Reloaded, fieldsOf, useAction } from "./action.js";
import { Fetched, gib } from "./vm-detail.js";

/** A bar of used over total. */
function Bar({ label, used, total, text }: { label: string; used: number; total: number; text: string }) {
  const share = total > 0 ? Math.min(1, used / total) : 0;
  return (
    <div class="bar" title={`${label}: ${text}`}>
      <span class="bar-label">{label}</span>
      <span class="bar-track">
        <span class="bar-fill" style={{ width: `${(share * 100).toFixed(1)}%` }} />
      </span>
      <span class="bar-text">{text}</span>
    </div>
  );
}

function Member({ m, onRemove, busy }: { m: GroupMember; onRemove: (m: GroupMember) => void; busy: boolean }) {
  const c = m.capacity;
  return (
    <div class="card member" data-member={m.node_id ?? m.address}>
      <h3>
        {m.nickname || m.address} <span class={`status ${m.state}`}>{m.state}</span>{" "}
        <button class="small danger" disabled={busy} onClick={() => onRemove(m)} data-action="member-remove">
          remove
        </button>
      </h3>
      <p class="mono muted">
        {m.address} · {m.node_id ?? "no node id"} · seen {m.last_seen}
      </p>
      {c ? (
        <>
          <Bar label="Memory" used={c.memory_total_bytes - c.memory_available_bytes} total={c.memory_total_bytes} text={`${gib(c.memory_total_bytes - c.memory_available_bytes)} of ${gib(c.memory_total_bytes)}`} />
          <Bar label="Disk" used={c.disk_total_bytes - c.disk_free_bytes} total={c.disk_total_bytes} text={`${gib(c.disk_total_bytes - c.disk_free_bytes)} of ${gib(c.disk_total_bytes)}`} />
          <Bar label="GPUs" used={c.gpu_total - c.gpu_free} total={c.gpu_total} text={`${c.gpu_total - c.gpu_free} of ${c.gpu_total} in use`} />
          <p class="muted">
            {c.cpu_threads} CPU threads · {c.vm_count} VMs · batu {c.version}
          </p>
        </>
      ) : (
        <p class="muted">No heartbeat yet.</p>
      )}
    </div>
  );
}

/** The group (on a master) and this host's GPUs. */
export function GroupView({ client }: { client: HostClient }) {
  const [version, setVersion] = useState(0);
  const { run, busy, line } = useAction(() => setVersion((v) => v + 1));
  const remove = (m: GroupMember) => {
    const who = m.nickname || m.address;
    if (!confirm(`Remove ${who} from the group? It is forgotten until it joins again.`)) return;
    void run(`Removing ${who}`, async () => {
      const r = await client.removeMember(m.node_id ? { node_id: m.node_id } : { address: m.address });
      return `Removed ${r.address}`;
    });
  };
  return (
    <section>
      <h2>Group</h2>
      <MyMasterLine client={client} />
      <Reloaded
        version={version}
        load={() => client.group()}
        render={(g) => (
          <>
            <p class="muted">
              {g.group_name || "unnamed group"} · master {g.master} · {g.members.length} members
            </p>
            <div class="members">
              {g.members.map((m) => (
                <Member m={m} onRemove={remove} busy={busy} />
              ))}
            </div>
          </>
        )}
      />
      {line}
      <h2>GPUs of this host</h2>
      <Fetched
        load={() => client.gpus()}
        render={(list) =>
          list.length === 0 ? (
            <p class="muted">No GPUs for passthrough on this host.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th>PCI</th>
                  <th>Model</th>
                  <th>Memory</th>
                  <th>NUMA</th>
                  <th>State</th>
                  <th>VM / reason</th>
                </tr>
              </thead>
              <tbody>
                {list.map((g) => (
                  <tr>
                    <td class="mono">{g.pci_address}</td>
                    <td>
                      {g.vendor} {g.model}
                    </td>
                    <td>{g.memory_mib === null ? "—" : `${g.memory_mib} MiB`}</td>
                    <td>{g.numa_node ?? "—"}</td>
                    <td>{g.state}</td>
                    <td>{g.vm_id ?? g.reason ?? ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      />
    </section>
  );
}

/**
 * On a member: its master and whether the master took its last heartbeat (`GET /slave/group/my/master`);
 * on a host that is no member (409), a form to join a master's group (`POST /slave/group/join`).
 */
function MyMasterLine({ client }: { client: HostClient }) {
  const [version, setVersion] = useState(0);
  const { run, busy, line } = useAction(() => setVersion((v) => v + 1));
  const load = () => client.myMaster().catch((e: unknown) => (e instanceof HostApiError && e.status === 409 ? null : Promise.reject(e)));
  const join = (e: Event) => {
    e.preventDefault();
    const field = fieldsOf(e);
    const master = field("master");
    // The token stays with this agent, which proves it to the master (it is never sent there).
    void run(`Joining ${master}'s group`, async () => {
      const r = await client.join({ master, token: field("token") });
      return `Joined group ${r.group_name || "(unnamed)"} of ${r.master} as ${r.address}`;
    });
  };
  return (
    <>
      <Reloaded
        version={version}
        load={load}
        render={(m) =>
          m === null ? (
            <form class="actions" onSubmit={join} data-form="group-join">
              <span class="muted" data-part="my-master">
                This host is no member of another's group. Join one:
              </span>
              <label>
                Master (host:port) <input name="master" required />
              </label>
              <label>
                Its join token <input name="token" type="password" required minLength={16} />
              </label>
              <button type="submit" disabled={busy}>
                Join
              </button>
            </form>
          ) : (
            <p class="muted" data-part="my-master">
              This host is a member of {m.master}'s group: {m.reachable ? "heartbeats accepted" : "master unreachable"}, last {m.last_heartbeat ?? "none since start"}
              {m.last_error ? ` (${m.last_error})` : ""}
            </p>
          )
        }
      />
      {line}
    </>
  );
}
