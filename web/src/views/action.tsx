import { useEffect, useState } from "preact/hooks";

/**
 * An operation the user starts from a button or form: while it runs, `busy` names it (the API answers
 * long operations such as a snapshot only once they are done, so "running" is all the progress there
 * is); then `done` says what the agent answered, or `error` why it refused.
 */
export function useAction(after: () => void) {
  const [state, setState] = useState<{ busy?: string; done?: string; error?: string }>({});
  const run = async (label: string, op: () => Promise<string>) => {
    setState({ busy: label });
    try {
      setState({ done: await op() });
    } catch (e) {
      setState({ error: `${label}: ${(e as Error).message}` });
    }
    after();
  };
  const line = state.busy ? (
    <p class="muted" data-progress="busy">
      {state.busy}…
    </p>
  ) : state.error ? (
    <p class="error">{state.error}</p>
  ) : state.done ? (
    <p class="ok" data-progress="done">
      {state.done}
    </p>
  ) : null;
  return { run, busy: state.busy !== undefined, line };
}

/** Loads when shown and again each time `version` changes; a refusal shows its reason. */
export function Reloaded<T>({ load, version, render }: { load: () => Promise<T>; version: number; render: (value: T) => preact.ComponentChildren }) {
  const [state, setState] = useState<{ value?: T; error?: string }>({});
  useEffect(() => {
    load().then(
      (value) => setState({ value }),
      (e: unknown) => setState({ error: (e as Error).message }),
    );
  }, [version]);
  if (state.error) return <p class="error">{state.error}</p>;
  if (state.value === undefined) return <p class="muted">Loading…</p>;
  return <>{render(state.value)}</>;
}

/** A form's text fields by name, trimmed. */
export const fieldsOf = (e: Event) => {
  const form = new FormData(e.currentTarget as HTMLFormElement);
  return (name: string) => String(form.get(name) ?? "").trim();
};
