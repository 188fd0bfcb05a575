import { HostClient } from "./api/host.js";
import type { RenterClient } from "./api/renter.js";

/** Who is signed in: the operator (admin token) or a renter (a wallet or session identity). */
export type Session = { kind: "operator"; client: HostClient } | { kind: "renter"; client: RenterClient };

/**
 * The admin token lives in sessionStorage: it survives a reload of the tab and dies with it, and no
 * other tab or later visit sees it. A renter's wallet secret is never stored anywhere.
 */
const TOKEN_KEY = "batu.adminToken";

export function savedOperator(): Session | undefined {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { kind: "operator", client: new HostClient(token) } : undefined;
}

export async function signInOperator(token: string): Promise<Session> {
  const client = new HostClient(token.trim());
  await client.check();
  sessionStorage.setItem(TOKEN_KEY, token.trim());
  return { kind: "operator", client };
}

export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}
