/**
 * Which source to ask for a piece. Each source's throughput is measured per piece (a moving
 * average); a piece goes to the source with the most throughput per piece in flight there, so fast
 * sources take more and a slow peer still helps. A source that fails is set aside for a while
 * (doubling with each failure in a row); one that says it lacks a piece is not asked for it again
 * until every source has said so (peers gain pieces as they download).
 */
export interface PoolSource<S> {
  source: S;
  key: string;
  inFlight: number;
  /** Bytes per ms, or null before the first piece. */
  rate: number | null;
  failuresInRow: number;
  asideUntil: number;
  lacks: Set<number>;
}

export type Pick<S> = { kind: "source"; entry: PoolSource<S> } | { kind: "wait"; ms: number } | { kind: "lacking" };

export class SourcePool<S> {
  readonly entries: PoolSource<S>[];

  constructor(
    sources: readonly { key: string; source: S }[],
    private readonly setAsideMs: number,
    private readonly now: () => number = Date.now,
    /**
     * A source asked only when no other may hold the piece (the image server, when peers are there
     * too: a peer's 404 costs a LAN round trip, a piece from the server costs its uplink).
     */
    private readonly lastResort?: string,
  ) {
    this.entries = sources.map(({ key, source }) => ({ key, source, inFlight: 0, rate: null, failuresInRow: 0, asideUntil: 0, lacks: new Set() }));
  }

  pick(index: number): Pick<S> {
    const now = this.now();
    const holders = this.entries.filter((e) => !e.lacks.has(index));
    if (holders.length === 0) return { kind: "lacking" };
    let ready = holders.filter((e) => e.asideUntil <= now);
    if (ready.length === 0) return { kind: "wait", ms: Math.max(1, Math.min(...holders.map((e) => e.asideUntil)) - now) };
    const others = ready.filter((e) => e.key !== this.lastResort);
    if (others.length > 0) ready = others;
    // An untried source counts as fast as the best one known, so each gets tried early.
    const best = Math.max(0, ...this.entries.map((e) => e.rate ?? 0)) || 1;
    let chosen = ready[0]!;
    let score = -1;
    for (const e of ready) {
      const s = (e.rate ?? best) / (e.inFlight + 1);
      if (s > score) [chosen, score] = [e, s];
    }
    return { kind: "source", entry: chosen };
  }

  succeeded(e: PoolSource<S>, bytes: number, ms: number): void {
    const rate = bytes / Math.max(ms, 0.1);
    e.rate = e.rate === null ? rate : e.rate * 0.7 + rate * 0.3;
    e.failuresInRow = 0;
  }

  failed(e: PoolSource<S>): void {
    e.failuresInRow += 1;
    e.asideUntil = this.now() + this.setAsideMs * 2 ** Math.min(e.failuresInRow - 1, 5);
  }

  lacks(e: PoolSource<S>, index: number): void {
    e.lacks.add(index);
  }

  /** Every source lacked the piece: forget that, to ask them all again. */
  forgetLacks(index: number): void {
    for (const e of this.entries) e.lacks.delete(index);
  }
}
