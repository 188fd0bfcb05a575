import type { SystemConfig } from "../api/host.js";
import type { GroupService } from "../group/membership.js";
import type { Logger } from "../lib/logger.js";
import type { VmService } from "../vm/service.js";

/** What the HTTP layer needs from the rest of the agent: services, never I/O of its own. */
export interface AppDeps {
  log: Logger;
  adminToken: string;
  joinToken: string;
  systemConfig: () => SystemConfig;
  group: GroupService;
  vms: VmService;
}
