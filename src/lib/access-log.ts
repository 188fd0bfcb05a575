import { destination, type Logger } from "pino";

/** At the latest, this long after an access line is logged it is written out: what a SIGKILL may lose. */
export const ACCESS_FLUSH_MS = 100;
/** Pending access lines are written at once, before the timer, when this many bytes wait (a burst). */
const ACCESS_BUFFER_BYTES = 8 * 1024;

type SyncBoom = ReturnType<typeof destination>;

/** Destinations with lines waiting: written out as the process exits (process.exit, a handled signal). */
const pending = new Set<AccessDestination>();
process.on("exit", () => {
  for (const d of pending) d.flush();
});

/**
 * Where per-request access lines go: kept in memory and written out in one whole buffer at most
 * ACCESS_FLUSH_MS after the first of them, or sooner in a burst, and on exit, so that a request does
 * not pay a write(2) of its own. The writes are synchronous, on the main thread, as are the events'
 * (EventDestination): two writers never run at once on the shared fd, so a line is never cut by
 * another, whatever the fd is (a pipe, where only writes under PIPE_BUF are atomic, journald's socket, a
 * file). SonicBoom's asynchronous mode was not used for that reason: its write runs on libuv's pool,
 * concurrently with the events' writeSync, and its flushSync writes while such a write is in flight.
 */
export class AccessDestination {
  private readonly boom: SyncBoom;
  private timer: NodeJS.Timeout | null = null;

  constructor(fd: number) {
    this.boom = destination({ fd, sync: true, minLength: ACCESS_BUFFER_BYTES });
  }

  write(line: string): void {
    this.boom.write(line);
    if (this.timer) return;
    // Unref'd: a buffered line never keeps the process alive; exit writes it.
    this.timer = setTimeout(() => this.flush(), ACCESS_FLUSH_MS).unref();
    pending.add(this);
  }

  /** Writes what waits, now (synchronously). */
  flush(): void {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
    pending.delete(this);
    this.boom.flush();
  }

  flushSync(): void {
    this.flush();
  }
}

/**
 * Where lifecycle and audit events go: written synchronously, each after the access lines still
 * waiting, so that the log keeps the order things happened in and an event is never lost.
 */
export class EventDestination {
  private readonly boom: SyncBoom;

  constructor(
    fd: number,
    private readonly access: AccessDestination,
  ) {
    this.boom = destination({ fd, sync: true });
  }

  write(line: string): void {
    this.access.flush();
    this.boom.write(line);
  }

  /** pino's logger.flush(): the events are written already; the access lines waiting are written now. */
  flush(cb?: (err?: Error) => void): void {
    this.access.flush();
    cb?.();
  }

  flushSync(): void {
    this.access.flush();
  }
}

/** The access logger a logger made by createLogger carries (its children inherit it). */
export const ACCESS_LOGGER = Symbol("batu.accessLogger");

/**
 * The logger for `log`'s access lines: the same level, redaction and fields (name, node, …) as `log`,
 * writing through the buffered AccessDestination; `log` itself where it has none (pretty output on a
 * terminal, a test's stream, a logger made elsewhere): there, access lines are written like events.
 */
export function accessLoggerOf(log: Logger): Logger {
  const access = (log as Logger & { [ACCESS_LOGGER]?: Logger })[ACCESS_LOGGER];
  return access ? access.child(log.bindings(), { level: log.level }) : log;
}
