// Access on the real server (real gst pipelines, real `ws` sockets, real https): tokens on /ws/,
// /webm/ and /api/streams (none, wrong, for another stream, right), the Origin rule for upgrades,
// no token in the log; tokens from --token-file and CANVASCAST_TOKENS (not in argv, not passed on to
// the pipeline); the open-to-the-network warning; https/wss with a self-signed certificate
// that is kept and reused, and with the operator's certificate files.

import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { afterAll, describe, expect, it } from "vitest";
import type { StreamsResponse } from "../../shared/api.js";
import { childPids, startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { waitFor } from "../helpers/until.js";
import { connectViewer, tryUpgrade } from "../helpers/ws-viewer.js";

const ALL = "all-streams-4f1c2e9a7b3d5c60a1e2";
const DOOR = "door-only-9c7e1b3a5d2f4e6081b9";
const WRONG = "wrong-token-0d3b5f7a9c1e2d4f6a8b";
const SMALL = ["--size", "160x120", "--fps", "15"];

const MAIN = fileURLToPath(new URL("../../dist/server/main.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "canvascast-access-"));

afterAll(async () => {
  await stopAllServers();
  rmSync(dir, { recursive: true, force: true });
});

async function getApi(server: ServerProcess, query = "", headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${server.url}api/streams${query}`, { headers });
  return { status: response.status, body: await response.json() };
}

/** The first binary message of a /webm/ socket (the WebM initialisation segment). */
function firstWebmMessage(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once("message", (data: Buffer) => {
      ws.close();
      resolve(data);
    });
    ws.once("error", reject);
  });
}

describe("tokens and origins", () => {
  let server: ServerProcess;

  it("starts with two streams, a token for both and one for door only, and one more allowed origin", async () => {
    server = await startServerProcess([
      "--stream", "door=test",
      "--stream", "yard=test:ball",
      ...SMALL,
      "--token", ALL,
      "--token", `${DOOR}:door`,
      "--allow-origin", "http://allowed.test:9999",
      "--log-level", "debug",
    ]);
    expect(server.output()).not.toMatch(/WARNING/);
  });

  it("/ws/ and /webm/: no token and a wrong one 401, a token for another stream 403, each refused before the socket opens", async () => {
    for (const kind of ["ws", "webm"]) {
      const url = `${server.wsBase}${kind}/yard`;
      expect(await tryUpgrade(url), `${kind} no token`).toEqual({ opened: false, status: 401, code: "CC_ERR_UNAUTHORIZED", socketClosed: true });
      expect(await tryUpgrade(`${url}?token=${WRONG}`), `${kind} wrong`).toEqual({
        opened: false,
        status: 401,
        code: "CC_ERR_UNAUTHORIZED",
        socketClosed: true,
      });
      expect(await tryUpgrade(url, { Authorization: `Bearer ${WRONG}` }), `${kind} wrong bearer`).toMatchObject({ status: 401 });
      expect(await tryUpgrade(`${url}?token=${DOOR}`), `${kind} door token on yard`).toEqual({
        opened: false,
        status: 403,
        code: "CC_ERR_FORBIDDEN_STREAM",
        socketClosed: true,
      });
    }
  });

  it("/ws/ and /webm/: the right token (in the URL or as a bearer header) plays", async () => {
    const door = await connectViewer(`${server.wsBase}ws/door?token=${DOOR}`);
    const yard = await connectViewer(`${server.wsBase}ws/yard`, { headers: { Authorization: `Bearer ${ALL}` } });
    await Promise.all([door.waitForFrames(3), yard.waitForFrames(3)]);
    expect(door.texts()[0]).toMatchObject({ type: "hello", stream: "door" });
    expect(yard.texts()[0]).toMatchObject({ type: "hello", stream: "yard" });
    door.close();
    yard.close();
    const init = await firstWebmMessage(`${server.wsBase}webm/door?token=${DOOR}`);
    expect(init.subarray(0, 4)).toEqual(Buffer.from([0x1a, 0x45, 0xdf, 0xa3])); // the EBML header
    // An unknown stream with a token for every stream: accepted, then closed 4404 as without tokens.
    const unknown = await connectViewer(`${server.wsBase}ws/gate?token=${ALL}`);
    expect((await unknown.closed).code).toBe(4404);
  });

  it("/api/streams: 401 without or with a wrong token, only its streams for a limited token, all for the other", async () => {
    const none = await getApi(server);
    expect(none).toEqual({ status: 401, body: { error: "CC_ERR_UNAUTHORIZED", message: expect.any(String) as unknown } });
    expect((await fetch(`${server.url}api/streams`)).headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect((await getApi(server, `?token=${WRONG}`)).status).toBe(401);
    expect((await getApi(server, "", { Authorization: `Bearer ${WRONG}` })).status).toBe(401);
    // Any /api/ path needs the token, known or not.
    expect((await fetch(`${server.url}api/nope`)).status).toBe(401);
    expect((await fetch(`${server.url}api/nope?token=${ALL}`)).status).toBe(404);

    const limited = await getApi(server, "", { Authorization: `Bearer ${DOOR}` });
    expect(limited.status).toBe(200);
    expect((limited.body as StreamsResponse).streams.map((s) => s.name)).toEqual(["door"]);
    const all = await getApi(server, `?token=${ALL}`);
    expect((all.body as StreamsResponse).streams.map((s) => s.name)).toEqual(["door", "yard"]);
    expect((all.body as StreamsResponse).warnings).toEqual([]);
    // The dashboard and the player module stay loadable without one.
    expect((await fetch(server.url)).status).toBe(200);
    expect((await fetch(`${server.url}canvascast.js`)).status).toBe(200);
  });

  it("Origin: a foreign one is refused 403 even with the right token; own, loopback, listed and absent ones open", async () => {
    const url = `${server.wsBase}ws/door?token=${ALL}`;
    const own = new URL(server.url).origin;
    for (const foreign of ["http://evil.test", "http://allowed.test:9998", "https://allowed.test:9999", "null"]) {
      expect(await tryUpgrade(url, { Origin: foreign }), foreign).toEqual({
        opened: false,
        status: 403,
        code: "CC_ERR_FORBIDDEN_ORIGIN",
        socketClosed: true,
      });
    }
    expect(await tryUpgrade(`${server.wsBase}webm/door?token=${ALL}`, { Origin: "http://evil.test" })).toMatchObject({ status: 403 });
    for (const allowed of [own, "http://localhost:5173", "http://127.0.0.1:1", "http://[::1]:8080", "http://allowed.test:9999"]) {
      expect(await tryUpgrade(url, { Origin: allowed }), allowed).toEqual({ opened: true });
    }
    expect(await tryUpgrade(url)).toEqual({ opened: true }); // no Origin: not a browser page
    // Own origin = the Host the request names, with our scheme (here a name that is not loopback).
    const host = `cam.test:${new URL(server.url).port}`;
    expect(await tryUpgrade(url, { Host: host, Origin: `http://${host}` })).toEqual({ opened: true });
    expect(await tryUpgrade(url, { Host: host, Origin: `https://${host}` })).toMatchObject({ status: 403, code: "CC_ERR_FORBIDDEN_ORIGIN" });
    // A foreign origin is refused before the token is even looked at.
    expect(await tryUpgrade(`${server.wsBase}ws/door`, { Origin: "http://evil.test" })).toMatchObject({ status: 403 });
  });

  it("no token, right or wrong, appears in the log; refusals are logged with the token redacted", async () => {
    const output = server.output();
    const refusals = output.split("\n").filter((line) => line.includes("request refused"));
    expect(refusals.some((line) => line.includes("CC_ERR_UNAUTHORIZED") && line.includes("token=[redacted]"))).toBe(true);
    expect(output).toMatch(/viewer connected/);
    for (const token of [ALL, DOOR, WRONG]) expect(output).not.toContain(token);
    expect((await server.stop("SIGTERM")).code).toBe(0);
    for (const token of [ALL, DOOR, WRONG]) expect(server.output()).not.toContain(token);
  });
});

describe("tokens off the command line: --token-file and CANVASCAST_TOKENS", () => {
  const FROM_FILE = "from-file-5e8a1c3b7d9f2e4a6c0b";
  const FROM_ENV = "from-env-3a7c9e1b5d2f4a6c8e0d";

  /** The secret is required and works, and is in neither the server's command line nor its pipeline's environment. */
  async function checkServer(server: ServerProcess, token: string): Promise<void> {
    const url = `${server.wsBase}ws/cam0`;
    expect(await tryUpgrade(url)).toMatchObject({ opened: false, status: 401, code: "CC_ERR_UNAUTHORIZED" });
    const viewer = await connectViewer(`${url}?token=${token}`);
    await viewer.waitForFrames(2);
    viewer.close();
    const cmdline = readFileSync(`/proc/${server.pid}/cmdline`, "utf8");
    expect(cmdline).toContain("dist/server/main.js"); // the right process
    expect(cmdline).not.toContain(token);
    const [gst] = childPids(server.pid, "gst-launch-1.0");
    expect(gst).toBeDefined();
    expect(readFileSync(`/proc/${gst}/environ`, "utf8")).not.toContain(token);
    expect((await server.stop("SIGTERM")).code).toBe(0);
    expect(server.output()).not.toContain(token);
  }

  it("--token-file: required and played with; a file other users may read is warned about on stdout and in /api/streams", async () => {
    const file = join(dir, "tokens");
    writeFileSync(file, `# viewers\n${FROM_FILE}\n`);
    chmodSync(file, 0o640);
    const server = await startServerProcess(["--source", "test", ...SMALL, "--token-file", file]);
    expect(server.output()).toContain(`WARNING: --token-file ${file} holds a secret and is open to other users (mode 0640)`);
    const api = await getApi(server, `?token=${FROM_FILE}`);
    expect((api.body as StreamsResponse).warnings.map((w) => w.code)).toEqual(["CC_WARN_SECRET_FILE_MODE"]);
    await checkServer(server, FROM_FILE);
  });

  it("CANVASCAST_TOKENS: required and played with; no warning", async () => {
    const server = await startServerProcess(["--source", "test", ...SMALL], 20_000, MAIN, { ...process.env, CANVASCAST_TOKENS: FROM_ENV });
    expect(server.output()).not.toMatch(/WARNING/);
    await checkServer(server, FROM_ENV);
  });
});

/** The certificate an https server presents, as its SHA-256 fingerprint. */
function peerFingerprint(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(url, { rejectUnauthorized: false }, (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      res.resume();
      res.once("end", () => resolve(fingerprint));
    });
    req.once("error", reject);
  });
}

const printedFingerprint = (server: ServerProcess): string | undefined => /SHA-256 fingerprint ([0-9A-F:]{95})/.exec(server.output())?.[1];

describe("https and wss", () => {
  const tlsDir = join(dir, "tls");

  it("--tls-self-signed beyond loopback with no token: warns, serves https and wss, prints the fingerprint it serves, and reuses the certificate", async () => {
    const first = await startServerProcess(["--source", "test", ...SMALL, "--host", "0.0.0.0", "--tls-self-signed", "--tls-dir", tlsDir]);
    expect(first.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
    // On stderr, so it may arrive after the "serving on" line of stdout.
    await waitFor(() => /WARNING: .*no token/.test(first.output()), 5000, "the warning");
    expect(first.output()).toMatch(/self-signed: made/);
    const fingerprint = printedFingerprint(first);
    expect(fingerprint).toBeDefined();
    expect(await peerFingerprint(first.url)).toBe(fingerprint);

    const api = await new Promise<StreamsResponse>((resolve, reject) => {
      get(`${first.url}api/streams`, { rejectUnauthorized: false }, (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (t: string) => (text += t));
        res.once("end", () => resolve(JSON.parse(text) as StreamsResponse));
      }).once("error", reject);
    });
    expect(api.warnings.map((w) => w.code)).toEqual(["CC_WARN_OPEN_TO_NETWORK"]);

    expect(first.wsBase).toMatch(/^wss:/);
    const viewer = await connectViewer(`${first.wsBase}ws/cam0`, { rejectUnauthorized: false });
    await viewer.waitForFrames(3);
    viewer.close();
    expect((await first.stop("SIGTERM")).code).toBe(0);

    const second = await startServerProcess(["--source", "test", ...SMALL, "--tls-self-signed", "--tls-dir", tlsDir]);
    expect(second.output()).toMatch(/self-signed: reused/);
    expect(printedFingerprint(second)).toBe(fingerprint);
    expect(await peerFingerprint(second.url)).toBe(fingerprint);
    expect(second.output()).not.toMatch(/WARNING/); // loopback
    await second.stop("SIGTERM");
  });

  it("--tls-cert/--tls-key serve the operator's files; a key that is not one stops start-up with CC_ERR_TLS", async () => {
    const cert = join(tlsDir, "cert.pem");
    const server = await startServerProcess(["--source", "test", ...SMALL, "--tls-cert", cert, "--tls-key", join(tlsDir, "key.pem")]);
    expect(server.output()).toMatch(/\(files\)/);
    expect(await peerFingerprint(server.url)).toBe(printedFingerprint(server));
    await server.stop("SIGTERM");

    const badKey = join(dir, "bad-key.pem");
    writeFileSync(badKey, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    const failed = spawnSync(process.execPath, [MAIN, "--port", "0", "--source", "test", "--tls-cert", cert, "--tls-key", badKey], {
      encoding: "utf8",
      timeout: 15_000,
    });
    expect(failed.status).toBe(1);
    expect(failed.stderr).toMatch(/cannot start: CC_ERR_TLS/);
    expect(failed.stdout).not.toMatch(/serving on/);
  });
});
