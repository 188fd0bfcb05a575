import { describe, expect, it } from "vitest";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTlsIdentity } from "./tls-identity.js";

const NODE = "ab".repeat(32);
const fresh = () => mkdtempSync(join(tmpdir(), "batu-tls-"));

describe("loadTlsIdentity", () => {
  it("makes a key (0600) and a self-signed certificate for it once, then keeps them", async () => {
    const dir = fresh();
    const a = await loadTlsIdentity(dir, NODE);
    expect(statSync(join(dir, "tls.key")).mode & 0o777).toBe(0o600);
    const x509 = new X509Certificate(a.cert);
    expect(x509.subject).toContain(`CN=${NODE}`);
    expect(x509.verify(x509.publicKey)).toBe(true); // self-signed
    expect(a.sha256).toBe(x509.fingerprint256.replaceAll(":", "").toLowerCase());
    expect(a.curlPin).toMatch(/^sha256\/\/[A-Za-z0-9+/]{43}=$/);
    const b = await loadTlsIdentity(dir, NODE);
    expect([b.key, b.cert, b.sha256]).toEqual([a.key, a.cert, a.sha256]);
    // Another node's is another certificate: nothing is shared between nodes.
    expect((await loadTlsIdentity(fresh(), NODE)).sha256).not.toBe(a.sha256);
  });

  it("makes a missing certificate again for the key that is there; refuses one that is not for the key, naming it", async () => {
    const dir = fresh();
    const a = await loadTlsIdentity(dir, NODE);
    rmSync(join(dir, "tls.crt"));
    const b = await loadTlsIdentity(dir, NODE);
    expect(b.key).toBe(a.key);
    expect(new X509Certificate(b.cert).checkPrivateKey(createPrivateKey(a.key))).toBe(true);
    const other = fresh();
    await loadTlsIdentity(other, NODE);
    writeFileSync(join(dir, "tls.crt"), readFileSync(join(other, "tls.crt")));
    await expect(loadTlsIdentity(dir, NODE)).rejects.toThrow(/tls\.crt: is not the certificate of tls\.key/);
    writeFileSync(join(dir, "tls.crt"), "not a certificate");
    await expect(loadTlsIdentity(dir, NODE)).rejects.toThrow(/tls\.crt: is not a PEM certificate/);
  });
});
