import { useState } from "preact/hooks";
import { savedOperator, signOut, type Session } from "./session.js";
import { SignIn } from "./views/sign-in.js";
import { VmsView } from "./views/vms.js";
import { GroupView } from "./views/group.js";
import { ImagesView } from "./views/images.js";
import { RentalsView } from "./views/rentals.js";
import { RenterTasks } from "./views/renter-tasks.js";

type Tab = "vms" | "group" | "images" | "rentals";

/** The console: sign-in, then the operator's views or the renter's tasks. */
export function App() {
  const [session, setSession] = useState<Session | undefined>(savedOperator);
  const [tab, setTab] = useState<Tab>("vms");
  if (!session) return <SignIn onSignedIn={setSession} />;
  const leave = () => {
    signOut();
    setSession(undefined);
  };
  return (
    <div class="shell">
      <header>
        <strong>batu</strong>
        {session.kind === "operator" ? (
          <nav>
            {(["vms", "group", "images", "rentals"] as const).map((t) => (
              <button class={tab === t ? "tab active" : "tab"} onClick={() => setTab(t)} data-tab={t}>
                {{ vms: "VMs", group: "Group & GPUs", images: "Images", rentals: "Rentals & usage" }[t]}
              </button>
            ))}
          </nav>
        ) : (
          <span class="who">renter {session.client.name}</span>
        )}
        <button class="link" onClick={leave}>
          Sign out
        </button>
      </header>
      <main>
        {session.kind === "renter" ? (
          <RenterTasks client={session.client} />
        ) : tab === "vms" ? (
          <VmsView client={session.client} />
        ) : tab === "group" ? (
          <GroupView client={session.client} />
        ) : tab === "images" ? (
          <ImagesView client={session.client} />
        ) : (
          <RentalsView client={session.client} />
        )}
      </main>
    </div>
  );
}
