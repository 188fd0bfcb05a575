import { VERSION } from "../../server/app.js";

export const usage = "batu version\n  Prints batu's version.";

export async function versionCommand(): Promise<void> {
  console.log(`batu ${VERSION}`);
}
