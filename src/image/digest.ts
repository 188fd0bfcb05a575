import { createHash, type Hash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";

/** 4 MiB: big enough that a 20 GiB image has ~5000 pieces, small enough to spread over peers. */
export const DEFAULT_PIECE_BYTES = 4 * 1024 * 1024;

/**
 * What a receiver needs to verify an image piece by piece and as a whole. `pieces[i]` is the
 * sha256 (hex) of bytes `[i * pieceBytes, min((i + 1) * pieceBytes, sizeBytes))`.
 */
export interface PieceManifest {
  name: string;
  sizeBytes: number;
  sha256: string;
  pieceBytes: number;
  pieces: string[];
}

/** A file's digest: a manifest without the name. */
export type FileDigest = Omit<PieceManifest, "name">;

export const pieceCount = (sizeBytes: number, pieceBytes: number): number => Math.ceil(sizeBytes / pieceBytes);

/** The byte span of piece `index`: `[start, end)`. */
export function pieceSpan(m: Pick<PieceManifest, "sizeBytes" | "pieceBytes">, index: number): { start: number; end: number } {
  const start = index * m.pieceBytes;
  return { start, end: Math.min(start + m.pieceBytes, m.sizeBytes) };
}

/**
 * The whole hash and the piece hashes of bytes fed in order, in one pass: each buffer is hashed
 * twice (whole and piece) but read once.
 */
export class PieceHasher {
  private readonly whole: Hash = createHash("sha256");
  private piece: Hash = createHash("sha256");
  private inPiece = 0;
  private total = 0;
  readonly pieces: string[] = [];

  constructor(readonly pieceBytes: number = DEFAULT_PIECE_BYTES) {
    if (!Number.isInteger(pieceBytes) || pieceBytes <= 0) throw new RangeError(`pieceBytes must be a positive integer: ${pieceBytes}`);
  }

  update(buf: Buffer): void {
    this.whole.update(buf);
    this.total += buf.length;
    let at = 0;
    while (at < buf.length) {
      const take = Math.min(this.pieceBytes - this.inPiece, buf.length - at);
      this.piece.update(at === 0 && take === buf.length ? buf : buf.subarray(at, at + take));
      this.inPiece += take;
      at += take;
      if (this.inPiece === this.pieceBytes) {
        this.pieces.push(this.piece.digest("hex"));
        this.piece = createHash("sha256");
        this.inPiece = 0;
      }
    }
  }

  digest(): FileDigest {
    if (this.inPiece > 0) {
      this.pieces.push(this.piece.digest("hex"));
      this.inPiece = 0;
    }
    return { sizeBytes: this.total, sha256: this.whole.digest("hex"), pieceBytes: this.pieceBytes, pieces: this.pieces };
  }
}

export interface ReadOptions {
  fromByte?: number;
  /** Exclusive. */
  toByte?: number;
  signal?: AbortSignal;
}

/** Reads an open file once, from `fromByte` on, feeding every byte to `sink`; 1 MiB reads into one buffer. */
export async function readHandleInto(handle: FileHandle, sink: (buf: Buffer) => void, opts: ReadOptions = {}): Promise<number> {
  const buf = Buffer.allocUnsafe(1024 * 1024);
  const from = opts.fromByte ?? 0;
  const end = opts.toByte ?? Infinity;
  let pos = from;
  for (;;) {
    opts.signal?.throwIfAborted();
    const want = Math.min(buf.length, end - pos);
    if (want <= 0) break;
    const { bytesRead } = await handle.read(buf, 0, want, pos);
    if (bytesRead === 0) break;
    // Hash consumers copy what they keep, so the one buffer can be reused.
    sink(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return pos - from;
}

/** `readHandleInto` on a path. */
export async function readFileInto(path: string, sink: (buf: Buffer) => void, opts: ReadOptions = {}): Promise<number> {
  const handle = await open(path, "r");
  try {
    return await readHandleInto(handle, sink, opts);
  } finally {
    await handle.close();
  }
}

/** sha256 (hex) of a whole file, streamed. */
export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const h = createHash("sha256");
  await readFileInto(path, (b) => h.update(b), signal ? { signal } : {});
  return h.digest("hex");
}

/** The whole sha256 and the piece hashes of a file in one read pass. */
export async function digestFile(path: string, opts: { pieceBytes?: number; signal?: AbortSignal } = {}): Promise<FileDigest> {
  const hasher = new PieceHasher(opts.pieceBytes);
  await readFileInto(path, (b) => hasher.update(b), opts.signal ? { signal: opts.signal } : {});
  return hasher.digest();
}

/** The manifest of a file under its image name. */
export async function manifestOfFile(name: string, path: string, opts: { pieceBytes?: number; signal?: AbortSignal } = {}): Promise<PieceManifest> {
  return { name, ...(await digestFile(path, opts)) };
}
