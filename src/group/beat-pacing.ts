/**
 * Heartbeat pacing: a master bounds the heartbeats it receives per second, whatever its group's size,
 * by telling members how long to wait before their next beat (as Nomad's `max_heartbeats_per_second`
 * stretches its clients' heartbeat TTLs). Each heartbeat costs the master a request's worth of CPU,
 * most of it the HTTP exchange itself (`npm run bench:group` measures it beside a bare node:http
 * server's): 1,000 members beating every 3 s would keep a core 8 % busy on that floor alone, 5,000
 * would keep it 40 % busy. Paced, a large group's members beat less often, and its master's liveness
 * times stretch with their interval, so a paced member is never called suspect for beating as told.
 * A small group is not paced: its members beat at their own interval (`--heartbeat-ms`).
 */
import type { LivenessTimes } from "./liveness.js";

/** Heartbeats a master takes per second at most, by default (`--max-heartbeats-per-s`): 1,000 members beat every 10 s. */
export const DEFAULT_MAX_HEARTBEATS_PER_S = 100;

/**
 * The longest wait a master asks for, and a member accepts: liveness still notices a dead member
 * within minutes, and a member's kept connection to its master outlives the wait (server/limits.ts).
 */
export const MAX_PACED_INTERVAL_MS = 30_000;

/**
 * Each wait told is the paced one ± this share, at random (Nomad staggers its TTLs the same way):
 * members whose beats bunched together (a group that just grew: all were told a longer wait at once)
 * drift apart, and the master's load evens out; on average the rate bound holds.
 */
export const PACE_JITTER = 0.25;

/** The heartbeat period the default liveness times (liveness.ts) are made for. */
export const DEFAULT_HEARTBEAT_MS = 3_000;

/** How long members should wait between beats so that `members` of them beat at most `maxPerS` times a second. */
export function pacedIntervalMs(members: number, maxPerS: number): number {
  return Math.min(MAX_PACED_INTERVAL_MS, Math.ceil((Math.max(0, members) * 1000) / maxPerS));
}

/**
 * The liveness times for members told to wait `intervalMs`: the configured ones (made for a beat
 * every DEFAULT_HEARTBEAT_MS), stretched in proportion when the wait is longer, so a member stays as
 * many missed beats away from `suspect` and `dead` as an unpaced one.
 */
export function pacedLiveness(times: LivenessTimes, intervalMs: number): LivenessTimes {
  const stretch = intervalMs / DEFAULT_HEARTBEAT_MS;
  if (stretch <= 1) return times;
  return { suspectAfterMs: Math.round(times.suspectAfterMs * stretch), deadAfterMs: Math.round(times.deadAfterMs * stretch) };
}

/**
 * The wait a master asks of its members, remembered so its liveness allows for waits it asked
 * before: when the group shrinks, members told a longer wait are still waiting it out, so the longer
 * one counts until it has passed.
 */
export class BeatPacer {
  /** The longest wait told lately (jitter included), and until when a member may be keeping it. */
  private told = { ms: 0, until: 0 };

  constructor(
    private readonly maxPerS: number,
    private readonly random: () => number = Math.random,
  ) {
    if (!(maxPerS > 0)) throw new RangeError("maxPerS: must be above 0");
  }

  /** The wait to tell a member now, in a group of `members`: the paced one, staggered by PACE_JITTER. */
  next(members: number, nowMs: number): number {
    const paced = pacedIntervalMs(members, this.maxPerS);
    const ms = Math.round(paced * (1 - PACE_JITTER + 2 * PACE_JITTER * this.random()));
    const longest = longestStaggered(paced);
    if (longest >= this.told.ms || nowMs >= this.told.until) this.told = { ms: longest, until: nowMs + longest };
    return ms;
  }

  /** The longest wait a member may be keeping now, of those told (none yet: the longest `members` would be told). */
  longestWait(members: number, nowMs: number): number {
    const now = longestStaggered(pacedIntervalMs(members, this.maxPerS));
    return nowMs < this.told.until ? Math.max(now, this.told.ms) : now;
  }
}

const longestStaggered = (paced: number) => Math.round(paced * (1 + PACE_JITTER));
