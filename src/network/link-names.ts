import { createHash } from "node:crypto";

/** A device name of batu's for `key` (a VM id...): `prefix` and ten hex digits of its hash (IFNAMSIZ is 15). */
export const linkNameFor = (prefix: string, key: string): string => prefix + createHash("sha256").update(key).digest("hex").slice(0, 10);
