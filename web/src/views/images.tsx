import type { HostClient } from "../api/host.js";
import { Fetched, gib } from "./vm-detail.js";

/** This node's images (the operator's and renters'). */
export function ImagesView({ client }: { client: HostClient }) {
  return (
    <section>
      <h2>Images</h2>
      <Fetched
        load={() => client.images()}
        render={(l) => (
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Size</th>
                <th>Owner</th>
              </tr>
            </thead>
            <tbody>
              {l.images.map((i) => (
                <tr>
                  <td class="mono">{i.name}</td>
                  <td>{gib(i.size_bytes)}</td>
                  <td class="mono">{i.owner ?? "operator"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      />
    </section>
  );
}
