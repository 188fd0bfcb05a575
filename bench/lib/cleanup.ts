import { Interrupted, interrupt } from "./proc.js";

type Step = { label: string; fn: () => Promise<void> | void };

/**
 * Undo steps, run last-registered first, exactly once: at the end of the bench, on an error, and on
 * SIGINT/SIGTERM (the measurement loops are aborted first, then everything is cleaned up, then the
 * process exits 130). A failing step is reported and the others still run.
 */
export class Cleanup {
  private steps: Step[] = [];
  private running: Promise<void> | null = null;

  /** Registers an undo step; returns a function that runs it now (and unregisters it). */
  add(label: string, fn: () => Promise<void> | void): () => Promise<void> {
    const step: Step = { label, fn };
    this.steps.push(step);
    return async () => {
      const i = this.steps.indexOf(step);
      if (i < 0) return;
      this.steps.splice(i, 1);
      await step.fn();
    };
  }

  /**
   * Runs a bench's main: an error is reported (an interruption silently: the signal handler spoke)
   * and sets exit code 1; the cleanup runs in every case.
   */
  async runMain(main: () => Promise<void>, log: (s: string) => void): Promise<void> {
    try {
      await main();
    } catch (e) {
      if (!(e instanceof Interrupted)) {
        console.error(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        process.exitCode = 1;
      }
    } finally {
      log("cleaning up");
      await this.run();
      log("done");
    }
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      while (this.steps.length) {
        const step = this.steps.pop()!;
        try {
          await step.fn();
        } catch (e) {
          console.error(`cleanup: ${step.label} failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    })();
    return this.running;
  }

  /** SIGINT/SIGTERM: abort the measurements, clean up, exit 130 (a second signal exits at once); an uncaught error: the same, exit 1. */
  installSignalHandlers(): void {
    let count = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      if (++count > 1) {
        console.error(`\n${signal} again: exiting without finishing the cleanup`);
        process.exit(130);
      }
      console.error(`\n${signal}: stopping the bench and cleaning up (VMs, QEMU processes, domains, temp dirs)...`);
      interrupt.abort();
      void this.run().finally(() => process.exit(130));
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    process.on("uncaughtException", (e) => {
      console.error(`uncaught: ${e.stack ?? e.message}; cleaning up`);
      interrupt.abort();
      void this.run().finally(() => process.exit(1));
    });
  }
}
