/**
 * The image servers a node knows, configured as DBC's client conf names them:
 * `<id>,<ip>,<port>,<module>` (`image_server=ID_1,192.168.1.5,873,images` in DBC). The module tells
 * the kind: a path (`/image-server/v1`) is a batu image server's HTTP prefix; a bare name (`images`)
 * is an rsync daemon's module, as DBC's own image servers are. `rsync://ip:port/module` and
 * `http://ip:port/prefix` are accepted too, with `<id>,` in front.
 */
import { isIP } from "node:net";
import { IMAGE_SERVER_PREFIX } from "./server-routes.js";
const DEFAULT_RSYNC_PORT = 873;

export type ImageServer =
  | { id: string; kind: "http"; host: string; port: number; prefix: string }
  | { id: string; kind: "rsync"; host: string; port: number; module: string };

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const HOST_RE = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;
const MODULE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const PREFIX_RE = /^(?:\/[A-Za-z0-9_.-]+)+$/;

export class ImageServerConfigError extends Error {
  constructor(entry: string, reason: string) {
    super(`image server ${JSON.stringify(entry)}: ${reason}`);
    this.name = "ImageServerConfigError";
  }
}

/** One configured image server, checked: a bad entry throws, naming what is wrong. */
export function parseImageServer(entry: string): ImageServer {
  const fail = (reason: string): never => {
    throw new ImageServerConfigError(entry, reason);
  };
  const comma = entry.indexOf(",");
  if (comma < 0) fail("expected <id>,<ip>,<port>,<module>");
  const id = entry.slice(0, comma).trim();
  if (!ID_RE.test(id)) fail("the id must be letters, digits, _ . - (64 at most)");
  const rest = entry.slice(comma + 1).trim();
  const url = /^(rsync|http):\/\//.exec(rest);
  let host: string;
  let port: number;
  let module: string;
  let kind: "http" | "rsync";
  if (url) {
    let parsed: URL;
    try {
      parsed = new URL(rest);
    } catch {
      return fail("not a valid URL");
    }
    kind = url[1] as "http" | "rsync";
    host = parsed.hostname;
    port = parsed.port ? Number(parsed.port) : kind === "rsync" ? DEFAULT_RSYNC_PORT : 80;
    module = kind === "rsync" ? parsed.pathname.replace(/^\/+|\/+$/g, "") : parsed.pathname.replace(/\/+$/, "") || IMAGE_SERVER_PREFIX;
  } else {
    const parts = rest.split(",").map((p) => p.trim());
    if (parts.length !== 3) fail("expected <id>,<ip>,<port>,<module>");
    [host, module] = [parts[0]!, parts[2]!];
    port = parts[1] === "" ? DEFAULT_RSYNC_PORT : Number(parts[1]);
    kind = module.startsWith("/") ? "http" : "rsync";
  }
  if (!(isIP(host) || HOST_RE.test(host))) fail("the address must be an IP address or a host name");
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail("the port must be 1..65535");
  if (kind === "rsync") {
    if (!MODULE_RE.test(module)) fail("the rsync module must be letters, digits, _ . -");
    return { id, kind, host, port, module };
  }
  if (!PREFIX_RE.test(module) || module.split("/").some((seg) => /^\.+$/.test(seg))) fail("the HTTP prefix must be a path such as /image-server/v1");
  return { id, kind, host, port, prefix: module };
}

/** The configured servers, ids unique (the first of a repeated id is kept: an error names the second). */
export function parseImageServers(entries: readonly string[]): ImageServer[] {
  const servers: ImageServer[] = [];
  for (const entry of entries) {
    const server = parseImageServer(entry);
    if (servers.some((s) => s.id === server.id)) throw new ImageServerConfigError(entry, `the id ${server.id} is configured twice`);
    servers.push(server);
  }
  return servers;
}

/** Where an HTTP image server is (its base URL, without a trailing slash). */
export function httpBase(server: Extract<ImageServer, { kind: "http" }>, scheme: "http" | "https" = "http"): string {
  const host = server.host.includes(":") ? `[${server.host}]` : server.host;
  return `${scheme}://${host}:${server.port}${server.prefix}`;
}
