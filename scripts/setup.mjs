#!/usr/bin/env node
// Checks (and where it can, installs) what `npm run serve` or `npm test` needs on a fresh machine.
// Plain JavaScript with no dependencies: it runs before `npm ci` has.
//
//   node scripts/setup.mjs serve   GStreamer tools and plugins, npm dependencies
//   node scripts/setup.mjs test    the same, plus Chromium for the browser tests and Debian's
//                                  Python 3 (/usr/bin/python3) for the spec-only test client and,
//                                  with python3-gi and GstRtspServer, the tests' RTSP camera, and
//                                  nats-server for the tests' NATS cluster (origins and edges)
//   node scripts/setup.mjs bench   the same, plus ffmpeg (MPEG-1 for the jsmpeg comparison)
//
// Missing system packages are installed with apt-get when running as root or with passwordless
// sudo; otherwise it prints the exact command to run and exits 1.

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const mode = process.argv[2] ?? "serve";
if (mode !== "serve" && mode !== "test" && mode !== "bench") {
  console.error(`usage: node scripts/setup.mjs serve|test|bench`);
  process.exit(2);
}

const say = (msg) => console.error(`canvascast setup: ${msg}`);

// --- Node ------------------------------------------------------------------------------------------
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  say(`Node ${process.versions.node} is too old; canvascast needs Node 20.19 or newer.`);
  process.exit(1);
}

// --- System packages -------------------------------------------------------------------------------
const CHROMIUM = "/usr/bin/chromium";
/** Debian's own Python: test/helpers/spec_client.py runs on it (another python3 may be first on the PATH). */
const PYTHON = "/usr/bin/python3";
/** GStreamer elements the pipelines use, and the Debian package that ships each. */
const GST_ELEMENTS = [
  ["fdsink", "gstreamer1.0-tools"], // core elements come with the tools' libgstreamer
  ["videotestsrc", "gstreamer1.0-plugins-base"],
  ["videoconvert", "gstreamer1.0-plugins-base"],
  ["clockoverlay", "gstreamer1.0-x"], // the pango plugin: the clock drawn on the test pattern
  ["vp8enc", "gstreamer1.0-plugins-good"],
  ["v4l2src", "gstreamer1.0-plugins-good"],
  ["gdppay", "gstreamer1.0-plugins-bad"],
  // The other codecs (server/codecs/): encoders and the parsers that frame their output.
  ["vp9enc", "gstreamer1.0-plugins-good"],
  ["av1enc", "gstreamer1.0-plugins-bad"],
  ["av1parse", "gstreamer1.0-plugins-bad"],
  ["h264parse", "gstreamer1.0-plugins-bad"],
  ["x264enc", "gstreamer1.0-plugins-ugly"],
  // rtsp:// sources (server/source/rtsp.ts) and what codec copy parses (server/codecs/*.ts parseArgs).
  ["rtspsrc", "gstreamer1.0-plugins-good"],
  ["rtph264depay", "gstreamer1.0-plugins-good"],
  ["rtpvp8depay", "gstreamer1.0-plugins-good"],
  ["rtpvp9depay", "gstreamer1.0-plugins-good"],
  ["vp9parse", "gstreamer1.0-plugins-bad"],
];
/** Only the tests use these: they decode what a client received (test/helpers/codec-decode.ts). */
const GST_TEST_ELEMENTS = [
  ["vp9dec", "gstreamer1.0-plugins-good"],
  ["av1dec", "gstreamer1.0-plugins-bad"],
  ["avdec_h264", "gstreamer1.0-libav"],
];

/** The tests' RTSP camera (test/helpers/rtsp_server.py): gst-rtsp-server through PyGObject, on Debian's Python. */
const RTSP_SERVER_PACKAGES = ["python3-gi", "gir1.2-gst-rtsp-server-1.0"];
function hasRtspServer() {
  const check = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer";
  return existsSync(PYTHON) && spawnSync(PYTHON, ["-c", check], { stdio: "ignore" }).status === 0;
}

function onPath(program) {
  return spawnSync("sh", ["-c", `command -v "$1"`, "sh", program], { stdio: "ignore" }).status === 0;
}

function missingPackages() {
  const missing = new Set();
  if (!onPath("gst-launch-1.0") || !onPath("gst-inspect-1.0")) {
    for (const [, pkg] of [...GST_ELEMENTS, ...(mode === "serve" ? [] : GST_TEST_ELEMENTS)]) missing.add(pkg);
  } else {
    for (const [element, pkg] of [...GST_ELEMENTS, ...(mode === "serve" ? [] : GST_TEST_ELEMENTS)]) {
      if (spawnSync("gst-inspect-1.0", ["--exists", element], { stdio: "ignore" }).status !== 0) missing.add(pkg);
    }
  }
  if (mode !== "serve" && !existsSync(CHROMIUM)) missing.add("chromium");
  if (mode !== "serve" && !existsSync(PYTHON)) missing.add("python3");
  if (mode !== "serve" && !hasRtspServer()) for (const pkg of RTSP_SERVER_PACKAGES) missing.add(pkg);
  // Serving needs no NATS server of its own (`--nats` names a cluster that runs elsewhere); the tests start one.
  if (mode !== "serve" && !onPath("nats-server")) missing.add("nats-server");
  if (mode === "bench" && !onPath("ffmpeg")) missing.add("ffmpeg");
  return [...missing].sort();
}

function canInstall() {
  if (typeof process.getuid === "function" && process.getuid() === 0) return [];
  if (onPath("sudo") && spawnSync("sudo", ["-n", "true"], { stdio: "ignore" }).status === 0) return ["sudo"];
  return null;
}

let missing = missingPackages();
if (missing.length > 0) {
  const installLine = `apt-get install -y ${missing.join(" ")}`;
  const prefix = canInstall();
  if (prefix === null || !onPath("apt-get")) {
    say(`missing system packages: ${missing.join(", ")}`);
    say(`install them with:\n\n    sudo apt-get update && sudo ${installLine}\n`);
    process.exit(1);
  }
  say(`installing ${missing.join(", ")} with apt-get …`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const run = (args) => {
    const [cmd, ...rest] = [...prefix, ...args];
    execFileSync(cmd, rest, { stdio: "inherit", env });
  };
  try {
    run(["apt-get", "update", "-q"]);
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", ...missing]);
  } catch {
    say(`apt-get failed; run it yourself:\n\n    sudo apt-get update && sudo ${installLine}\n`);
    process.exit(1);
  }
  missing = missingPackages();
  if (missing.length > 0) {
    say(`still missing after apt-get: ${missing.join(", ")}`);
    process.exit(1);
  }
}

// --- npm dependencies ------------------------------------------------------------------------------
const lock = `${root}/package-lock.json`;
const installed = `${root}/node_modules/.package-lock.json`;
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  say("installing npm dependencies (npm ci) …");
  // Puppeteer must not download a browser of its own: the tests use Debian's Chromium.
  const env = { ...process.env, PUPPETEER_SKIP_DOWNLOAD: "1" };
  const result = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: root, stdio: "inherit", env });
  if (result.status !== 0) {
    say("npm ci failed (see above).");
    process.exit(1);
  }
}
