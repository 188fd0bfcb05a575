/** An asynchronous QMP event (SHUTDOWN, RESET, STOP, RESUME, DEVICE_DELETED, ...). */
export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

/** Why a QMP call failed; decide on `code`, never on the message text. */
export const QmpErrorCode = {
  /** QEMU answered with an error reply (see `qmpClass` and `desc`). */
  Command: "command",
  /** No reply within the command's timeout. */
  Timeout: "timeout",
  /** The socket closed (QEMU exited, or close() was called) before the reply. */
  Closed: "closed",
  /** Could not connect, or the greeting / handshake failed. */
  Connect: "connect",
  /** The call was aborted through its AbortSignal. */
  Aborted: "aborted",
} as const;
export type QmpErrorCode = (typeof QmpErrorCode)[keyof typeof QmpErrorCode];

/** Any failed QMP call. */
export class QmpError extends Error {
  constructor(
    readonly code: QmpErrorCode,
    /** The QMP command, or "connect". */
    readonly command: string,
    message: string,
    /** QEMU's error class for code "command", e.g. "GenericError", "DeviceNotFound", "CommandNotFound". */
    readonly qmpClass?: string,
    /** QEMU's error description for code "command". */
    readonly desc?: string,
  ) {
    super(message);
    this.name = "QmpError";
  }

  static command(command: string, qmpClass: string, desc: string): QmpError {
    return new QmpError(QmpErrorCode.Command, command, `QMP ${command} failed: ${qmpClass}: ${desc}`, qmpClass, desc);
  }
}

export const isQmpError = (e: unknown, code?: QmpErrorCode): e is QmpError =>
  e instanceof QmpError && (code === undefined || e.code === code);
