import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describeCert, TLS_CERT_FILE } from "../../auth/tls-identity.js";
import { UsageError } from "../errors.js";
import { AGENT_FLAGS, parse } from "../options.js";

export const usage = `batu tls [--conf-dir ./conf] [--json]
  Prints this host's TLS certificate (conf/tls.crt, made at the agent's first start): its SHA-256,
  which members pin, and the public key pin for curl. Other hosts reach the host API over HTTPS only:
    curl -k --pinnedpubkey '<curl pin>' -H "Authorization: Bearer $TOKEN" https://<host>:10443/common/config`;

/** `batu tls`: what another host must pin to talk to this one (read from conf, no agent needed). */
export async function tlsCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { ...AGENT_FLAGS, json: { type: "boolean" } });
  const path = join(resolve(values["conf-dir"]), TLS_CERT_FILE);
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read ${path} (the agent makes it at its first start): ${(e as Error).message}`, 1);
  }
  const { sha256, curlPin } = describeCert(pem);
  if (values.json) console.log(JSON.stringify({ cert: path, sha256, curl_pin: curlPin }));
  else console.log(`certificate: ${path}\nsha256:      ${sha256}\ncurl pin:    ${curlPin}`);
}
