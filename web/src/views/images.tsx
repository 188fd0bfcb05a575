import { useEffect, useState } from "preact/hooks";
import type { Transfer } from "../../../src/api/host-image.js";
import type { HostClient } from "../api/host.js";
import { Reloaded, useAction } from "./action.js";
import { gib } from "./format.js";

const FINISHED = new Set(["done", "stopped", "failed"]);

/** This node's images (the operator's and renters'), its image servers', and transfers between them (`/common/image/*`). */
export function ImagesView({ client }: { client: HostClient }) {
  const [version, setVersion] = useState(0);
  const reload = () => setVersion((v) => v + 1);
  const { run, busy, line } = useAction(reload);
  const [transfers, setTransfers] = useState<Transfer[]>([]);
  const follow = (t: Transfer) => setTransfers((all) => [t, ...all.filter((x) => x.name !== t.name || x.direction !== t.direction)]);
  const remove = (name: string) => {
    if (!confirm(`Delete image ${name} from this node?`)) return;
    void run(`Deleting ${name}`, async () => {
      await client.deleteImage(name);
      return `Deleted ${name}`;
    });
  };
  return (
    <section>
      <h2>Images</h2>
      <Reloaded
        version={version}
        load={() => client.images()}
        render={(l) => (
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Size</th>
                <th>Owner</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {l.images.map((i) => (
                <tr data-image={i.name}>
                  <td class="mono">{i.name}</td>
                  <td>{gib(i.size_bytes)}</td>
                  <td class="mono">{i.owner ?? "operator"}</td>
                  <td>
                    <button class="small danger" disabled={busy} onClick={() => remove(i.name)} data-action="image-delete">
                      delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      />
      {line}
      {transfers.length > 0 && (
        <div class="card">
          <h3>Transfers</h3>
          {transfers.map((t) => (
            <TransferRow key={`${t.direction}:${t.name}`} client={client} start={t} onFinished={reload} />
          ))}
        </div>
      )}
      <Reloaded
        version={0}
        load={() => client.imageServers()}
        render={({ servers }) =>
          servers.length === 0 ? (
            <p class="muted">No image servers (config.json image_servers, or a group's master).</p>
          ) : (
            <ServerImages client={client} servers={servers} onTransfer={follow} />
          )
        }
      />
    </section>
  );
}

/** An image server's images, each to pull; and this node's images to push to it. */
function ServerImages({ client, servers, onTransfer }: { client: HostClient; servers: string[]; onTransfer: (t: Transfer) => void }) {
  const [server, setServer] = useState(servers[0]!);
  const [error, setError] = useState("");
  const start = async (op: () => Promise<Transfer>) => {
    setError("");
    try {
      onTransfer(await op());
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const push = (e: Event) => {
    e.preventDefault();
    const name = String(new FormData(e.currentTarget as HTMLFormElement).get("name") ?? "").trim();
    void start(() => client.pushImage(server, name));
  };
  return (
    <div class="card" data-part="image-server">
      <div class="toolbar">
        <h3>Image server</h3>
        <select name="server" value={server} onChange={(e) => setServer((e.currentTarget as HTMLSelectElement).value)}>
          {servers.map((s) => (
            <option value={s}>{s}</option>
          ))}
        </select>
      </div>
      {error && <p class="error">{error}</p>}
      <Reloaded
        key={server}
        version={0}
        load={() => client.serverImages(server)}
        render={(l) =>
          l.images.length === 0 ? (
            <p class="muted">No images on {server}.</p>
          ) : (
            <table>
              <tbody>
                {l.images.map((i) => (
                  <tr data-server-image={i.name}>
                    <td class="mono">{i.name}</td>
                    <td>{gib(i.size_bytes)}</td>
                    <td>
                      <button class="small" onClick={() => void start(() => client.pullImage(server, i.name))} data-action="image-pull">
                        pull
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      />
      <form class="actions" onSubmit={push} data-form="image-push">
        <label>
          Push this node's image <input name="name" placeholder="my-image.qcow2" required />
        </label>
        <button type="submit">Push to {server}</button>
      </form>
    </div>
  );
}

/** A transfer followed through `GET /common/image/progress` (every 500 ms) until it is done, stopped or failed. */
function TransferRow({ client, start, onFinished }: { client: HostClient; start: Transfer; onFinished: () => void }) {
  const [t, setT] = useState(start);
  const [error, setError] = useState("");
  useEffect(() => {
    if (FINISHED.has(t.status)) {
      onFinished();
      return;
    }
    const timer = setTimeout(() => {
      client.transfer(t.name, t.direction).then(setT, (e: unknown) => setError((e as Error).message));
    }, 500);
    return () => clearTimeout(timer);
  }, [t]);
  const stop = () => void client.stopTransfer(t.name, t.direction).then(() => client.transfer(t.name, t.direction).then(setT), (e: unknown) => setError((e as Error).message));
  return (
    <div class="bar" data-transfer={`${t.direction}:${t.name}`} data-status={t.status}>
      <span class="mono">
        {t.direction === "download" ? "↓" : "↑"} {t.name}
      </span>
      <span class="bar-track">
        <span class="bar-fill" style={{ width: `${Math.round(t.progress * 100)}%` }} />
      </span>
      <span class="bar-text">
        {t.status} {Math.round(t.progress * 100)}% {t.error ?? ""} {error}
        {!FINISHED.has(t.status) && (
          <button class="small danger" onClick={stop} data-action="transfer-stop">
            stop
          </button>
        )}
      </span>
    </div>
  );
}
