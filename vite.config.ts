// Builds the browser side (web/) into dist/web; `vite dev` proxies the API and sockets to a
// canvascast server on :8080 (start it with `node dist/server/main.js`).
//
// `vite build` makes two things: the dashboard (web/index.html → dist/web/index.html + assets/),
// then, when that is written, the embeddable module in library mode (web/canvascast.ts →
// dist/web/canvascast.js, one self-contained ES module with its player worker inlined, plus
// canvascast.js.map and canvascast.d.ts made from web/player/api.ts, which the player itself imports its public types from).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import type { LogLevel, Plugin } from "vite";
import { build, defineConfig } from "vite";

const server = "http://127.0.0.1:8080";
const outDir = fileURLToPath(new URL("./dist/web", import.meta.url));
const webRoot = fileURLToPath(new URL("./web", import.meta.url));
const target = "es2022";

/** The values web/canvascast.ts exports, typed with api.ts's types (its typecheck enforces the same). */
const DTS_VALUES = `
/** Plays the frame protocol socket \`url\` (e.g. \`ws://host:8080/ws/cam0\`) into \`canvas\`. */
export declare const play: PlayFunction;
/** The class behind \`<canvas-cast>\`, defined on import. */
export declare const CanvasCastElement: CanvasCastElementConstructor;
`;

/** Emits canvascast.d.ts: the declarations of the self-contained web/player/api.ts plus the two exported values. */
function embedTypes(): Plugin {
  return {
    name: "canvascast-embed-types",
    generateBundle() {
      const file = fileURLToPath(new URL("./web/player/api.ts", import.meta.url));
      const { outputText, diagnostics } = ts.transpileDeclaration(readFileSync(file, "utf8"), {
        fileName: file,
        compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
        reportDiagnostics: true,
      });
      if (diagnostics !== undefined && diagnostics.length > 0) {
        this.error(`api.ts declarations: ${ts.flattenDiagnosticMessageText(diagnostics[0]!.messageText, "\n")}`);
      }
      if (/^\s*import\s/m.test(outputText)) this.error("web/player/api.ts must import nothing: canvascast.d.ts is one file");
      const header = "// Types of canvascast.js, the embeddable canvascast player (generated from web/player/api.ts).\n";
      this.emitFile({ type: "asset", fileName: "canvascast.d.ts", source: `${header}${outputText.trimEnd()}\n${DTS_VALUES}` });
    },
  };
}

/** After the dashboard build, builds the embeddable module into the same directory. */
function embedBuild(): Plugin {
  let logLevel: LogLevel = "info";
  return {
    name: "canvascast-embed",
    apply: "build",
    configResolved(config) {
      logLevel = config.logLevel ?? "info";
    },
    async closeBundle() {
      await build({
        configFile: false,
        root: webRoot,
        logLevel,
        plugins: [embedTypes()],
        build: {
          outDir,
          emptyOutDir: false,
          target,
          sourcemap: true,
          minify: true,
          // Library mode keeps whitespace in ES output; this module is served as is, so minify it fully.
          rolldownOptions: { output: { minify: true } },
          copyPublicDir: false,
          lib: { entry: fileURLToPath(new URL("./web/canvascast.ts", import.meta.url)), formats: ["es"], fileName: () => "canvascast.js" },
        },
        worker: { format: "iife" },
      });
    },
  };
}

export default defineConfig({
  root: "web",
  plugins: [embedBuild()],
  build: {
    outDir,
    emptyOutDir: true,
    target,
    sourcemap: true,
  },
  server: {
    proxy: {
      "/api": { target: server, changeOrigin: false },
      "/ws": { target: server, ws: true },
      "/webm": { target: server, ws: true },
      "/canvascast.js": { target: server },
    },
  },
});
