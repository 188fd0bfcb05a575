/**
 * How many discovery answers go out: an SSDP answer is larger than the search that asks for it, and
 * a search's source address can be forged, so an unbounded responder is a traffic amplifier aimed
 * at whoever the forger names. At most `perSource` answers per source address and `total` in all,
 * per `windowMs` (a sliding window; a joining member asks once every few seconds).
 */
export class AnswerBudget {
  private readonly sent = new Map<string, number[]>();
  private all: number[] = [];

  constructor(
    private readonly limits: { perSource: number; total: number; windowMs: number } = { perSource: 2, total: 50, windowMs: 1_000 },
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether an answer to `source` may go out now; counts it when it may. */
  take(source: string): boolean {
    const t = this.now();
    const since = t - this.limits.windowMs;
    this.all = this.all.filter((x) => x > since);
    const mine = (this.sent.get(source) ?? []).filter((x) => x > since);
    if (mine.length >= this.limits.perSource || this.all.length >= this.limits.total) {
      this.sent.set(source, mine);
      return false;
    }
    mine.push(t);
    this.all.push(t);
    this.sent.set(source, mine);
    // Forget sources that went quiet, so forged sources cannot grow the map without bound.
    if (this.sent.size > 4 * this.limits.total) {
      for (const [k, v] of this.sent) if (v.every((x) => x <= since)) this.sent.delete(k);
    }
    return true;
  }
}
