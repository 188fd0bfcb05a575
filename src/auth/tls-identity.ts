import { createHash, createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../config/json-file.js";
import { exec, ExecError } from "../lib/exec.js";
import { makePrivateFile } from "../lib/private-files.js";

export const TLS_KEY_FILE = "tls.key";
export const TLS_CERT_FILE = "tls.crt";

/** A self-signed certificate outlives any machine: nothing renews it, members pin it. */
const CERT_DAYS = 36_500;

/**
 * This node's TLS key and self-signed certificate (conf/tls.key 0600, conf/tls.crt). The certificate
 * is not trusted through any CA: peers pin its SHA-256, vouched for by this node's sr25519 key.
 */
export interface TlsIdentity {
  /** PEM. */
  key: string;
  /** PEM. */
  cert: string;
  /** SHA-256 of the certificate (DER), 64 lowercase hex characters: what peers pin. */
  sha256: string;
  /** `sha256//<base64>` of the public key: what `curl --pinnedpubkey` takes. */
  curlPin: string;
}

/** SHA-256 of a certificate's DER bytes, lowercase hex (no colons). */
export function certSha256(der: Buffer): string {
  return createHash("sha256").update(der).digest("hex");
}

/** What a loaded certificate is identified by. */
export function describeCert(certPem: string): { sha256: string; curlPin: string } {
  const x509 = new X509Certificate(certPem);
  const spki = x509.publicKey.export({ type: "spki", format: "der" });
  return { sha256: certSha256(x509.raw), curlPin: `sha256//${createHash("sha256").update(spki).digest("base64")}` };
}

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ConfigError(path, undefined, `cannot be read: ${(e as Error).message}`);
  }
}

/** An EC P-256 key (small, fast handshakes), written 0600 and never over an existing file. */
function createKey(path: string): string {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  try {
    writeFileSync(path, pem, { mode: 0o600, flag: "wx" });
  } catch (e) {
    throw new ConfigError(path, undefined, `is missing and cannot be created: ${(e as Error).message}`);
  }
  return pem;
}

/**
 * A self-signed certificate for the key at `keyPath`, made by `openssl req -x509` (node:crypto cannot
 * issue X.509) into a temporary file renamed into place, so a crash never leaves half a certificate.
 * Its names (the node id; loopback) are for people reading it: peers check the pin, never a name.
 */
async function createCert(keyPath: string, certPath: string, nodeId: string): Promise<string> {
  const tmp = `${certPath}.${process.pid}.tmp`;
  try {
    await exec(
      "openssl",
      ["req", "-x509", "-new", "-sha256", "-key", keyPath, "-out", tmp, "-days", String(CERT_DAYS), "-subj", `/O=batu/CN=${nodeId}`,
        "-addext", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost"],
      { timeoutMs: 30_000 },
    );
    chmodSync(tmp, 0o644);
    renameSync(tmp, certPath);
  } catch (e) {
    rmSync(tmp, { force: true });
    const why = e instanceof ExecError && e.exitCode === null && /ENOENT/.test(e.stderr)
      ? "openssl is not installed (scripts/install-system-packages.sh installs it)"
      : (e as Error).message;
    throw new ConfigError(certPath, undefined, `is missing and cannot be created: ${why}`);
  }
  return readFileSync(certPath, "utf8");
}

/**
 * Loads this node's TLS key and certificate from the conf dir, making what is missing: a key, then a
 * certificate for it (a missing certificate is made again for the key that is there). A certificate
 * that is not for the key stops the start, naming the file.
 */
export async function loadTlsIdentity(confDir: string, nodeId: string): Promise<TlsIdentity> {
  const keyPath = join(confDir, TLS_KEY_FILE);
  const certPath = join(confDir, TLS_CERT_FILE);
  let key = readIfPresent(keyPath);
  if (key === undefined) key = createKey(keyPath);
  else makePrivateFile(keyPath);
  const cert = readIfPresent(certPath) ?? (await createCert(keyPath, certPath, nodeId));
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new ConfigError(certPath, undefined, `is not a PEM certificate: ${(e as Error).message}`);
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key));
  } catch (e) {
    throw new ConfigError(keyPath, undefined, `is not a PEM private key: ${(e as Error).message}`);
  }
  if (!matches) throw new ConfigError(certPath, undefined, `is not the certificate of ${TLS_KEY_FILE}: remove it to have a new one made`);
  return { key, cert, ...describeCert(cert) };
}
