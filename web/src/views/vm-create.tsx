import { useState } from "preact/hooks";
import type { VmAdd } from "../../../src/api/host-vm.js";
import type { HostClient } from "../api/host.js";

/** The body of `POST /common/vm/add` from the form; empty optional fields are left out (the agent chooses). */
function vmAddFrom(form: FormData): VmAdd {
  const text = (name: string) => String(form.get(name) ?? "").trim();
  const body: VmAdd = { cpu_physical_core: Number(text("cpu")), main_memory: text("memory") };
  if (text("nickname")) body.nickname = text("nickname");
  if (text("image")) body.image_name = text("image");
  if (text("disk")) body.disk_memory = text("disk");
  if (text("gpus")) body.gpu_count = Number(text("gpus"));
  if (text("ssh_port")) body.ssh_port = Number(text("ssh_port"));
  if (text("vnc_port")) body.vnc_port = Number(text("vnc_port"));
  const ports = text("ports").split(/[\s;]+/).filter(Boolean);
  if (ports.length > 0) body.custom_port = ports;
  return body;
}

export function VmCreate({ client, onCreated }: { client: HostClient; onCreated: (id: string) => void }) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      const { id } = await client.addVm(vmAddFrom(new FormData(e.currentTarget as HTMLFormElement)));
      onCreated(id);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card grid" onSubmit={submit} data-form="vm-add">
      <label>
        Name <input name="nickname" placeholder="web-1" />
      </label>
      <label>
        Image <input name="image" placeholder="batu-demo.qcow2" />
      </label>
      <label>
        CPU cores <input name="cpu" type="number" min="1" value="1" required />
      </label>
      <label>
        Memory <input name="memory" value="512M" required />
      </label>
      <label>
        Data disk <input name="disk" placeholder="8G (none when empty)" />
      </label>
      <label>
        GPUs <input name="gpus" type="number" min="0" placeholder="0" />
      </label>
      <label>
        SSH port <input name="ssh_port" type="number" placeholder="chosen" />
      </label>
      <label>
        VNC port <input name="vnc_port" type="number" placeholder="chosen" />
      </label>
      <label class="wide">
        Ports (DBC syntax, space-separated) <input name="ports" placeholder="tcp,8080:80 udp,111" />
      </label>
      <button type="submit" disabled={busy}>
        {busy ? "Creating…" : "Create and start"}
      </button>
      {error && <p class="error wide">{error}</p>}
    </form>
  );
}
