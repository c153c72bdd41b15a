// The access rules (server/http/access.ts) and their flags and config-file keys (access-config.ts):
// tokens per stream, where a token is read from, the Origin rule, redaction, and configuration
// mistakes — which never echo a token; tokens from files (--token-file, tokenFile) and CANVASCAST_TOKENS.

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { parseAccessConfig } from "../../server/access-config.js";
import {
  AccessPolicy,
  exposureWarnings,
  isLoopbackHost,
  OPEN_TO_NETWORK,
  type AccessConfig,
  type AccessDecision,
} from "../../server/http/access.js";
import { ConfigError, parseCli } from "../../server/config.js";

const ALL = "a11-streams-token-0123456789abcdef";
const DOOR = "door-only-token-0123456789abcdef";
const RULES: AccessConfig = {
  tokens: [
    { token: ALL, streams: null },
    { token: DOOR, streams: ["door"] },
  ],
  allowOrigins: ["https://cams.example.com"],
};

const request = (url: string, headers: IncomingHttpHeaders = {}): { url: string; headers: IncomingHttpHeaders } => ({ url, headers });
const codeOf = (d: AccessDecision | null): string | null => (d === null ? null : d.ok ? "ok" : d.code);
const statusOf = (d: AccessDecision): number => (d.ok ? 200 : d.status);

describe("tokens", () => {
  const policy = new AccessPolicy(RULES, { secure: false });

  test("no token, a wrong one, one for another stream, the right one", () => {
    expect(policy.tokensRequired).toBe(true);
    const none = policy.authorize(request("/ws/door"), "door");
    expect([codeOf(none), statusOf(none)]).toEqual(["CC_ERR_UNAUTHORIZED", 401]);
    const wrong = policy.authorize(request(`/ws/door?token=${ALL}x`), "door");
    expect([codeOf(wrong), statusOf(wrong)]).toEqual(["CC_ERR_UNAUTHORIZED", 401]);
    const other = policy.authorize(request(`/ws/yard?token=${DOOR}`), "yard");
    expect([codeOf(other), statusOf(other)]).toEqual(["CC_ERR_FORBIDDEN_STREAM", 403]);
    expect(codeOf(policy.authorize(request(`/ws/door?token=${DOOR}`), "door"))).toBe("ok");
    expect(codeOf(policy.authorize(request(`/ws/yard?token=${ALL}`), "yard"))).toBe("ok");
  });

  test("a stream-limited token sees only its streams in the API; an unlimited one sees all", () => {
    const limited = policy.authorize(request("/api/streams", { authorization: `Bearer ${DOOR}` }));
    expect(limited.ok && limited.streams !== null ? [...limited.streams] : null).toEqual(["door"]);
    const all = policy.authorize(request("/api/streams", { authorization: `bearer  ${ALL}` }));
    expect(all.ok && all.streams).toBeNull();
  });

  test("Authorization: Bearer comes first; other schemes fall back to ?token=", () => {
    expect(codeOf(policy.authorize(request(`/api/streams?token=${ALL}`, { authorization: "Bearer nope-nope-nope-nope" })))).toBe(
      "CC_ERR_UNAUTHORIZED",
    );
    expect(codeOf(policy.authorize(request(`/api/streams?token=${ALL}`, { authorization: "Basic dXNlcjpwYXNz" })))).toBe("ok");
    expect(codeOf(policy.authorize(request("/api/streams?token="), undefined))).toBe("CC_ERR_UNAUTHORIZED");
  });

  test("without tokens configured nothing needs one", () => {
    const open = new AccessPolicy({ tokens: [], allowOrigins: [] }, { secure: false });
    expect(open.tokensRequired).toBe(false);
    expect(codeOf(open.authorize(request("/ws/door"), "door"))).toBe("ok");
  });

  test("denial messages never contain the token", () => {
    for (const url of [`/ws/yard?token=${DOOR}`, `/ws/yard?token=${DOOR}zz`]) {
      const d = policy.authorize(request(url), "yard");
      expect(d.ok).toBe(false);
      expect(JSON.stringify(d)).not.toContain(DOOR);
    }
  });
});

describe("the Origin rule for upgrades", () => {
  const policy = new AccessPolicy(RULES, { secure: false });
  const origin = (o: string | undefined, host = "192.0.2.7:8080", extra: IncomingHttpHeaders = {}): string | null =>
    codeOf(policy.checkOrigin(request("/ws/door", { host, ...(o === undefined ? {} : { origin: o }), ...extra })));

  test("own origin (Host with our scheme), loopback origins on any port, listed origins, and no Origin pass", () => {
    expect(origin("http://192.0.2.7:8080")).toBeNull();
    expect(origin("http://localhost:5173")).toBeNull();
    expect(origin("http://127.3.4.5")).toBeNull();
    expect(origin("https://[::1]:9443")).toBeNull();
    expect(origin("https://cams.example.com")).toBeNull();
    expect(origin("https://CAMS.example.com:443")).toBeNull();
    expect(origin(undefined)).toBeNull();
  });

  test("anything else is refused with 403 CC_ERR_FORBIDDEN_ORIGIN", () => {
    expect(origin("http://evil.test")).toBe("CC_ERR_FORBIDDEN_ORIGIN");
    expect(origin("https://192.0.2.7:8080")).toBe("CC_ERR_FORBIDDEN_ORIGIN"); // our host, other scheme
    expect(origin("http://192.0.2.7:8081")).toBe("CC_ERR_FORBIDDEN_ORIGIN"); // other port
    expect(origin("http://cams.example.com")).toBe("CC_ERR_FORBIDDEN_ORIGIN");
    expect(origin("http://localhost.evil.test")).toBe("CC_ERR_FORBIDDEN_ORIGIN");
    expect(origin("null")).toBe("CC_ERR_FORBIDDEN_ORIGIN");
    const d = policy.checkOrigin(request("/ws/door", { origin: "http://evil.test" }));
    expect(d?.status).toBe(403);
  });

  test("behind a proxy, X-Forwarded-Host and -Proto name our public origin", () => {
    const forwarded = { "x-forwarded-host": "cams.example.org", "x-forwarded-proto": "https" };
    expect(origin("https://cams.example.org", "127.0.0.1:8080", forwarded)).toBeNull();
    expect(origin("http://cams.example.org", "127.0.0.1:8080", forwarded)).toBe("CC_ERR_FORBIDDEN_ORIGIN");
  });

  test("with TLS our own origin is https", () => {
    const secure = new AccessPolicy(RULES, { secure: true });
    expect(codeOf(secure.checkOrigin(request("/", { host: "cam.test:8443", origin: "https://cam.test:8443" })))).toBeNull();
    expect(codeOf(secure.checkOrigin(request("/", { host: "cam.test:8443", origin: "http://cam.test:8443" })))).toBe("CC_ERR_FORBIDDEN_ORIGIN");
  });

  test("* allows any origin; an upgrade checks the origin before the token", () => {
    const any = new AccessPolicy({ ...RULES, allowOrigins: ["*"] }, { secure: false });
    expect(codeOf(any.checkOrigin(request("/", { origin: "http://evil.test" })))).toBeNull();
    expect(codeOf(policy.checkUpgrade(request("/ws/door", { origin: "http://evil.test" }), "door"))).toBe("CC_ERR_FORBIDDEN_ORIGIN");
    expect(codeOf(policy.checkUpgrade(request("/ws/door", { origin: "http://localhost" }), "door"))).toBe("CC_ERR_UNAUTHORIZED");
  });
});

describe("exposure", () => {
  test("beyond loopback with no token warns; loopback or a token does not", () => {
    expect(exposureWarnings("0.0.0.0", false).map((w) => w.code)).toEqual([OPEN_TO_NETWORK]);
    expect(exposureWarnings("192.0.2.7", false).map((w) => w.code)).toEqual([OPEN_TO_NETWORK]);
    expect(exposureWarnings("0.0.0.0", true)).toEqual([]);
    for (const host of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) {
      expect(isLoopbackHost(host), host).toBe(true);
      expect(exposureWarnings(host, false), host).toEqual([]);
    }
    expect(isLoopbackHost("128.0.0.1")).toBe(false);
  });
});

describe("access flags and config keys", () => {
  const cli = (argv: string[], file?: unknown): ReturnType<typeof parseCli>["config"] =>
    parseCli(file === undefined ? argv : ["--config", "c.json", ...argv], {
      defaultWebRoot: "/srv/web",
      deviceExists: () => false,
      readFile: () => JSON.stringify(file),
      env: {},
    }).config;
  const errorOf = (argv: string[], file?: unknown): ConfigError => {
    try {
      cli(argv, file);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe("CC_ERR_CONFIG");
      return err as ConfigError;
    }
    throw new Error("expected a ConfigError");
  };
  const streams = [
    { name: "door", source: "test" },
    { name: "yard", source: "test:ball" },
  ];

  test("--token (repeatable, :STREAMS limits it) and the file's tokens, strings or objects, all count", () => {
    const { access } = cli(["--token", ALL, "--token", `${DOOR}:door,yard`], {
      streams,
      tokens: ["file-token-0123456789abcdef", { token: "file-door-0123456789abcdef", streams: ["door"] }],
    });
    expect(access.tokens).toEqual([
      { token: "file-token-0123456789abcdef", streams: null },
      { token: "file-door-0123456789abcdef", streams: ["door"] },
      { token: ALL, streams: null },
      { token: DOOR, streams: ["door", "yard"] },
    ]);
  });

  test("bad tokens are refused, naming the flag or key but never the token", () => {
    const cases: [string[], unknown, string][] = [
      [["--token", "short"], undefined, "--token (#1)"],
      [["--token", `${ALL}+x`], undefined, "--token (#1)"],
      [["--token", ALL, "--token", `${ALL}:door`], { streams }, "--token (#2)"],
      [["--token", `${ALL}:gate`], { streams }, "--token (#1)"],
      [["--token", `${ALL}:`], { streams }, "--token (#1)"],
      [[], { streams, tokens: ["short"] }, "c.json: tokens[0].token"],
      [[], { streams, tokens: [{ token: ALL, streams: [] }] }, "c.json: tokens[0].streams"],
      [[], { streams, tokens: [{ token: ALL, stream: "door" }] }, "c.json: tokens[0]"],
      [[], { streams, tokens: [{ token: ALL, streams: ["gate"] }] }, "c.json: tokens[0]"],
    ];
    for (const [argv, file, key] of cases) {
      const err = errorOf(argv, file);
      expect(err.key, argv.join(" ")).toBe(key);
      expect(err.message).not.toContain(ALL);
      expect(err.message).not.toContain("short");
    }
  });

  describe("tokens from a file and the environment", () => {
    const dir = mkdtempSync(join(tmpdir(), "canvascast-tokens-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    let files = 0;
    /** A token file with this text, mode 600 unless told. */
    const tokenFile = (text: string, mode = 0o600): string => {
      const path = join(dir, `tokens-${++files}`);
      writeFileSync(path, text);
      chmodSync(path, mode);
      return path;
    };
    const ENV1 = "env-one-token-0123456789abcdef";
    const ENV2 = "env-two-token-0123456789abcdef";
    const FILE1 = "file-one-token-0123456789abcdef";
    const parse = (argv: string[], file?: unknown, env: Record<string, string> = {}): ReturnType<typeof parseCli>["config"] =>
      parseCli(file === undefined ? argv : ["--config", "c.json", ...argv], {
        defaultWebRoot: "/srv/web",
        deviceExists: () => false,
        readFile: () => JSON.stringify(file),
        env,
      }).config;
    const refusal = (argv: string[], file?: unknown, env: Record<string, string> = {}): ConfigError => {
      try {
        parse(argv, file, env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return err as ConfigError;
      }
      throw new Error("expected a ConfigError");
    };

    test("every source counts, in order: file tokens, file tokenFile, --token, --token-file (repeatable), CANVASCAST_TOKENS", () => {
      const fromConfig = tokenFile(`${FILE1}:yard\n`);
      const first = tokenFile(`# viewers at the door\n\n  ${DOOR}:door  \r\n# the rest\n`);
      const second = tokenFile(`${ALL}`);
      const config = parse(["--token", "flag-token-0123456789abcdef", "--token-file", first, "--token-file", second], {
        streams,
        tokens: ["cfg-token-0123456789abcdef"],
        tokenFile: fromConfig,
      }, { CANVASCAST_TOKENS: `\n  ${ENV1}  ${ENV2}:door,yard\n` });
      expect(config.access.tokens).toEqual([
        { token: "cfg-token-0123456789abcdef", streams: null },
        { token: FILE1, streams: ["yard"] },
        { token: "flag-token-0123456789abcdef", streams: null },
        { token: DOOR, streams: ["door"] },
        { token: ALL, streams: null },
        { token: ENV1, streams: null },
        { token: ENV2, streams: ["door", "yard"] },
      ]);
      expect(config.warnings).toEqual([]);
    });

    test("a token file other users may open: its warning reaches the configuration", () => {
      const open = tokenFile(`${ALL}\n`, 0o644);
      const config = parse(["--token-file", open]);
      expect(config.access.tokens).toEqual([{ token: ALL, streams: null }]);
      expect(config.warnings).toEqual([{ code: "CC_WARN_SECRET_FILE_MODE", message: expect.stringContaining(`--token-file ${open}`) as unknown }]);
    });

    test("mistakes name FILE:LINE, CANVASCAST_TOKENS (#n) or the flag or key, and never a token", () => {
      const badLine = tokenFile(`# ok\n${ALL}\nshort-secret\n`);
      const duplicate = tokenFile(`${DOOR}\n\n${ALL}:door\n`);
      const unknownStream = tokenFile(`${ALL}:gate\n`);
      const onlyComments = tokenFile("# nothing yet\n\n");
      const missing = join(dir, "missing");
      const cases: [string[], unknown, Record<string, string>, string][] = [
        [["--token-file", badLine], undefined, {}, `${badLine}:3`],
        [["--token", ALL, "--token-file", duplicate], { streams }, {}, `${duplicate}:3`],
        [["--token-file", unknownStream], { streams }, {}, `${unknownStream}:1`],
        [["--token-file", onlyComments], undefined, {}, "--token-file"],
        [["--token-file", missing], undefined, {}, "--token-file"],
        [[], { tokenFile: missing }, {}, "c.json: tokenFile"],
        [[], { tokenFile: "" }, {}, "c.json: tokenFile"],
        [[], undefined, { CANVASCAST_TOKENS: `${ENV1} short-secret` }, "CANVASCAST_TOKENS (#2)"],
        [["--token", ENV1], undefined, { CANVASCAST_TOKENS: ENV1 }, "CANVASCAST_TOKENS (#1)"],
        [[], { streams }, { CANVASCAST_TOKENS: `${ENV1}:door,` }, "CANVASCAST_TOKENS (#1)"],
        [[], undefined, { CANVASCAST_TOKENS: " \n " }, "CANVASCAST_TOKENS"],
      ];
      for (const [argv, file, env, key] of cases) {
        const err = refusal(argv, file, env);
        expect(err.key, key).toBe(key);
        for (const secret of [ALL, DOOR, ENV1, "short-secret"]) expect(err.message, key).not.toContain(secret);
      }
      expect(refusal(["--token", ALL, "--token-file", duplicate], { streams }).message).toContain("already given at --token (#1)");
      expect(refusal(["--token-file", missing]).message).toContain(missing);
      expect(refusal(["--token-file", onlyComments]).message).toContain("holds no token");
    });

    test("parseAccessConfig without known streams (null) takes any stream name, but only names", () => {
      const parsed = parseAccessConfig({ token: [`${ALL}:gate,door`] }, undefined, (k) => k, null);
      expect(parsed.access.tokens).toEqual([{ token: ALL, streams: ["gate", "door"] }]);
      const flags = { tokensEnv: `${ALL}:gate/../x` };
      expect(() => parseAccessConfig(flags, undefined, (k) => k, null)).toThrow(/CANVASCAST_TOKENS \(#1\): "gate\/\.\.\/x" is not a stream name/);
      // With known streams, the same unknown name is refused.
      expect(() => parseAccessConfig({ token: [`${ALL}:gate`] }, undefined, (k) => k, new Set(["door"]))).toThrow(/no stream named "gate"/);
    });
  });

  test("--allow-origin and allowOrigins: normalised origins or *; anything with a path is refused", () => {
    expect(cli(["--allow-origin", "https://Cams.Example.com:443/", "--allow-origin", "*"], { allowOrigins: ["http://192.0.2.7:8080"] }).access.allowOrigins).toEqual([
      "http://192.0.2.7:8080",
      "https://cams.example.com",
      "*",
    ]);
    for (const bad of ["cams.example.com", "https://cams.example.com/path", "ftp://x", "https://x?y=1", "https://user@x"]) {
      expect(errorOf(["--allow-origin", bad]).key, bad).toBe("--allow-origin");
    }
    expect(errorOf([], { allowOrigins: ["nope"] }).key).toBe("c.json: allowOrigins[0]");
  });

  test("TLS: files, self-signed with its directory, the file's tls, and the combinations that make no sense", () => {
    expect(cli(["--tls-cert", "c.pem", "--tls-key", "k.pem"]).tls).toEqual({ kind: "files", certFile: "c.pem", keyFile: "k.pem" });
    expect(cli(["--tls-self-signed", "--tls-dir", "state"]).tls).toEqual({ kind: "self-signed", dir: "state" });
    expect(cli(["--tls-self-signed"]).tls).toMatchObject({ kind: "self-signed", dir: expect.stringMatching(/canvascast[/\\]tls$/) as unknown });
    expect(cli([], { tls: { cert: "a.pem", key: "b.pem" } }).tls).toEqual({ kind: "files", certFile: "a.pem", keyFile: "b.pem" });
    expect(cli([], { tls: { selfSigned: true, dir: "d" } }).tls).toEqual({ kind: "self-signed", dir: "d" });
    // Flags replace the file's tls.
    expect(cli(["--tls-self-signed", "--tls-dir", "s"], { tls: { cert: "a.pem", key: "b.pem" } }).tls).toEqual({ kind: "self-signed", dir: "s" });
    expect(cli([]).tls).toBeNull();
    expect(errorOf(["--tls-cert", "c.pem"]).key).toBe("--tls-cert");
    expect(errorOf(["--tls-key", "k.pem"]).key).toBe("--tls-key");
    expect(errorOf(["--tls-dir", "d"]).key).toBe("--tls-dir");
    expect(errorOf(["--tls-self-signed", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).key).toBe("--tls-self-signed");
    expect(errorOf([], { tls: { cert: "a.pem" } }).key).toBe("c.json: tls");
    expect(errorOf([], { tls: { selfSigned: false } }).key).toBe("c.json: tls");
  });
});
