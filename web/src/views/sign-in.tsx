import { useState } from "preact/hooks";
import { signInOperator, type Session } from "../session.js";
import { RenterClient, walletIdentity, type RenterIdentity } from "../api/renter.js";

/** Operator sign-in (the admin token) or renter sign-in (a wallet secret, or a session id and its signature). */
export function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [mode, setMode] = useState<"operator" | "wallet" | "session">("operator");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const field = (name: string) => String(form.get(name) ?? "").trim();
    setBusy(true);
    setError("");
    try {
      if (mode === "operator") return onSignedIn(await signInOperator(field("token")));
      const identity: RenterIdentity =
        mode === "wallet" ? await walletIdentity(field("secret")) : { kind: "session", sessionId: field("session_id"), sessionSign: field("session_sign") };
      const client = new RenterClient(field("node") || (await RenterClient.localNode()), identity);
      await client.tasks(); // proves the identity before the page trusts it
      onSignedIn({ kind: "renter", client });
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card sign-in" onSubmit={submit}>
      <h1>batu console</h1>
      <div class="tabs">
        <button type="button" class={mode === "operator" ? "tab active" : "tab"} onClick={() => setMode("operator")}>
          Operator
        </button>
        <button type="button" class={mode === "wallet" ? "tab active" : "tab"} onClick={() => setMode("wallet")}>
          Renter: wallet
        </button>
        <button type="button" class={mode === "session" ? "tab active" : "tab"} onClick={() => setMode("session")}>
          Renter: session
        </button>
      </div>
      {mode === "operator" && (
        <label>
          Admin token (conf/admin.token)
          <input name="token" type="password" autocomplete="off" required />
        </label>
      )}
      {mode === "wallet" && (
        <label>
          Wallet secret (mnemonic, //Dev URI or 0x seed; it never leaves this page)
          <input name="secret" type="password" autocomplete="off" required />
        </label>
      )}
      {mode === "session" && (
        <>
          <label>
            Session id
            <input name="session_id" required />
          </label>
          <label>
            Its signature by your wallet
            <input name="session_sign" required />
          </label>
        </>
      )}
      {mode !== "operator" && (
        <label>
          Node id (empty: this agent's node)
          <input name="node" />
        </label>
      )}
      <button type="submit" disabled={busy}>
        {busy ? "Signing in…" : "Sign in"}
      </button>
      {error && <p class="error">{error}</p>}
    </form>
  );
}
