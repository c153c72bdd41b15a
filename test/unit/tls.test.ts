// Certificates (server/http/tls.ts): a self-signed pair is made once, kept (key mode 0600) and
// reused; a damaged one is replaced; the operator's files are checked to belong together.

import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { defaultTlsDir, loadTls, TlsError } from "../../server/http/tls.js";

const dir = mkdtempSync(join(tmpdir(), "canvascast-tls-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function tlsErrorOf(promise: Promise<unknown>): Promise<TlsError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TlsError);
  expect((err as TlsError).code).toBe("CC_ERR_TLS");
  return err as TlsError;
}

describe("self-signed", () => {
  const state = join(dir, "state", "tls");

  test("made once with a SAN for localhost and 127.0.0.1, then reused; a damaged one is replaced", async () => {
    const made = await loadTls({ kind: "self-signed", dir: state });
    expect(made.origin).toBe("self-signed: made");
    const x509 = new X509Certificate(made.cert);
    expect(made.fingerprint256).toBe(x509.fingerprint256);
    expect(x509.subjectAltName).toMatch(/DNS:localhost/);
    expect(x509.subjectAltName).toMatch(/IP Address:127\.0\.0\.1/);
    expect(Date.parse(x509.validTo) - Date.now()).toBeGreaterThan(300 * 24 * 3600_000);
    expect(statSync(join(state, "key.pem")).mode & 0o777).toBe(0o600);

    const reused = await loadTls({ kind: "self-signed", dir: state });
    expect(reused.origin).toBe("self-signed: reused");
    expect(reused.fingerprint256).toBe(made.fingerprint256);

    writeFileSync(join(state, "cert.pem"), "-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n");
    const remade = await loadTls({ kind: "self-signed", dir: state });
    expect(remade.origin).toBe("self-signed: made");
    expect(remade.fingerprint256).not.toBe(made.fingerprint256);
  });

  test("a directory that cannot be made is CC_ERR_TLS", async () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "");
    await tlsErrorOf(loadTls({ kind: "self-signed", dir: join(file, "tls") }));
  });

  test("the default directory follows XDG_STATE_HOME", () => {
    expect(defaultTlsDir({ XDG_STATE_HOME: "/var/lib/state" })).toBe(join("/var/lib/state", "canvascast", "tls"));
    expect(defaultTlsDir({})).toMatch(/\.local[/\\]state[/\\]canvascast[/\\]tls$/);
  });
});

describe("certificate files", () => {
  test("a matching pair loads; a missing file, a key of another certificate and garbage are CC_ERR_TLS", async () => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    await loadTls({ kind: "self-signed", dir: a });
    await loadTls({ kind: "self-signed", dir: b });
    const ok = await loadTls({ kind: "files", certFile: join(a, "cert.pem"), keyFile: join(a, "key.pem") });
    expect(ok.origin).toBe("files");
    await tlsErrorOf(loadTls({ kind: "files", certFile: join(a, "cert.pem"), keyFile: join(b, "key.pem") }));
    await tlsErrorOf(loadTls({ kind: "files", certFile: join(a, "nope.pem"), keyFile: join(a, "key.pem") }));
    await tlsErrorOf(loadTls({ kind: "files", certFile: join(a, "key.pem"), keyFile: join(a, "key.pem") }));
    await tlsErrorOf(loadTls({ kind: "files", certFile: join(a, "cert.pem"), keyFile: join(a, "cert.pem") }));
  });
});
