import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { u8aToHex } from "@polkadot/util";
import { randomAsHex } from "@polkadot/util-crypto";
import { requestOverSocket } from "./unix-http.js";

/**
 * A DBC client as DBC's own Node.js scripts write one (NODESCRIPT RentVirtualApi.js): sr25519
 * keys from @polkadot/keyring, `pair.sign(nonce)`, `u8aToHex` signatures, every body POSTed.
 */
/** `tasks/start` fields of the smallest demo task: the demo image, 1 core, 1 GB memory, a 1 GB data disk. */
export const DEMO_TASK = {
  image_name: "batu-demo.qcow2",
  operation_system: "linux",
  bios_mode: "legacy",
  cpu_cores: "1",
  mem_size: "1",
  disk_size: "1",
} as const;

export class DbcClient {
  constructor(
    readonly baseUrl: string,
    readonly nodeId: string,
    /** Send every call over this unix socket (a forwarder into another network namespace); give up on a reply after `timeoutMs` (default 30 s). */
    readonly opts: { socketPath?: string; timeoutMs?: number } = {},
  ) {}

  static wallet(uri: string): KeyringPair {
    return new Keyring({ type: "sr25519" }).addFromUri(uri);
  }

  static nonce(): string {
    return randomAsHex(27).slice(2);
  }

  /** wallet + nonce + sign of a fresh nonce. */
  static signed(pair: KeyringPair, nonce = DbcClient.nonce()) {
    return { wallet: pair.address, nonce, sign: u8aToHex(pair.sign(nonce)) };
  }

  async post(path: string, body: unknown): Promise<{ status: number; body: any; text: string }> {
    const url = `${this.baseUrl}/api/v1/${path}`;
    const init = { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) };
    let status: number;
    let text: string;
    if (this.opts.socketPath) {
      ({ status, text } = await requestOverSocket(this.opts.socketPath, url, { ...init, ...(this.opts.timeoutMs ? { timeoutMs: this.opts.timeoutMs } : {}) }));
    } else {
      const res = await fetch(url, { ...init, ...(this.opts.timeoutMs ? { signal: AbortSignal.timeout(this.opts.timeoutMs) } : {}) });
      status = res.status;
      text = await res.text();
    }
    return { status, body: JSON.parse(text), text };
  }

  /** A node-targeted call with the given identity fields. */
  call(path: string, identity: Record<string, unknown>, additional: Record<string, unknown> = {}) {
    return this.post(path, { peer_nodes_list: [this.nodeId], additional, ...identity });
  }
}
