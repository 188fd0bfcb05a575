import type { Registrar } from "../program.js";
import * as agent from "./agent.js";
import * as backup from "./backup.js";
import * as completion from "./completion.js";
import * as gpu from "./gpu.js";
import * as group from "./group.js";
import * as host from "./host.js";
import * as image from "./image.js";
import * as rent from "./rent.js";
import * as task from "./task.js";
import * as tls from "./tls.js";
import * as token from "./token.js";
import * as usage from "./usage.js";
import * as version from "./version.js";
import * as vm from "./vm.js";
import * as wallet from "./wallet.js";

/** Every command of `batu`, in the order `batu --help` lists them: one file each. */
export const COMMANDS: readonly Registrar[] = [
  agent.register,
  group.register,
  host.register,
  vm.register,
  task.register,
  rent.register,
  wallet.register,
  image.register,
  gpu.register,
  usage.register,
  token.register,
  tls.register,
  backup.register,
  completion.register,
  version.register,
];
