import { useEffect, useState } from "preact/hooks";
import type { VmItem } from "../../../src/api/host-vm.js";
import type { HostClient } from "../api/host.js";
import { VncConsole } from "./console.js";
import { VmCharts } from "./charts.js";
import { DisksPane, LimitsPane, SnapshotsPane } from "./vm-storage.js";

type Pane = "console" | "charts" | "log" | "disks" | "snapshots" | "limits";

/** One VM: its console, live charts, lifecycle log, disks, snapshots and I/O caps. */
export function VmDetail({ client, vm }: { client: HostClient; vm: VmItem }) {
  const [pane, setPane] = useState<Pane>("console");
  return (
    <div class="card detail">
      <h3>
        {vm.nickname || vm.id} <span class="mono muted">{vm.id}</span>
      </h3>
      <div class="tabs">
        {(["console", "charts", "log", "disks", "snapshots", "limits"] as const).map((p) => (
          <button class={pane === p ? "tab active" : "tab"} data-pane={p} onClick={() => setPane(p)}>
            {p}
          </button>
        ))}
      </div>
      {pane === "console" &&
        (vm.status === "running" ? <VncConsole client={client} vmId={vm.id} /> : <p class="muted">The console opens while the VM runs ({vm.status}).</p>)}
      {pane === "charts" && <VmCharts client={client} vmId={vm.id} />}
      {pane === "log" && <Fetched load={() => client.log(vm.id)} render={(l) => <pre class="log">{l.lines.join("\n")}</pre>} />}
      {pane === "disks" && <DisksPane client={client} vm={vm} />}
      {pane === "snapshots" && <SnapshotsPane client={client} vm={vm} />}
      {pane === "limits" && <LimitsPane client={client} vm={vm} />}
    </div>
  );
}

export { gib } from "./format.js";

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
