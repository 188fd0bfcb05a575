#!/usr/bin/env node
import { EXIT, UsageError } from "./errors.js";
import { COMMANDS } from "./commands/index.js";
import { runArgs } from "./program.js";

runArgs(process.argv.slice(2), COMMANDS).then(
  () => process.exit(process.exitCode ?? EXIT.ok),
  (e: unknown) => {
    if (e instanceof UsageError) {
      if (e.message) console.error(`batu: ${e.message}`);
      process.exit(e.exitCode);
    }
    console.error(e);
    process.exit(EXIT.failed);
  },
);
