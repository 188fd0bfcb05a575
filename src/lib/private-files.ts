import { chmodSync, mkdirSync, statSync } from "node:fs";

/** Owner-only modes for state and secrets, whatever the process's umask. */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Makes `path` a directory only its owner can enter (creating it and its parents when missing), and
 * tightens an existing one that is looser. What cannot be changed (a read-only file system, a file
 * of another owner) keeps its mode: it still works, as a read-only conf dir does.
 */
export function ensurePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  tighten(path, PRIVATE_DIR_MODE);
}

/** Tightens the file at `path` to owner read/write when it is looser (same read-only rule). */
export function makePrivateFile(path: string): void {
  tighten(path, PRIVATE_FILE_MODE);
}

function tighten(path: string, mode: number): void {
  if ((statSync(path).mode & 0o777 & ~mode) === 0) return;
  try {
    chmodSync(path, mode);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EROFS" && code !== "EPERM") throw e;
  }
}
