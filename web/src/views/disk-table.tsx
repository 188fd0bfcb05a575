/**
 * A VM's disks as a table, each data disk with "grow by GiB" and "delete", and a form to add one: the
 * operator's VM view and the renter's task view both show it, each calling its own API.
 */
import { fieldsOf } from "./action.js";

export interface DiskRow {
  name: string;
  /** As shown: "8G", "—" when unknown. */
  size: string;
  file: string;
  /** Whether grow and delete are offered (a data disk, not the system disk). */
  dataDisk: boolean;
}

export function DiskTable(props: {
  rows: DiskRow[];
  busy: boolean;
  /** The add form's `data-form` (tests find it by this). */
  addForm: string;
  onAdd: (gib: number) => void;
  onGrow: (disk: string, gib: number) => void;
  onRemove: (disk: string) => void;
}) {
  const { rows, busy } = props;
  const add = (e: Event) => {
    e.preventDefault();
    props.onAdd(Number(fieldsOf(e)("size_gib")));
  };
  const grow = (e: Event, disk: string) => {
    e.preventDefault();
    props.onGrow(disk, Number(fieldsOf(e)("grow_gib")));
  };
  return (
    <>
      <table>
        <tbody>
          {rows.map((d) => (
            <tr data-disk={d.name}>
              <td class="mono">{d.name}</td>
              <td data-field="size">{d.size}</td>
              <td class="mono muted">{d.file}</td>
              <td>
                {d.dataDisk && (
                  <form class="actions" onSubmit={(e) => grow(e, d.name)} data-form="disk-resize">
                    <input name="grow_gib" type="number" min="1" value="1" size={4} aria-label="grow by GiB" />
                    <button class="small" type="submit" disabled={busy}>
                      grow by GiB
                    </button>
                    <button class="small danger" type="button" disabled={busy} onClick={() => props.onRemove(d.name)} data-action="disk-delete">
                      delete
                    </button>
                  </form>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="actions" onSubmit={add} data-form={props.addForm}>
        <label>
          New data disk, GiB <input name="size_gib" type="number" min="1" value="1" required />
        </label>
        <button type="submit" disabled={busy}>
          Add disk
        </button>
      </form>
    </>
  );
}
