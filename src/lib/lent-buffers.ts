/**
 * Output buffers lent to one large reply after another. A fresh megabyte per reply (what
 * `Buffer.concat` makes for `group/list` of 1,000 members) costs more than filling it: new pages the
 * kernel must fault in (dear on a virtual machine), and garbage to collect, call after call. A buffer
 * lent here is the caller's until it calls `release()`, once the reply is done with it (its response
 * closed: written out or aborted, the socket holds no reference any more); then it serves the next
 * reply. At most `keep` are kept; a reply that finds none free gets a new one.
 */
export class LentBuffers {
  private readonly free: Buffer[] = [];

  constructor(private readonly keep = 2) {}

  /** `parts` one after the other, in a lent buffer (exactly their length); `release` gives it back (twice is harmless). */
  concat(parts: readonly Buffer[]): { bytes: Buffer; release: () => void } {
    let length = 0;
    for (const p of parts) length += p.length;
    const at = this.free.findIndex((b) => b.length >= length);
    // Room to grow a little: the next reply is likely a few bytes longer (a member joined, a state changed).
    const buffer = at >= 0 ? this.free.splice(at, 1)[0]! : Buffer.allocUnsafeSlow(Math.ceil(length * 1.25));
    let offset = 0;
    for (const p of parts) offset += p.copy(buffer, offset);
    let lent = true;
    return {
      // Only the bytes written now: what the buffer held before lies past them and is never sent.
      bytes: buffer.subarray(0, length),
      release: () => {
        if (!lent) return;
        lent = false;
        if (this.free.length < this.keep) this.free.push(buffer);
      },
    };
  }
}
