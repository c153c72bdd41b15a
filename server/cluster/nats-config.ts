// `--nats`, `--edge` and the NATS credentials (flags, environment, config file `nats`) → the
// cluster settings. Secrets come from files or the environment, never from argv: every local user
// can read a process's argv.

import { hostname } from "node:os";
import type { ServerWarning } from "../../shared/api.js";
import { ConfigError } from "../config-error.js";
import type { ConfigFile } from "../config-file.js";
import { readSecretFile } from "../secret-file.js";

export type NatsAuth =
  | { readonly kind: "none" }
  | { readonly kind: "user"; readonly user: string; readonly password: string }
  | { readonly kind: "token"; readonly token: string }
  /** An nkey seed (SU…): the server knows the user by its public key. */
  | { readonly kind: "nkey"; readonly seed: string }
  /** A .creds file: a user JWT and its nkey seed (decentralised auth with an operator). */
  | { readonly kind: "creds"; readonly creds: string };

export interface NatsTls {
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
}

export interface NatsSettings {
  readonly servers: readonly string[];
  /** The first token of every subject. */
  readonly prefix: string;
  /** The client name the NATS servers show (their /connz). */
  readonly name: string;
  readonly auth: NatsAuth;
  readonly tls: NatsTls | null;
}

export type ClusterRole = "origin" | "edge";

export interface ClusterConfig {
  readonly role: ClusterRole;
  readonly nats: NatsSettings;
}

export const DEFAULT_NATS_PREFIX = "canvascast";

export interface NatsFlags {
  readonly nats?: string | undefined;
  readonly edge?: boolean | undefined;
  readonly prefix?: string | undefined;
  readonly user?: string | undefined;
  readonly passwordFile?: string | undefined;
  readonly tokenFile?: string | undefined;
  readonly nkeyFile?: string | undefined;
  readonly credsFile?: string | undefined;
  readonly tlsCa?: string | undefined;
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
}

/** The environment variables read for NATS secrets, as an alternative to their files. */
export const NATS_ENV = { password: "CANVASCAST_NATS_PASSWORD", token: "CANVASCAST_NATS_TOKEN" } as const;

const SERVER_URL = /^(nats|tls):\/\/[^\s/@]+(:\d{1,5})?\/?$/;

/** `cluster` null: no NATS (one process serving its own pipelines, the default). `warnings`: secret files others may read. */
export function parseClusterConfig(
  flags: NatsFlags,
  file: ConfigFile | undefined,
  fileKey: (key: string) => string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): { cluster: ClusterConfig | null; warnings: ServerWarning[] } {
  const warnings: ServerWarning[] = [];
  const f = file?.nats;
  const edge = flags.edge ?? file?.edge ?? false;
  const serversText = flags.nats ?? (f === undefined ? undefined : Array.isArray(f.servers) ? f.servers.join(",") : f.servers);
  const serversKey = flags.nats !== undefined ? "--nats" : fileKey("nats.servers");
  if (serversText === undefined) {
    if (edge) throw new ConfigError(flags.edge !== undefined ? "--edge" : fileKey("edge"), "an edge serves what origins publish to NATS: give their cluster with --nats URL[,URL…]");
    for (const [flag, value] of Object.entries({ "--nats-user": flags.user, "--nats-password-file": flags.passwordFile, "--nats-token-file": flags.tokenFile, "--nats-nkey-file": flags.nkeyFile, "--nats-creds": flags.credsFile, "--nats-prefix": flags.prefix })) {
      if (value !== undefined) throw new ConfigError(flag, "applies to a NATS connection: give --nats URL[,URL…] too");
    }
    return { cluster: null, warnings };
  }
  const servers = serversText.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (servers.length === 0) throw new ConfigError(serversKey, "expected nats://HOST:PORT[,nats://HOST:PORT…]");
  for (const url of servers) {
    if (!SERVER_URL.test(url)) {
      // Credentials in a URL would sit in argv or in the config file's servers: refused, with where they go instead.
      const why = url.includes("@") ? " without credentials (give them with --nats-user and --nats-password-file, or a creds file)" : "";
      throw new ConfigError(serversKey, `expected nats://HOST:PORT or tls://HOST:PORT${why}, got "${url.replace(/\/\/[^@/]*@/, "//***@")}"`);
    }
  }
  const prefix = flags.prefix ?? f?.prefix ?? DEFAULT_NATS_PREFIX;
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(prefix)) throw new ConfigError("--nats-prefix", `expected 1-32 of A-Z a-z 0-9 _ -, got "${prefix}"`);

  const secret = (path: string, key: string): string => {
    const { text, warning } = readSecretFile(path, key);
    if (warning !== null) warnings.push(warning);
    return text;
  };
  const pick = <T>(flag: T | undefined, fileValue: T | undefined, flagName: string, fileName: string): [T, string] | null =>
    flag !== undefined ? [flag, flagName] : fileValue !== undefined ? [fileValue, fileKey(`nats.${fileName}`)] : null;
  const user = pick(flags.user, f?.user, "--nats-user", "user");
  const passwordFile = pick(flags.passwordFile, f?.passwordFile, "--nats-password-file", "passwordFile");
  const tokenFile = pick(flags.tokenFile, f?.tokenFile, "--nats-token-file", "tokenFile");
  const nkeyFile = pick(flags.nkeyFile, f?.nkeyFile, "--nats-nkey-file", "nkeyFile");
  const credsFile = pick(flags.credsFile, f?.credsFile, "--nats-creds", "credsFile");
  const envPassword = env[NATS_ENV.password];
  const envToken = env[NATS_ENV.token];

  const ways = [
    user !== null ? "user" : null,
    tokenFile !== null || envToken !== undefined ? "token" : null,
    nkeyFile !== null ? "nkey" : null,
    credsFile !== null ? "creds" : null,
  ].filter((w) => w !== null);
  if (ways.length > 1) throw new ConfigError("--nats", `give one way to authenticate to NATS, not ${ways.join(" and ")}`);
  let auth: NatsAuth = { kind: "none" };
  if (user !== null) {
    const password = passwordFile !== null ? secret(passwordFile[0], passwordFile[1]) : envPassword;
    if (password === undefined) throw new ConfigError(user[1], `a NATS user needs its password: --nats-password-file FILE or ${NATS_ENV.password}`);
    auth = { kind: "user", user: user[0], password };
  } else if (passwordFile !== null) {
    throw new ConfigError(passwordFile[1], "a NATS password needs its user (--nats-user)");
  } else if (tokenFile !== null) {
    auth = { kind: "token", token: secret(tokenFile[0], tokenFile[1]) };
  } else if (envToken !== undefined) {
    if (envToken.length === 0) throw new ConfigError(NATS_ENV.token, "is empty");
    auth = { kind: "token", token: envToken };
  } else if (nkeyFile !== null) {
    const seed = secret(nkeyFile[0], nkeyFile[1]).trim();
    if (!/^SU[A-Z2-7]{56}$/.test(seed)) throw new ConfigError(nkeyFile[1], `${nkeyFile[0]} does not hold a user nkey seed (SU…)`);
    auth = { kind: "nkey", seed };
  } else if (credsFile !== null) {
    const creds = secret(credsFile[0], credsFile[1]);
    if (!creds.includes("BEGIN NATS USER JWT") || !creds.includes("BEGIN USER NKEY SEED")) {
      throw new ConfigError(credsFile[1], `${credsFile[0]} is not a NATS .creds file (a user JWT and its nkey seed)`);
    }
    // The secret file's trailing newline was trimmed; the NATS client's parser needs one after each END line.
    auth = { kind: "creds", creds: `${creds}\n` };
  }

  const caFile = flags.tlsCa ?? f?.tls?.caFile;
  const certFile = flags.tlsCert ?? f?.tls?.certFile;
  const keyFile = flags.tlsKey ?? f?.tls?.keyFile;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(certFile === undefined ? "--nats-tls-cert" : "--nats-tls-key", "missing: a client certificate for NATS needs both --nats-tls-cert and --nats-tls-key");
  }
  // Readable now, not only at the first connection; only the key is a secret.
  for (const [key, path] of [["--nats-tls-ca", caFile], ["--nats-tls-cert", certFile]] as const) if (path !== undefined) readSecretFile(path, key);
  if (keyFile !== undefined) secret(keyFile, "--nats-tls-key");
  const wantsTls = caFile !== undefined || certFile !== undefined || servers.some((s) => s.startsWith("tls://"));
  const tls: NatsTls | null = wantsTls
    ? { ...(caFile !== undefined ? { caFile } : {}), ...(certFile !== undefined ? { certFile } : {}), ...(keyFile !== undefined ? { keyFile } : {}) }
    : null;
  const role: ClusterRole = edge ? "edge" : "origin";
  return { cluster: { role, nats: { servers, prefix, name: `canvascast ${role} ${hostname()}:${process.pid}`, auth, tls } }, warnings };
}
