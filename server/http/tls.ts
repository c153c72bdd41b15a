// TLS for https and wss on the same port: the operator's certificate and key files, or a
// self-signed certificate made once (with `selfsigned`) and kept in a state directory, so its
// fingerprint stays the same across restarts and a LAN browser's exception keeps working.
// WebCodecs needs a secure context: this is how a dashboard on a LAN address gets one.

import { createPrivateKey, X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { hostname, homedir } from "node:os";
import { join } from "node:path";
import { generate } from "selfsigned";

export type TlsConfig =
  | { readonly kind: "files"; readonly certFile: string; readonly keyFile: string }
  | { readonly kind: "self-signed"; readonly dir: string };

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  /** SHA-256 of the certificate, colon-separated hex (what browsers show). */
  readonly fingerprint256: string;
  /** How it was obtained, for the start-up line. */
  readonly origin: "files" | "self-signed: made" | "self-signed: reused";
  /** Where the certificate file is. */
  readonly certPath: string;
}

export class TlsError extends Error {
  override readonly name = "TlsError";
  readonly code = "CC_ERR_TLS";
}

const CERT_FILE = "cert.pem";
const KEY_FILE = "key.pem";
/** A self-signed certificate is renewed when less than this is left of it. */
const RENEW_BEFORE_MS = 7 * 24 * 3600_000;
const VALID_DAYS = 397;

/** `$XDG_STATE_HOME/canvascast/tls`, else `~/.local/state/canvascast/tls`. */
export function defaultTlsDir(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== "" ? env.XDG_STATE_HOME : join(homedir(), ".local", "state");
  return join(state, "canvascast", "tls");
}

export async function loadTls(config: TlsConfig): Promise<TlsMaterial> {
  if (config.kind === "files") {
    const cert = readPem(config.certFile, "--tls-cert");
    const key = readPem(config.keyFile, "--tls-key");
    return { cert, key, fingerprint256: checkPair(cert, key, config.certFile), origin: "files", certPath: config.certFile };
  }
  const certPath = join(config.dir, CERT_FILE);
  const keyPath = join(config.dir, KEY_FILE);
  const kept = reuse(certPath, keyPath);
  if (kept !== undefined) return { ...kept, origin: "self-signed: reused", certPath };

  const made = await makeSelfSigned();
  try {
    mkdirSync(config.dir, { recursive: true, mode: 0o700 });
    // Key first, each written whole then renamed, so a crash never leaves a half-written pair to reuse.
    writeAtomic(keyPath, made.key, 0o600);
    writeAtomic(certPath, made.cert, 0o644);
  } catch (err) {
    throw new TlsError(`cannot keep the self-signed certificate in ${config.dir}: ${(err as Error).message} (pass --tls-dir DIR)`);
  }
  return { ...made, fingerprint256: checkPair(made.cert, made.key, certPath), origin: "self-signed: made", certPath };
}

/** The stored pair when it is there, matches, and is valid for a while yet. */
function reuse(certPath: string, keyPath: string): { cert: string; key: string; fingerprint256: string } | undefined {
  let cert: string;
  let key: string;
  try {
    cert = readFileSync(certPath, "utf8");
    key = readFileSync(keyPath, "utf8");
  } catch {
    return undefined;
  }
  try {
    const x509 = new X509Certificate(cert);
    if (Date.parse(x509.validTo) - Date.now() < RENEW_BEFORE_MS || !x509.checkPrivateKey(createPrivateKey(key))) return undefined;
    return { cert, key, fingerprint256: x509.fingerprint256 };
  } catch {
    return undefined; // damaged: make a new one
  }
}

async function makeSelfSigned(): Promise<{ cert: string; key: string }> {
  const notBeforeDate = new Date(Date.now() - 3600_000); // an hour of slack for clocks behind ours
  const notAfterDate = new Date(notBeforeDate.getTime() + VALID_DAYS * 24 * 3600_000);
  const host = hostname();
  const pems = await generate([{ name: "commonName", value: `canvascast on ${host}` }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, critical: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          { type: 2, value: "localhost" },
          ...(/^[A-Za-z0-9.-]+$/.test(host) && host !== "localhost" ? [{ type: 2 as const, value: host }] : []),
          { type: 7, ip: "127.0.0.1" },
          { type: 7, ip: "::1" },
        ],
      },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

function readPem(path: string, flag: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new TlsError(`${flag} ${path}: cannot read it: ${(err as Error).message}`);
  }
}

/** The certificate's SHA-256 fingerprint, after checking that the key belongs to it. */
function checkPair(cert: string, key: string, certPath: string): string {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new TlsError(`${certPath}: not a PEM certificate: ${(err as Error).message}`);
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new TlsError(`the TLS key is not a PEM private key: ${(err as Error).message}`);
  }
  if (!matches) throw new TlsError(`the TLS key does not belong to the certificate ${certPath}`);
  return x509.fingerprint256;
}

function writeAtomic(path: string, text: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, path);
}
