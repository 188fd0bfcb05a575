import type { MasterHello } from "../api/host.js";
import { HostApiError, HostClient } from "../sdk/index.js";
import type { TlsEndpoint } from "../sdk/pinned-tls.js";
import { joinAddress, splitAddress } from "./local-address.js";
import { newNonce, verifyMasterTls } from "./join-proof.js";

/** Where a member reaches its master over TLS: `ip:tlsPort`, and the certificate it must present. */
export interface MasterEndpoint {
  address: string;
  sha256: string;
}

/**
 * The master's TLS endpoint as a member knows it, pinned by the master's node id. A member keeps no
 * join token, so after joining it believes the master's key instead: the endpoint a hello names
 * counts only when signed by `master_node_id` (host_config.json) over a fresh challenge, so neither a
 * LAN host answering on the master's address nor a replayed hello can name another certificate. It
 * is asked once and kept until a call over it cannot connect (the master restarted on another TLS
 * port, or moved): the hello is plain HTTP and carries nothing secret.
 */
export class MasterTlsPin {
  private known: { master: string; nodeId: string; endpoint: MasterEndpoint } | undefined;

  /** The endpoint of the master at `master` (its plain address, normalized). Throws an Error saying why not. */
  async endpoint(master: string, masterNodeId: string | undefined, timeoutMs: number): Promise<MasterEndpoint> {
    if (!masterNodeId) {
      throw new Error("host_config.json names no master_node_id (joined by an older batu): join the group again (batu group join)");
    }
    const known = this.known;
    if (known && known.master === master && known.nodeId === masterNodeId) return known.endpoint;
    const challenge = newNonce();
    let hello: MasterHello;
    try {
      hello = await new HostClient(master, undefined, timeoutMs).hello(challenge);
    } catch (e) {
      if (e instanceof HostApiError) throw new Error(`the host at ${master} refused to say who it is: ${e.message}`);
      throw e;
    }
    if (hello.node_id !== masterNodeId) {
      throw new Error(`the host at ${master} is node ${hello.node_id.slice(0, 12)}…, not this member's master ${masterNodeId.slice(0, 12)}…`);
    }
    const tls: TlsEndpoint | null = verifyMasterTls(hello, challenge, masterNodeId);
    if (!tls) throw new Error(`the master at ${master} names no TLS certificate signed by its node key`);
    const endpoint = { address: joinAddress(splitAddress(master).host, tls.port), sha256: tls.sha256 };
    this.known = { master, nodeId: masterNodeId, endpoint };
    return endpoint;
  }

  /** Asks again next time (a call over the kept endpoint could not connect). */
  forget(): void {
    this.known = undefined;
  }
}
