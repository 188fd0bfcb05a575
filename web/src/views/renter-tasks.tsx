import { useEffect, useState } from "preact/hooks";
import type { RenterClient, RenterTask } from "../api/renter.js";
import { RenterLans, RenterTask as RenterTaskDetail } from "./renter-task.js";

/**
 * A renter's tasks on the node, from the renter API (`/api/v1/tasks`): listed once, then kept live by
 * `GET /api/v1/events` (each change of status or readiness); start, stop, delete, and a new task.
 */
export function RenterTasks({ client }: { client: RenterClient }) {
  const [tasks, setTasks] = useState<Map<string, RenterTask>>(new Map());
  const [error, setError] = useState("");
  const [selected, setSelected] = useState<string | undefined>();
  useEffect(() => {
    const abort = new AbortController();
    client.tasks().then(
      (list) => setTasks(new Map(list.map((t) => [t.task_id, t]))),
      (e: unknown) => setError((e as Error).message),
    );
    client
      .events(abort.signal, (t) =>
        setTasks((m) => {
          const next = new Map(m);
          if (t.status === "deleted") next.delete(t.task_id);
          else next.set(t.task_id, { ...m.get(t.task_id), ...t });
          return next;
        }),
      )
      .catch((e: unknown) => abort.signal.aborted || setError(`event stream: ${(e as Error).message}`));
    return () => abort.abort();
  }, [client]);

  const run = async (work: () => Promise<unknown>) => {
    setError("");
    try {
      await work();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const create = (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const additional = { cpu_cores: String(f.get("cpu")), mem_size: String(f.get("mem")), image_name: String(f.get("image") || "batu-demo.qcow2") };
    void run(async () => {
      const t = await client.start(additional);
      setTasks((m) => new Map(m).set(t.task_id, t));
    });
  };

  return (
    <section>
      <h2>My tasks on node <span class="mono">{client.nodeId.slice(0, 16)}…</span></h2>
      {error && <p class="error">{error}</p>}
      <form class="card grid" onSubmit={create}>
        <label>
          CPU cores <input name="cpu" type="number" min="1" value="1" />
        </label>
        <label>
          Memory (GB) <input name="mem" type="number" min="1" value="1" />
        </label>
        <label>
          Image <input name="image" placeholder="batu-demo.qcow2" />
        </label>
        <button type="submit">Start a new task</button>
      </form>
      <table>
        <thead>
          <tr>
            <th>Task</th>
            <th>Status</th>
            <th>Ready</th>
            <th>Created</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {[...tasks.values()].map((t) => (
            <tr data-task={t.task_id} class={selected === t.task_id ? "selected" : ""}>
              <td class="mono" onClick={() => setSelected(selected === t.task_id ? undefined : t.task_id)}>
                {t.task_id}
              </td>
              <td>{t.status}</td>
              <td>{t.ready ? "ready" : "—"}</td>
              <td>{t.create_time ?? ""}</td>
              <td class="actions">
                {(["start", "shutdown", "restart", "poweroff", "reset", "stop", "delete"] as const).map((verb) => (
                  <button
                    class={verb === "delete" || verb === "poweroff" || verb === "reset" ? "danger small" : "small"}
                    onClick={() => (verb === "start" || verb === "shutdown" || confirm(`${verb} task ${t.task_id}?`)) && run(() => client.act(verb, t.task_id))}
                  >
                    {verb}
                  </button>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {selected && tasks.has(selected) && <RenterTaskDetail key={selected} client={client} taskId={selected} />}
      <RenterLans client={client} />
    </section>
  );
}
