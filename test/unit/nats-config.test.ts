// `--nats`, `--edge` and the NATS credentials: what a config gets, and the errors for what is wrong.

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { ConfigError, parseCli } from "../../server/config.js";
import { catchError } from "../helpers/errors.js";

const dir = mkdtempSync(join(tmpdir(), "canvascast-nats-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

const parse = (argv: string[], env: Record<string, string> = {}) => parseCli(argv, { defaultWebRoot: "/srv/web", deviceExists: () => false, env }).config;

function configError(argv: string[], env: Record<string, string> = {}): ConfigError {
  const err = catchError(() => parse(argv, env));
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

describe("NATS configuration", () => {
  test("without --nats there is no cluster: one process, as before", () => {
    expect(parse([]).cluster).toBeNull();
  });

  test("--nats makes an origin of the configured streams; --edge an edge with none", () => {
    const origin = parse(["--stream", "door=test", "--nats", "nats://10.0.0.2:4222, nats://10.0.0.3:4222"]);
    expect(origin.cluster).toMatchObject({ role: "origin", nats: { servers: ["nats://10.0.0.2:4222", "nats://10.0.0.3:4222"], prefix: "canvascast", auth: { kind: "none" }, tls: null } });
    expect(origin.streams.map((s) => s.name)).toEqual(["door"]);
    const edge = parse(["--edge", "--nats", "nats://10.0.0.2:4222", "--nats-prefix", "site-a"]);
    expect(edge.cluster).toMatchObject({ role: "edge", nats: { prefix: "site-a" } });
    expect(edge.streams).toEqual([]);
  });

  test("an edge with streams of its own, or without --nats, is refused, naming the flag", () => {
    expect(configError(["--edge", "--nats", "nats://h:4222", "--stream", "a=test"]).key).toBe("--stream");
    expect(configError(["--edge", "--nats", "nats://h:4222", "--source", "test"]).key).toBe("--source");
    expect(configError(["--edge"]).key).toBe("--edge");
    expect(configError(["--nats-user", "cams"]).key).toBe("--nats-user");
  });

  test("credentials in a server URL are refused, without echoing them", () => {
    const err = configError(["--nats", "nats://cams:hunter2@h:4222"]);
    expect(err.key).toBe("--nats");
    expect(err.message).not.toContain("hunter2");
    expect(err.message).toContain("--nats-password-file");
  });

  test("a user's password comes from its file or CANVASCAST_NATS_PASSWORD; a token, an nkey seed or a creds file from theirs", () => {
    const password = file("password", "s3cret\n");
    expect(parse(["--nats", "nats://h:4222", "--nats-user", "cams", "--nats-password-file", password]).cluster?.nats.auth).toEqual({ kind: "user", user: "cams", password: "s3cret" });
    expect(parse(["--nats", "nats://h:4222", "--nats-user", "cams"], { CANVASCAST_NATS_PASSWORD: "envpass" }).cluster?.nats.auth).toEqual({ kind: "user", user: "cams", password: "envpass" });
    const token = file("token", "tok-123\n");
    expect(parse(["--nats", "nats://h:4222", "--nats-token-file", token]).cluster?.nats.auth).toEqual({ kind: "token", token: "tok-123" });
    const seed = `SU${"A".repeat(56)}`;
    expect(parse(["--nats", "nats://h:4222", "--nats-nkey-file", file("seed", `${seed}\n`)]).cluster?.nats.auth).toEqual({ kind: "nkey", seed });
    const creds = "-----BEGIN NATS USER JWT-----\neyJ0\n------END NATS USER JWT------\n-----BEGIN USER NKEY SEED-----\nSUAM\n------END USER NKEY SEED------\n";
    expect(parse(["--nats", "nats://h:4222", "--nats-creds", file("user.creds", creds)]).cluster?.nats.auth).toEqual({ kind: "creds", creds });
  });

  test("wrong or missing credentials are refused clearly, never echoing a secret", () => {
    expect(configError(["--nats", "nats://h:4222", "--nats-user", "cams"]).message).toContain("CANVASCAST_NATS_PASSWORD");
    expect(configError(["--nats", "nats://h:4222", "--nats-password-file", file("p2", "x\n")]).key).toBe("--nats-password-file");
    const missing = configError(["--nats", "nats://h:4222", "--nats-token-file", join(dir, "nope")]);
    expect(missing.key).toBe("--nats-token-file");
    expect(missing.message).toContain(join(dir, "nope"));
    const notSeed = configError(["--nats", "nats://h:4222", "--nats-nkey-file", file("bad-seed", "hunter2-not-a-seed\n")]);
    expect(notSeed.message).not.toContain("hunter2");
    expect(configError(["--nats", "nats://h:4222", "--nats-creds", file("bad.creds", "hunter2\n")]).message).not.toContain("hunter2");
    expect(configError(["--nats", "nats://h:4222", "--nats-user", "u", "--nats-password-file", file("p3", "x\n"), "--nats-token-file", file("t3", "y\n")]).message).toContain("one way");
  });

  test("a secret file others may read gives a warning; TLS files are checked at start", () => {
    const open = file("open-password", "s3cret\n", 0o644);
    const config = parse(["--nats", "tls://h:4222", "--nats-user", "cams", "--nats-password-file", open, "--nats-tls-ca", file("ca.pem", "CA\n")]);
    expect(config.warnings.map((w) => w.code)).toContain("CC_WARN_SECRET_FILE_MODE");
    expect(config.cluster?.nats.tls).toEqual({ caFile: join(dir, "ca.pem") });
    expect(configError(["--nats", "tls://h:4222", "--nats-tls-cert", file("cert.pem", "C\n")]).key).toBe("--nats-tls-key");
  });

  test("the config file's nats and edge keys", () => {
    const password = file("file-password", "filepass\n");
    const path = file("edge.json", JSON.stringify({ edge: true, nats: { servers: ["nats://a:4222", "nats://b:4222"], user: "cams", passwordFile: password, prefix: "campus" } }));
    const config = parse(["--config", path]);
    expect(config.cluster).toMatchObject({ role: "edge", nats: { servers: ["nats://a:4222", "nats://b:4222"], prefix: "campus", auth: { kind: "user", user: "cams", password: "filepass" } } });
    expect(config.streams).toEqual([]);
  });

  test("on an edge, tokens may name streams it does not know yet (its origins announce them later)", () => {
    const config = parse(["--edge", "--nats", "nats://h:4222", "--token", "abcdefghijklmnop:door,yard"]);
    expect(config.access.tokens).toEqual([{ token: "abcdefghijklmnop", streams: ["door", "yard"] }]);
  });
});
