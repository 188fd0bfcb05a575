import { useState } from "preact/hooks";
import type { RentGrant } from "../../../src/api/host-rent.js";
import type { UsageReport } from "../../../src/api/host-gpu.js";
import type { HostClient } from "../api/host.js";
import { Reloaded, fieldsOf, useAction } from "./action.js";

const CAPS = ["gpus", "cpu_cores", "mem_gib", "disk_gib", "disk_iops", "disk_mbps", "net_mbit"] as const;

/** The body of `POST /common/rent/grant` from the form; empty caps are left out (no cap, or the node's default). */
function grantFrom(field: (name: string) => string): RentGrant {
  const body: RentGrant = { node_id: field("node_id"), wallet: field("wallet"), until: new Date(field("until")).toISOString() };
  for (const cap of CAPS) if (field(cap)) body[cap] = Number(field(cap));
  return body;
}

/** A month from now, as a datetime-local input's value (local time, to the minute). */
function aMonthAhead(): string {
  const t = new Date(Date.now() + 30 * 86_400_000);
  t.setMinutes(t.getMinutes() - t.getTimezoneOffset());
  return t.toISOString().slice(0, 16);
}

/** The rental ledger (`/common/rent/*`) and what renters used (`/common/usage`). */
export function RentalsView({ client }: { client: HostClient }) {
  const [version, setVersion] = useState(0);
  const { run, busy, line } = useAction(() => setVersion((v) => v + 1));
  const grant = (e: Event) => {
    e.preventDefault();
    const body = grantFrom(fieldsOf(e));
    void run(`Granting the node to ${body.wallet}`, async () => {
      const { rental } = await client.grant(body);
      return `Rental ${rental.id} granted to ${rental.renter} until ${rental.until}`;
    });
  };
  const revoke = (id: number) => {
    if (!confirm(`Revoke rental ${id}? The renter's tasks on the node stop being theirs to run.`)) return;
    void run(`Revoking rental ${id}`, async () => {
      await client.revoke(id);
      return `Rental ${id} revoked`;
    });
  };
  return (
    <section>
      <h2>Rentals</h2>
      <Reloaded
        version={version}
        load={() => client.rentals()}
        render={(l) =>
          l.rentals.length === 0 ? (
            <p class="muted">No rentals.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th>Id</th>
                  <th>Renter</th>
                  <th>State</th>
                  <th>Until</th>
                  <th>Caps</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {l.rentals.map((r) => (
                  <tr data-rental={r.id}>
                    <td>{r.id}</td>
                    <td class="mono">{r.renter}</td>
                    <td data-field="state">
                      <span class={`status ${r.state}`}>{r.state}</span>
                    </td>
                    <td>{r.until}</td>
                    <td class="muted">
                      {CAPS.filter((c) => r[c] !== null)
                        .map((c) => `${c} ${r[c]}`)
                        .join(", ") || (r.gpus === null ? "whole node" : "")}
                    </td>
                    <td>
                      {r.state === "active" && (
                        <button class="small danger" disabled={busy} onClick={() => revoke(r.id)} data-action="revoke">
                          revoke
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      />
      {/* The usage report names this node: the grant form's default node id. */}
      <Reloaded
        version={version}
        load={() => client.usage()}
        render={(u) => (
          <>
            <form class="card grid" onSubmit={grant} data-form="rent-grant">
              <label>
                Node id <input name="node_id" value={u.node_id} required />
              </label>
              <label class="wide">
                Renter wallet (SS58 or hex key) <input name="wallet" required />
              </label>
              <label>
                Until <input name="until" type="datetime-local" value={aMonthAhead()} required />
              </label>
              {CAPS.map((c) => (
                <label>
                  {c} <input name={c} type="number" min="1" placeholder={c === "gpus" ? "whole node" : "no cap"} />
                </label>
              ))}
              <button type="submit" disabled={busy}>
                Grant
              </button>
            </form>
            {line}
            <UsageTable client={client} report={u} />
          </>
        )}
      />
    </section>
  );
}

/** Each renter's use of the node over the last 30 days, and the same as a CSV file. */
function UsageTable({ client, report: u }: { client: HostClient; report: UsageReport }) {
  const [error, setError] = useState("");
  // A plain link cannot carry the admin token: the page fetches the CSV and hands the browser a blob.
  const download = async () => {
    try {
      const url = URL.createObjectURL(await client.usageCsv());
      const a = document.createElement("a");
      a.href = url;
      a.download = "batu-usage.csv";
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const hours = (h: number) => h.toFixed(2);
  return (
        <div data-part="usage">
          <div class="toolbar">
            <h3>
              Usage <span class="muted">{u.from} → {u.to}</span>
            </h3>
            <button class="small" onClick={download} data-action="usage-csv">
              Download CSV
            </button>
          </div>
          {error && <p class="error">{error}</p>}
          <table>
            <thead>
              <tr>
                <th>Renter</th>
                <th>VM-hours</th>
                <th>vCPU-hours</th>
                <th>Memory GiB-hours</th>
                <th>GPU-hours</th>
              </tr>
            </thead>
            <tbody>
              {u.usage.map((l) => (
                <tr data-usage={l.renter ?? "operator"}>
                  <td class="mono">{l.renter ?? "operator"}</td>
                  <td>{hours(l.vm_hours)}</td>
                  <td>{hours(l.vcpu_hours)}</td>
                  <td>{hours(l.mem_gib_hours)}</td>
                  <td>{hours(l.gpu_hours)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
  );
}
