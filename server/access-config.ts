// Flags and config-file keys for access and TLS → validated AccessConfig and TlsConfig.
// Token values never appear in an error message (they would reach the terminal and logs).

import { ConfigError } from "./config-error.js";
import type { ConfigFile } from "./config-file.js";
import { type AccessConfig, type TokenGrant, TOKEN_PATTERN, TOKEN_RULE } from "./http/access.js";
import { defaultTlsDir, type TlsConfig } from "./http/tls.js";

export interface AccessFlags {
  /** `--token SECRET` or `--token SECRET:door,yard` (repeatable). */
  readonly token?: readonly string[] | undefined;
  /** `--allow-origin ORIGIN` (repeatable), `*` for any. */
  readonly allowOrigin?: readonly string[] | undefined;
}

export interface TlsFlags {
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly selfSigned?: boolean | undefined;
  readonly dir?: string | undefined;
}

/** `fileKey("tokens[0]")` → "cams.json: tokens[0]", for errors about the config file. */
type FileKey = (key: string) => string;

/** The file's tokens and origins, then the flags' (both count). Token streams must be configured streams. */
export function parseAccessConfig(flags: AccessFlags, file: ConfigFile | undefined, fileKey: FileKey, streamNames: ReadonlySet<string>): AccessConfig {
  const tokens: TokenGrant[] = [];
  const seen = new Map<string, string>();
  const add = (grant: TokenGrant, key: string): void => {
    const first = seen.get(grant.token);
    if (first !== undefined) throw new ConfigError(key, `the same token is already given at ${first}`);
    seen.set(grant.token, key);
    for (const stream of grant.streams ?? []) {
      if (!streamNames.has(stream)) throw new ConfigError(key, `no stream named "${stream}" (streams: ${[...streamNames].join(", ")})`);
    }
    tokens.push(grant);
  };
  for (const [i, entry] of (file?.tokens ?? []).entries()) {
    add({ token: entry.token, streams: entry.streams ?? null }, fileKey(`tokens[${i}]`));
  }
  for (const [i, spec] of (flags.token ?? []).entries()) {
    const key = `--token (#${i + 1})`;
    const colon = spec.indexOf(":");
    const token = colon < 0 ? spec : spec.slice(0, colon);
    if (!TOKEN_PATTERN.test(token)) throw new ConfigError(key, `expected SECRET or SECRET:STREAM,STREAM with SECRET ${TOKEN_RULE}`);
    const streams = colon < 0 ? null : spec.slice(colon + 1).split(",");
    if (streams?.some((s) => s === "")) throw new ConfigError(key, "after the \":\" list the streams it is for, separated by commas");
    add({ token, streams }, key);
  }

  const allowOrigins: string[] = [];
  for (const [i, text] of (file?.allowOrigins ?? []).entries()) allowOrigins.push(parseOrigin(text, fileKey(`allowOrigins[${i}]`)));
  for (const text of flags.allowOrigin ?? []) allowOrigins.push(parseOrigin(text, "--allow-origin"));
  return { tokens, allowOrigins: [...new Set(allowOrigins)] };
}

/** `*`, or an http(s) origin: scheme, host, optional port, nothing else. Returned normalised. */
export function parseOrigin(text: string, key: string): string {
  if (text === "*") return text;
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (
    url === undefined ||
    (url.protocol !== "http:" && url.protocol !== "https:") ||
    url.pathname !== "/" ||
    url.search !== "" ||
    url.hash !== "" ||
    url.username !== ""
  ) {
    throw new ConfigError(key, `expected * or an origin like https://cams.example.com or http://192.0.2.7:8080, got "${text}"`);
  }
  return url.origin;
}

/** Flags replace the file's `tls` when any TLS flag is given. Null: plain http. */
export function parseTlsConfig(flags: TlsFlags, file: ConfigFile | undefined): TlsConfig | null {
  const anyFlag = flags.cert !== undefined || flags.key !== undefined || flags.selfSigned === true || flags.dir !== undefined;
  if (!anyFlag) {
    const tls = file?.tls;
    if (tls === undefined) return null;
    if ("cert" in tls) return { kind: "files", certFile: tls.cert, keyFile: tls.key };
    return { kind: "self-signed", dir: tls.dir ?? defaultTlsDir() };
  }
  if (flags.selfSigned === true) {
    if (flags.cert !== undefined || flags.key !== undefined) {
      throw new ConfigError("--tls-self-signed", "use either --tls-self-signed or --tls-cert FILE --tls-key FILE, not both");
    }
    return { kind: "self-signed", dir: flags.dir ?? defaultTlsDir() };
  }
  if (flags.dir !== undefined) throw new ConfigError("--tls-dir", "is where --tls-self-signed keeps its certificate: add --tls-self-signed");
  if (flags.cert === undefined) throw new ConfigError("--tls-key", "needs --tls-cert FILE too");
  if (flags.key === undefined) throw new ConfigError("--tls-cert", "needs --tls-key FILE too");
  return { kind: "files", certFile: flags.cert, keyFile: flags.key };
}
