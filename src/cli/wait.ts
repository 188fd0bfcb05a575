import { failed } from "./errors.js";
import { startSpinner } from "./spinner.js";

/** One look at what is awaited: done, failed (and why), or not yet (and what to show meanwhile). */
export type Progress = { done: true } | { failed: string } | { waiting: string };

/**
 * Polls `look` until it says done, a spinner showing its text meanwhile (when `spin`). Fails (exit 1)
 * when it says failed or after `timeoutMs`.
 */
export async function waitUntil(look: () => Promise<Progress>, opts: { timeoutMs: number; intervalMs?: number; spin: boolean; what: string }): Promise<void> {
  const spinner = startSpinner(opts.what, opts.spin);
  const deadline = Date.now() + opts.timeoutMs;
  try {
    for (;;) {
      const p = await look();
      if ("done" in p) return;
      if ("failed" in p) throw failed(p.failed);
      spinner.update(`${opts.what}: ${p.waiting}`);
      if (Date.now() > deadline) throw failed(`${opts.what}: still ${p.waiting} after ${Math.round(opts.timeoutMs / 1000)} s (it may yet finish: look again later)`);
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 500));
    }
  } finally {
    spinner.stop();
  }
}
