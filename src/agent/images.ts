/**
 * The agent's image center: the servers it knows (config.json `image_servers`, and its master as
 * `master` when it is a member), the center over its image cache, and, when it serves images (a
 * master, or `image_server` / `--image-server`), the image server routes with who may do what:
 * anyone on the LAN lists and reads the operator's images (as DBC's rsync servers serve anyone); a
 * renter's own image (an uploaded snapshot) is listed and read only by a node of the group or the
 * operator; only they upload.
 */
import { statfs } from "node:fs/promises";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ApiError } from "../api/errors.js";
import { privateTransport } from "../server/transport.js";
import type { Authenticator } from "../auth/signed-envelope.js";
import { bearerToken, secretEquals } from "../auth/secrets.js";
import type { GroupService } from "../group/service.js";
import { ImageCenter, type TransferState } from "../image/center.js";
import { sweepImageCache } from "../image/cache-cleaner.js";
import type { Logger } from "../lib/logger.js";
import { ImageLibrary } from "../image/library.js";
import { imageOwner } from "../image/names.js";
import { ImageRequestRefused, ImageRequestVerifier, signImageRequest } from "../image/request-signature.js";
import { imageServerRoutes, IMAGE_SERVER_PREFIX } from "../image/server-routes.js";
import { parseImageServers, type ImageServer } from "../image/servers.js";
import { httpTransport, rsyncTransport } from "../image/transports.js";
import type { Db } from "../store/db.js";
import { prepared } from "../store/db.js";
import type { VmRepo } from "../vm/repo.js";

export interface AgentImagesOptions {
  cache: string;
  /** Images shipped with batu (listed, never transferred or deleted by the center). */
  shipped: readonly string[];
  nodeId: string;
  nodeKey: Authenticator;
  /** config.json `image_servers` (checked here: a bad entry stops the start, naming it). */
  configured: readonly string[];
  group: Pick<GroupService, "hostConfig" | "peer" | "masterNodeId">;
  repo: VmRepo;
  db: Db;
}

export function createImageCenter(opts: AgentImagesOptions): ImageCenter {
  const configured = parseImageServers(opts.configured);
  const servers = (): ImageServer[] => {
    const host = opts.group.hostConfig;
    if (host.host_type !== "slave" || configured.some((s) => s.id === "master")) return configured;
    const [address, port] = splitHostPort(host.master);
    return [...configured, { id: "master", kind: "http", host: address, port, prefix: IMAGE_SERVER_PREFIX }];
  };
  const sign = (method: string, url: string) => signImageRequest(opts.nodeKey, opts.nodeId, method, url);
  return new ImageCenter({
    cache: opts.cache,
    shipped: opts.shipped,
    servers,
    transports: { http: httpTransport(sign, opts.nodeId), rsync: rsyncTransport() },
    inUse: imageUse(opts.repo, opts.db),
  });
}

/** What keeps an image of the cache: a task booting from it, or a snapshot that is it or a delta on it. */
export function imageUse(repo: VmRepo, db: Db): (name: string) => string | undefined {
  return (name) => {
    const vm = repo.list().find((v) => v.imageName === name);
    if (vm) return `the image of task ${vm.taskId}`;
    const snap = prepared(db, "SELECT name FROM vm_snapshots WHERE base_image = ? OR image_name = ?").get(name, name) as { name: string } | undefined;
    return snap && `held by snapshot ${snap.name} (delete it first)`;
  };
}

/**
 * Sweeps the image cache (cache-cleaner.ts) hourly and after each download, by config.json's
 * `image_cache_min_free_gib` (default 10) and `image_cache_keep_days` (default 7), read at each
 * sweep. Returns the stop function.
 */
export function startCacheSweeps(opts: {
  cache: string;
  center: ImageCenter;
  config: () => { image_cache_min_free_gib?: number | undefined; image_cache_keep_days?: number | undefined };
  inUse: (name: string) => string | undefined;
  log: Logger;
}): () => void {
  let running = false;
  const sweep = async () => {
    if (running) return;
    running = true;
    try {
      const config = opts.config();
      const removed = await sweepImageCache({
        cache: opts.cache,
        freeBytes: async () => {
          const s = await statfs(opts.cache);
          return s.bavail * s.bsize;
        },
        minFreeBytes: (config.image_cache_min_free_gib ?? 10) * 2 ** 30,
        keepDays: config.image_cache_keep_days ?? 7,
        inUse: opts.inUse,
        transferring: (name) => opts.center.busy(name),
      });
      if (removed.length > 0) {
        await new ImageLibrary(opts.cache).pruneBlobs();
        opts.log.info({ removed }, "image cache short of space: unused images removed, oldest first");
      }
    } catch (err) {
      opts.log.warn({ err }, "image cache sweep failed");
    } finally {
      running = false;
    }
  };
  const onTransfer = (t: TransferState) => {
    if (t.direction === "download" && t.status === "done") void sweep();
  };
  opts.center.on("transfer", onTransfer);
  const timer = setInterval(() => void sweep(), 3600_000).unref();
  void sweep();
  return () => {
    clearInterval(timer);
    opts.center.off("transfer", onTransfer);
  };
}

/** `ip:port`, or a bare address (port 10000, as in seed 000). */
function splitHostPort(address: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(address);
  return [m?.[1] ?? address, m?.[2] ? Number(m[2]) : 10000];
}

/** Registers the image server routes (public at the admin-token hook: they decide themselves). */
export async function serveImages(
  app: FastifyInstance,
  opts: {
    cache: string;
    nodeId: string;
    adminToken: () => string;
    group: Pick<GroupService, "peer" | "peers" | "masterNodeId">;
    /**
     * Whether this agent is an image server now (a standalone agent becomes a master when a host
     * joins it): it lists its images. Any agent answers reads of the operator's images it holds (the
     * pieces members of a group fetch from each other), and the nodes of its group anything.
     */
    serving: () => boolean;
  },
): Promise<void> {
  const library = new ImageLibrary(opts.cache);
  const verifier = new ImageRequestVerifier((id) => id === opts.nodeId || opts.group.peer(id) !== undefined || id === opts.group.masterNodeId());
  // Who a request is, decided once (a signature's nonce is used up by its check).
  const callers = new WeakMap<FastifyRequest, "trusted" | "anyone">();
  const callerOf = (req: FastifyRequest): "trusted" | "anyone" => {
    const known = callers.get(req);
    if (known) return known;
    let who: "trusted" | "anyone" = "anyone";
    const token = bearerToken(req.headers.authorization);
    if (token !== undefined) {
      // The admin token crosses the LAN over TLS only, as on every other route.
      if (!privateTransport(req)) throw new ApiError("tls_required", "the admin token is taken from other hosts over HTTPS only");
      if (!secretEquals(token, opts.adminToken())) throw new ApiError("unauthorized", "wrong bearer token");
      who = "trusted";
    } else {
      try {
        if (verifier.verify(req.headers, req.method, req.url) !== null) who = "trusted";
      } catch (e) {
        if (e instanceof ImageRequestRefused) throw new ApiError("unauthorized", e.message);
        throw e;
      }
    }
    callers.set(req, who);
    return who;
  };
  const ownedImage = (name: string): boolean => imageOwner(opts.cache, name) !== null;
  await app.register(async (scope) => {
    scope.addHook("onRoute", (route) => {
      route.config = { ...(route.config ?? {}), auth: "public" } as typeof route.config;
    });
    await scope.register(imageServerRoutes, {
      library,
      authorize: (req, action, name) => {
        const who = callerOf(req);
        if (who === "trusted") return;
        if (action === "list" && !opts.serving()) throw new ApiError("not_found", "this agent serves no images (see --image-server)");
        if (action === "list") return;
        if (action === "write") throw new ApiError("unauthorized", "an upload must be signed by a node of this server's group (or carry the admin token)");
        if (name !== undefined && ownedImage(name)) throw new ApiError("not_found", `no such image: ${name}`);
      },
      visible: (req, name) => callerOf(req) === "trusted" || !ownedImage(name),
    });
    // The swarm: on a master, the image servers of its live members, so that members downloading
    // the same image fetch pieces from each other as well as from here (to the group only).
    scope.get(`${IMAGE_SERVER_PREFIX}/peers`, { schema: { summary: "The group's members serving pieces (group nodes only)", tags: ["images"] } }, async (req) => {
      if (callerOf(req) !== "trusted") throw new ApiError("not_found", "no route for the swarm's peers");
      const peers = opts.group.peers().filter((p) => p.state === "alive");
      return { peers: peers.map((p) => ({ node_id: p.nodeId, url: `http://${p.address}${IMAGE_SERVER_PREFIX}` })) };
    });
  });
}
