import { FieldError } from "../../vm/create-request.js";
import { PortSpecError } from "../../network/port-spec.js";

/** Runs a port parser, turning its PortSpecError into the FieldError both faces report. */
export function portField<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof PortSpecError) throw new FieldError(e.field, e.message);
    throw e;
  }
}
