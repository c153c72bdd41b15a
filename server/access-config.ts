// Flags, config-file keys and the environment for access and TLS → validated AccessConfig and TlsConfig.
// Token values never appear in an error message (they would reach the terminal and logs).

import type { ServerWarning } from "../shared/api.js";
import { ConfigError } from "./config-error.js";
import { STREAM_NAME, type ConfigFile } from "./config-file.js";
import { type AccessConfig, type TokenGrant, TOKEN_PATTERN, TOKEN_RULE } from "./http/access.js";
import { defaultTlsDir, type TlsConfig } from "./http/tls.js";
import { readSecretFile } from "./secret-file.js";

export interface AccessFlags {
  /** `--token SECRET` or `--token SECRET:door,yard` (repeatable). */
  readonly token?: readonly string[] | undefined;
  /** `--token-file FILE` (repeatable): one `--token` value a line. */
  readonly tokenFile?: readonly string[] | undefined;
  /** The value of CANVASCAST_TOKENS: `--token` values separated by white space. */
  readonly tokensEnv?: string | undefined;
  /** `--allow-origin ORIGIN` (repeatable), `*` for any. */
  readonly allowOrigin?: readonly string[] | undefined;
}

/** Where tokens may come from besides the flags: the environment variable's name. */
export const TOKENS_ENV = "CANVASCAST_TOKENS";

export interface ParsedAccess {
  readonly access: AccessConfig;
  /** About the token files, e.g. one that other users may read (CC_WARN_SECRET_FILE_MODE). */
  readonly warnings: readonly ServerWarning[];
}

export interface TlsFlags {
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly selfSigned?: boolean | undefined;
  readonly dir?: string | undefined;
}

/** `fileKey("tokens[0]")` → "cams.json: tokens[0]", for errors about the config file. */
type FileKey = (key: string) => string;

/**
 * Tokens from every source, in this order: the file's `tokens`, its `tokenFile`, `--token`, `--token-file`,
 * CANVASCAST_TOKENS; then origins, the file's and the flags'. All count; a token given twice is refused.
 * A token's streams must be among `streamNames`; null: not checked (the streams are not known at start).
 */
export function parseAccessConfig(
  flags: AccessFlags,
  file: ConfigFile | undefined,
  fileKey: FileKey,
  streamNames: ReadonlySet<string> | null,
): ParsedAccess {
  const tokens: TokenGrant[] = [];
  const warnings: ServerWarning[] = [];
  const seen = new Map<string, string>();
  const add = (grant: TokenGrant, key: string): void => {
    const first = seen.get(grant.token);
    if (first !== undefined) throw new ConfigError(key, `the same token is already given at ${first}`);
    seen.set(grant.token, key);
    for (const stream of grant.streams ?? []) {
      if (streamNames === null) {
        if (!STREAM_NAME.test(stream)) throw new ConfigError(key, `"${stream}" is not a stream name (letters, digits, - and _)`);
      } else if (!streamNames.has(stream)) {
        throw new ConfigError(key, `no stream named "${stream}" (streams: ${[...streamNames].join(", ")})`);
      }
    }
    tokens.push(grant);
  };
  const addFile = (path: string, key: string): void => {
    const { text, warning } = readSecretFile(path, key);
    if (warning) warnings.push(warning);
    const grants = parseTokenLines(text, path);
    if (grants.length === 0) throw new ConfigError(key, `${path} holds no token, only blank lines and # comments`);
    for (const { grant, key: lineKey } of grants) add(grant, lineKey);
  };

  for (const [i, entry] of (file?.tokens ?? []).entries()) {
    add({ token: entry.token, streams: entry.streams ?? null }, fileKey(`tokens[${i}]`));
  }
  if (file?.tokenFile !== undefined) addFile(file.tokenFile, fileKey("tokenFile"));
  for (const [i, spec] of (flags.token ?? []).entries()) {
    const key = `--token (#${i + 1})`;
    add(parseTokenSpec(spec, key), key);
  }
  for (const path of flags.tokenFile ?? []) addFile(path, "--token-file");
  if (flags.tokensEnv !== undefined) {
    const specs = flags.tokensEnv.split(/\s+/).filter((s) => s !== "");
    // Set but empty (e.g. from a command that failed) must not quietly mean "no token needed".
    if (specs.length === 0) throw new ConfigError(TOKENS_ENV, "is set but holds no token: give one, or unset it");
    for (const [i, spec] of specs.entries()) {
      const key = `${TOKENS_ENV} (#${i + 1})`;
      add(parseTokenSpec(spec, key), key);
    }
  }

  const allowOrigins: string[] = [];
  for (const [i, text] of (file?.allowOrigins ?? []).entries()) allowOrigins.push(parseOrigin(text, fileKey(`allowOrigins[${i}]`)));
  for (const text of flags.allowOrigin ?? []) allowOrigins.push(parseOrigin(text, "--allow-origin"));
  return { access: { tokens, allowOrigins: [...new Set(allowOrigins)] }, warnings };
}

/** `SECRET` or `SECRET:door,yard`, the syntax of `--token`. */
export function parseTokenSpec(spec: string, key: string): TokenGrant {
  const colon = spec.indexOf(":");
  const token = colon < 0 ? spec : spec.slice(0, colon);
  if (!TOKEN_PATTERN.test(token)) throw new ConfigError(key, `expected SECRET or SECRET:STREAM,STREAM with SECRET ${TOKEN_RULE}`);
  const streams = colon < 0 ? null : spec.slice(colon + 1).split(",");
  if (streams?.some((s) => s === "")) throw new ConfigError(key, "after the \":\" list the streams it is for, separated by commas");
  return { token, streams };
}

/** A token file: one `--token` value a line; blank lines and lines starting with # are skipped. Keys are FILE:LINE. */
export function parseTokenLines(text: string, path: string): { grant: TokenGrant; key: string }[] {
  const grants: { grant: TokenGrant; key: string }[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const key = `${path}:${i + 1}`;
    grants.push({ grant: parseTokenSpec(line, key), key });
  }
  return grants;
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
