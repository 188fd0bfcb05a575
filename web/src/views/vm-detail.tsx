import { useEffect, useState } from "preact/hooks";
import type { VmItem } from "../../../src/api/host-vm.js";
import type { HostClient } from "../api/host.js";
import { VncConsole } from "./console.js";
import { VmCharts } from "./charts.js";

type Pane = "console" | "charts" | "log" | "disks" | "snapshots";

/** One VM: its console, live charts, lifecycle log, disks and snapshots. */
export function VmDetail({ client, vm }: { client: HostClient; vm: VmItem }) {
  const [pane, setPane] = useState<Pane>("console");
  return (
    <div class="card detail">
      <h3>
        {vm.nickname || vm.id} <span class="mono muted">{vm.id}</span>
      </h3>
      <div class="tabs">
        {(["console", "charts", "log", "disks", "snapshots"] as const).map((p) => (
          <button class={pane === p ? "tab active" : "tab"} data-pane={p} onClick={() => setPane(p)}>
            {p}
          </button>
        ))}
      </div>
      {pane === "console" &&
        (vm.status === "running" ? <VncConsole client={client} vmId={vm.id} /> : <p class="muted">The console opens while the VM runs ({vm.status}).</p>)}
      {pane === "charts" && <VmCharts client={client} vmId={vm.id} />}
      {pane === "log" && <Fetched load={() => client.log(vm.id)} render={(l) => <pre class="log">{l.lines.join("\n")}</pre>} />}
      {pane === "disks" && (
        <Fetched
          load={() => client.disks(vm.id)}
          render={(d) => (
            <table>
              <tbody>
                {d.disks.map((x) => (
                  <tr>
                    <td class="mono">{x.name}</td>
                    <td>{x.size_bytes === null ? "—" : gib(x.size_bytes)}</td>
                    <td class="mono muted">{x.file}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        />
      )}
      {pane === "snapshots" && (
        <Fetched
          load={() => client.snapshots(vm.id)}
          render={(s) =>
            s.snapshots.length === 0 ? (
              <p class="muted">No snapshots.</p>
            ) : (
              <table>
                <tbody>
                  {s.snapshots.map((x) => (
                    <tr>
                      <td>{x.name}</td>
                      <td>{x.status}</td>
                      <td>{x.created_at}</td>
                      <td>{x.description}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          }
        />
      )}
    </div>
  );
}

export const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

/** Loads once when shown, then renders; a refusal shows its reason. */
export function Fetched<T>({ load, render }: { load: () => Promise<T>; render: (value: T) => preact.ComponentChildren }) {
  const [state, setState] = useState<{ value?: T; error?: string }>({});
  useEffect(() => {
    load().then(
      (value) => setState({ value }),
      (e: unknown) => setState({ error: (e as Error).message }),
    );
  }, []);
  if (state.error) return <p class="error">{state.error}</p>;
  if (state.value === undefined) return <p class="muted">Loading…</p>;
  return <>{render(state.value)}</>;
}
