/**
 * What one client may hold of the agent: slow or stalled clients are cut off, and the number of
 * connections is bounded, so a LAN host cannot exhaust the agent's sockets or memory.
 */
export const SERVER_LIMITS = {
  /** A client sends a whole request within this (a half-sent body is cut off after it). */
  requestTimeoutMs: 30_000,
  /** ... and its headers within this, at most. */
  headersTimeoutMs: 10_000,
  /** How often Node checks the two above (its default, 30 s, would let a stall last a minute). */
  checkingIntervalMs: 1_000,
  /**
   * An idle keep-alive connection is closed after this: longer than the longest wait a master asks
   * between heartbeats (30 s, group/beat-pacing.ts), so each member keeps one connection to its
   * master rather than a TLS handshake per beat. Idle connections are bounded by maxConnections.
   */
  keepAliveTimeoutMs: 35_000,
  /** A connection with no traffic at all is closed after this (event streams send a keep-alive every 15 s). */
  idleTimeoutMs: 120_000,
  /** Connections open at once; more are refused by the kernel's backlog, not served. */
  maxConnections: 2_048,
} as const;

/** Event streams one renter may hold open at once, on one agent. */
export const MAX_EVENT_STREAMS_PER_RENTER = 8;
