/**
 * Undo on failure: each step of a multi-step host change registers how to undo itself;
 * if a later step fails, `revert()` runs the undos in reverse order. `success()` forgets them.
 */
export class Reverter {
  private undos: Array<{ what: string; undo: () => unknown }> = [];

  add(what: string, undo: () => unknown): void {
    this.undos.push({ what, undo });
  }

  success(): void {
    this.undos = [];
  }

  /** Runs every registered undo, newest first; returns the errors of undos that failed themselves. */
  async revert(): Promise<Array<{ what: string; error: unknown }>> {
    const failures: Array<{ what: string; error: unknown }> = [];
    for (const { what, undo } of this.undos.reverse()) {
      try {
        await undo();
      } catch (error) {
        failures.push({ what, error });
      }
    }
    this.undos = [];
    return failures;
  }
}
