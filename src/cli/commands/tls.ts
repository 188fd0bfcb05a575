import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describeCert, TLS_CERT_FILE } from "../../auth/tls-identity.js";
import type { Command } from "commander";
import { failed } from "../errors.js";
import { withAgentOptions, type AgentOptions } from "../options.js";

export const usage = `batu tls [--conf-dir ./conf] [--json]
  Prints this host's TLS certificate (conf/tls.crt, made at the agent's first start): its SHA-256,
  which members pin, and the public key pin for curl. Other hosts reach the host API over HTTPS only:
    curl -k --pinnedpubkey '<curl pin>' -H "Authorization: Bearer $TOKEN" https://<host>:10443/common/config`;

/** `batu tls`: what another host must pin to talk to this one (read from conf, no agent needed). */
export function register(program: Command): void {
  withAgentOptions(program.command("tls").description("print this host's TLS certificate fingerprint and curl pin").addHelpText("after", `\n${usage}`))
    .option("--json", "print JSON")
    .action((opts: AgentOptions & { json?: boolean }) => tlsCommand(opts));
}

async function tlsCommand(values: AgentOptions & { json?: boolean }): Promise<void> {
  const path = join(resolve(values.confDir), TLS_CERT_FILE);
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (e) {
    throw failed(`cannot read ${path} (the agent makes it at its first start): ${(e as Error).message}`);
  }
  const { sha256, curlPin } = describeCert(pem);
  if (values.json) console.log(JSON.stringify({ cert: path, sha256, curl_pin: curlPin }));
  else console.log(`certificate: ${path}\nsha256:      ${sha256}\ncurl pin:    ${curlPin}`);
}
