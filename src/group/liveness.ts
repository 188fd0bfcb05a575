/** A member as the master sees it now, from its last heartbeat. */
export type MemberState = "alive" | "suspect" | "dead";

/** How long a member may stay silent before the master calls it `suspect`, then `dead`. */
export interface LivenessTimes {
  suspectAfterMs: number;
  deadAfterMs: number;
}

/** Defaults for a 3 s heartbeat: suspect after about three missed beats, dead after a minute. */
export const DEFAULT_LIVENESS: LivenessTimes = { suspectAfterMs: 10_000, deadAfterMs: 60_000 };

/**
 * A member's state, computed on read from its last heartbeat (so nothing needs a timer and a
 * restarted master computes the same answer). Silence is counted from `since` at the earliest: the
 * master's own start, because a member cannot reach a master that was not running.
 */
export function memberState(lastSeen: Date, now: Date, times: LivenessTimes, since?: Date): MemberState {
  const from = since && since > lastSeen ? since : lastSeen;
  const silentMs = now.getTime() - from.getTime();
  if (silentMs >= times.deadAfterMs) return "dead";
  if (silentMs >= times.suspectAfterMs) return "suspect";
  return "alive";
}
