import { useEffect, useRef, useState } from "preact/hooks";
import type RFB from "@novnc/novnc";
import type { HostClient } from "../api/host.js";

/**
 * The VM's screen and keyboard through noVNC: a single-use ticket from `POST /common/vm/console`
 * opens the agent's WebSocket proxy to the VM's VNC server, and noVNC answers that server's
 * password challenge with the password the ticket's reply carries. noVNC is its own chunk, loaded
 * when a console opens: the list's first load does not wait for it (its module awaits a WebCodecs
 * probe at load).
 */
export function VncConsole({ client, vmId }: { client: HostClient; vmId: string }) {
  const screen = useRef<HTMLDivElement>(null);
  const [state, setState] = useState("connecting");
  useEffect(() => {
    let rfb: RFB | undefined;
    let closed = false;
    Promise.all([client.consoleTicket(vmId), import("@novnc/novnc")]).then(
      ([t, { default: RFB }]) => {
        if (closed || !screen.current) return;
        const scheme = location.protocol === "https:" ? "wss:" : "ws:";
        const url = `${scheme}//${location.host}${t.path}?ticket=${encodeURIComponent(t.ticket)}`;
        rfb = new RFB(screen.current, url, { credentials: { password: t.password } });
        rfb.scaleViewport = true;
        rfb.addEventListener("connect", () => setState("connected"));
        rfb.addEventListener("disconnect", () => setState("disconnected"));
        rfb.addEventListener("securityfailure", () => setState("refused by the VNC server"));
      },
      (e: unknown) => setState(`no console: ${(e as Error).message}`),
    );
    return () => {
      closed = true;
      rfb?.disconnect();
    };
  }, [client, vmId]);
  return (
    <div>
      <p class="muted" data-console-state={state}>
        Console: {state} (click the screen to type)
      </p>
      <div class="screen" ref={screen} />
    </div>
  );
}
