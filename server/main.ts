// canvascast server CLI: `node dist/server/main.js [options]` (what `npm run serve` runs).

import { fileURLToPath } from "node:url";
import { startApp, type App } from "./app.js";
import { TOKENS_ENV } from "./access-config.js";
import { NATS_ENV } from "./cluster/nats-config.js";
import { ConfigError, parseCli, USAGE } from "./config.js";
import { createLogger } from "./log.js";
import { describeSource } from "./source/pipeline.js";

// dist/server/main.js → dist/web
const DEFAULT_WEB_ROOT = fileURLToPath(new URL("../web", import.meta.url));

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseCli(process.argv.slice(2), { defaultWebRoot: DEFAULT_WEB_ROOT });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`canvascast: ${err.message}\n\n${USAGE}`);
      process.exit(2);
    }
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    return;
  }
  const { config } = parsed;
  // Read once: the pipelines' processes (which inherit the environment) have no use for the tokens.
  delete process.env[TOKENS_ENV];
  for (const name of Object.values(NATS_ENV)) delete process.env[name];
  const log = createLogger(config.logLevel);

  let app: App;
  try {
    app = await startApp(config, { log });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const hint =
      e.code === "EADDRINUSE" ? ` (port ${config.port} is taken: pass --port N)` : e.code === "EACCES" ? " (use a port above 1023)" : "";
    // Our own errors carry a stable code (CC_ERR_TLS, …): print it for scripts and tests.
    const code = typeof e.code === "string" && e.code.startsWith("CC_ERR_") ? `${e.code}: ` : "";
    process.stderr.write(`canvascast: cannot start: ${code}${e.message}${hint}\n`);
    process.exit(1);
  }

  for (const stream of config.streams) {
    const { width, height, framerate, bitrateKbps, codec } = stream.settings;
    const encoding = codec === "copy" ? "copied as it comes (its codec, size and rate)" : `${codec} ${width}x${height}@${framerate}, ${bitrateKbps} kbit/s`;
    process.stdout.write(
      `canvascast: stream "${stream.name}" from ${describeSource(stream.source)}, ${encoding}` +
        (parsed.sourceNote ? ` (${parsed.sourceNote})` : "") +
        "\n",
    );
  }
  if (app.tls) process.stdout.write(`canvascast: TLS certificate ${app.tls.certPath} (${app.tls.origin}), SHA-256 fingerprint ${app.tls.fingerprint256}\n`);
  // With the start-up lines for the person at the console, and as a log event (stderr is JSON lines off a terminal).
  for (const warning of app.warnings) {
    process.stdout.write(`canvascast: WARNING: ${warning.message}\n`);
    log.warn(warning.message, { code: warning.code });
  }
  // Tests and scripts read this line to find the port: keep its shape.
  process.stdout.write(`canvascast: serving on ${app.url}\n`);

  let signals = 0;
  const shutdown = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log.warn("second signal: exiting now", { signal });
      process.exit(130); // the exit hook SIGKILLs any pipeline still running
    }
    log.info("shutting down", { signal });
    const force = setTimeout(() => {
      log.error("shutdown took too long; exiting");
      process.exit(1);
    }, 5000);
    force.unref();
    void app.close().then(() => process.exit(0));
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
  process.on("SIGHUP", shutdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`canvascast: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
