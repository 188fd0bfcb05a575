/**
 * A spinner on stderr while something slow happens (a VM booting, a task being created): only when
 * stderr is a terminal, and never for a script's output format. Elsewhere it prints nothing and
 * `stop` prints its final line to stderr only when there is a terminal to read it.
 */
const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export interface Spinner {
  /** Replaces the text after the spinner. */
  update(text: string): void;
  /** Stops it and clears its line; `final`, if given, is left in its place. */
  stop(final?: string): void;
}

/** Whether a spinner may draw: a terminal on stderr, and the caller's format is for people. */
export function spinnerAllowed(forPeople: boolean, stream: NodeJS.WriteStream = process.stderr): boolean {
  return forPeople && stream.isTTY === true;
}

export function startSpinner(text: string, enabled: boolean, stream: NodeJS.WriteStream = process.stderr): Spinner {
  if (!enabled) return { update: () => undefined, stop: () => undefined };
  let frame = 0;
  let current = text;
  const draw = () => stream.write(`\r\x1b[2K${FRAMES[frame++ % FRAMES.length]} ${current}`);
  draw();
  const timer = setInterval(draw, 100);
  return {
    update: (t) => {
      current = t;
    },
    stop: (final) => {
      clearInterval(timer);
      stream.write(`\r\x1b[2K${final ? `${final}\n` : ""}`);
    },
  };
}
