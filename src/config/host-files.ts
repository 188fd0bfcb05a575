import { join } from "node:path";
import { existsSync } from "node:fs";
import { HostConfig, MasterHostConfig, SlaveHostConfig, SystemConfig, UngroupedHostConfig } from "../api/host.js";
import { firstSchemaError, loadJsonFile, writeJsonFileAtomic } from "./json-file.js";

export const CONFIG_FILE = "config.json";
export const HOST_CONFIG_FILE = "host_config.json";
/** Seed 000: an example of a member's host_config.json, never read by the agent. */
export const HOST_CONFIG_EXAMPLE_FILE = "host_config_ex2.json";

export const DEFAULT_SYSTEM_CONFIG: SystemConfig = { nickname: "", batu: true };
/** A lone machine is the master of a group of one. */
export const DEFAULT_HOST_CONFIG: HostConfig = { host_type: "master", group_name: "group1" };
const HOST_CONFIG_EXAMPLE = {
  _comment: "Example only (seed 000): batu reads host_config.json, never this file. This is what a member's looks like.",
  host_type: "slave",
  master: "192.168.1.44",
  have_group: true,
};

const HOST_CONFIG_VARIANTS = { master: MasterHostConfig, slave: SlaveHostConfig, none: UngroupedHostConfig };

/** host_config.json picks its shape by `host_type`: check that first, then that shape's fields. */
export function checkHostConfig(value: unknown): [string, string] | undefined {
  const type = (value as { host_type?: unknown } | null)?.host_type;
  if (typeof value !== "object" || value === null || Array.isArray(value)) return ["(root)", "must be a JSON object"];
  if (typeof type !== "string" || !(type in HOST_CONFIG_VARIANTS)) {
    return ["host_type", `must be one of ${Object.keys(HOST_CONFIG_VARIANTS).join(", ")}`];
  }
  return firstSchemaError(HOST_CONFIG_VARIANTS[type as keyof typeof HOST_CONFIG_VARIANTS], value);
}

export interface HostFiles {
  system: SystemConfig;
  host: HostConfig;
}

/** Loads `config.json` and `host_config.json` from the conf dir, creating missing ones with defaults. */
export function loadHostFiles(confDir: string): HostFiles {
  const system = loadJsonFile(join(confDir, CONFIG_FILE), SystemConfig, DEFAULT_SYSTEM_CONFIG);
  const host = loadJsonFile<typeof HostConfig>(join(confDir, HOST_CONFIG_FILE), checkHostConfig, DEFAULT_HOST_CONFIG);
  const example = join(confDir, HOST_CONFIG_EXAMPLE_FILE);
  if (!existsSync(example)) {
    try {
      writeJsonFileAtomic(example, HOST_CONFIG_EXAMPLE);
    } catch {
      // The example is documentation only; a read-only conf dir is no reason to stop.
    }
  }
  return { system, host };
}

export function saveHostConfig(confDir: string, host: HostConfig): void {
  writeJsonFileAtomic(join(confDir, HOST_CONFIG_FILE), host);
}
