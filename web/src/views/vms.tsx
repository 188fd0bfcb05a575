import { useEffect, useState } from "preact/hooks";
import type { VmItem } from "../../../src/api/host-vm.js";
import type { HostClient } from "../api/host.js";
import { VmCreate } from "./vm-create.js";
import { VmDetail } from "./vm-detail.js";

type Action = "start" | "shutdown" | "poweroff" | "restart" | "delete";

/**
 * The host's VMs, live: `/common/vm/events` sends the list, then each change; nothing polls. A stream
 * that breaks (agent restart) is opened again after a pause, and its first message is the whole list.
 */
function useVmStream(client: HostClient): { vms: VmItem[]; error: string } {
  const [vms, setVms] = useState<Map<string, VmItem>>(new Map());
  const [error, setError] = useState("");
  useEffect(() => {
    const abort = new AbortController();
    const follow = async (): Promise<void> => {
      while (!abort.signal.aborted) {
        try {
          await client.vmEvents(abort.signal, (e) => {
            setError("");
            if (e.type === "list") setVms(new Map(e.vms.map((v) => [v.id, v])));
            else if (e.type === "vm") setVms((m) => new Map(m).set(e.vm.id, e.vm));
            else
              setVms((m) => {
                const next = new Map(m);
                next.delete(e.id);
                return next;
              });
          });
          if (!abort.signal.aborted) setError("the event stream ended; reconnecting");
        } catch (err) {
          if (abort.signal.aborted) return;
          setError(`event stream: ${(err as Error).message}; reconnecting`);
        }
        await new Promise((r) => setTimeout(r, 3000));
      }
    };
    void follow();
    return () => abort.abort();
  }, [client]);
  return { vms: [...vms.values()], error };
}

export function VmsView({ client }: { client: HostClient }) {
  const { vms, error } = useVmStream(client);
  const [selected, setSelected] = useState<string>();
  const [creating, setCreating] = useState(false);
  const [busy, setBusy] = useState<Record<string, string>>({});
  const [actionError, setActionError] = useState("");

  const act = async (vm: VmItem, action: Action) => {
    if (action === "delete" && !confirm(`Delete VM ${vm.id} and its disks?`)) return;
    setBusy((b) => ({ ...b, [vm.id]: action }));
    setActionError("");
    try {
      await client.control({ vm_id: vm.id, action });
    } catch (err) {
      setActionError(`${action} ${vm.id}: ${(err as Error).message}`);
    } finally {
      setBusy(({ [vm.id]: _done, ...rest }) => rest);
    }
  };
  const current = vms.find((v) => v.id === selected);

  return (
    <section>
      <div class="toolbar">
        <h2>Virtual machines ({vms.length})</h2>
        <button onClick={() => setCreating(!creating)} data-action="new-vm">
          {creating ? "Close" : "New VM"}
        </button>
      </div>
      {error && <p class="error">{error}</p>}
      {actionError && <p class="error">{actionError}</p>}
      {creating && <VmCreate client={client} onCreated={(id) => (setCreating(false), setSelected(id))} />}
      <table class="vms">
        <thead>
          <tr>
            <th>Id</th>
            <th>Name</th>
            <th>Status</th>
            <th>Ready</th>
            <th>Image</th>
            <th>CPU</th>
            <th>Memory</th>
            <th>GPUs</th>
            <th>SSH / VNC</th>
            <th>Owner</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {vms.map((vm) => (
            <tr key={vm.id} data-vm={vm.id} class={vm.id === selected ? "selected" : ""} onClick={() => setSelected(vm.id)}>
              <td class="mono">{vm.id}</td>
              <td>{vm.nickname}</td>
              <td data-field="status">
                <span class={`status ${vm.status.replace(/\s+/g, "-")}`}>{vm.status}</span>
              </td>
              <td data-field="ready">{vm.ready ? "ready" : "—"}</td>
              <td>{vm.image_name}</td>
              <td>{vm.cpu_virtual_core}</td>
              <td>{vm.main_memory}</td>
              <td>{vm.gpu_count}</td>
              <td class="mono">
                {vm.ssh_port ?? "—"} / {vm.vnc_port}
              </td>
              <td class="mono">{vm.owner ?? "operator"}</td>
              <td class="actions" onClick={(e) => e.stopPropagation()}>
                {busy[vm.id] ? (
                  <em>{busy[vm.id]}…</em>
                ) : (
                  (["start", "shutdown", "poweroff", "restart", "delete"] as const).map((a) => (
                    <button class={a === "delete" ? "danger small" : "small"} data-action={a} onClick={() => act(vm, a)}>
                      {a}
                    </button>
                  ))
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {current && <VmDetail key={current.id} client={client} vm={current} />}
    </section>
  );
}
