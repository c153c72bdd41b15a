// A Vite app of the kind the package's users write, for the npm package test: it imports the player
// from "canvascast" (the installed tarball), is typechecked against the package's own types, and is
// built by `vite build`. Its sources live here as strings, not as files in the repo, because as files
// the repo's own typecheck would resolve "canvascast" to this checkout instead of an installed package.
//
//   index.html + main.ts        play() into the page's canvas, with the package's types
//   element.html + element.ts   only `import "canvascast"` and a <canvas-cast>: the element must
//                               survive the app's tree-shaking (the package's "sideEffects")
//
// Both pages take the stream socket's URL as `?ws=`.

import { writeFileSync } from "node:fs";
import { join } from "node:path";

const FILES: Readonly<Record<string, string>> = {
  "package.json": `${JSON.stringify({ name: "canvascast-scratch-app", private: true, type: "module" }, null, 2)}\n`,

  // A Vite app template's settings, strict, and with the package's .d.ts checked too (skipLibCheck off).
  "tsconfig.json": `${JSON.stringify(
    {
      compilerOptions: {
        target: "ES2022",
        module: "ESNext",
        moduleResolution: "Bundler",
        lib: ["ES2022", "DOM", "DOM.Iterable"],
        types: [],
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        noUnusedLocals: true,
        verbatimModuleSyntax: true,
        isolatedModules: true,
        moduleDetection: "force",
        skipLibCheck: false,
        noEmit: true,
      },
      include: ["main.ts", "element.ts"],
    },
    null,
    2,
  )}\n`,

  // A plain object: the app has no vite of its own to import defineConfig from (the repo's vite builds it).
  "vite.config.js": `export default { build: { rolldownOptions: { input: ["index.html", "element.html"] } } };\n`,

  "index.html": `<!doctype html>
<meta charset="utf-8">
<title>canvascast from npm: play()</title>
<canvas id="own" width="320" height="240" style="width: 320px; height: 240px"></canvas>
<script type="module" src="./main.ts"></script>
`,

  "main.ts": `import { CanvasCastElement, play, type Player, type PlayOptions } from "canvascast";

const ws = new URLSearchParams(location.search).get("ws") ?? "";
const canvas = document.querySelector<HTMLCanvasElement>("#own");
if (canvas === null) throw new Error("no #own canvas");

const options: PlayOptions = { worker: "auto", reconnectDelayMs: 250 };
// @ts-expect-error -- \`worker\` is "auto" | boolean: the types are the package's, not \`any\`.
({ worker: "sometimes" }) satisfies PlayOptions;
const player: Player = play(canvas, ws, options);

// The package's HTMLElementTagNameMap entry types createElement; the class is the one defined on import.
const element: CanvasCastElement = document.createElement("canvas-cast");

Object.assign(window, {
  scratch: {
    player,
    framesPainted: (): number => player.stats().framesPainted,
    elementIsTheClass: customElements.get("canvas-cast") === CanvasCastElement && element instanceof CanvasCastElement,
  },
});
`,

  "element.html": `<!doctype html>
<meta charset="utf-8">
<title>canvascast from npm: the element</title>
<canvas-cast id="cam" style="width: 320px; height: 240px"></canvas-cast>
<script type="module" src="./element.ts"></script>
`,

  "element.ts": `import "canvascast";

const element = document.querySelector("canvas-cast");
if (element === null) throw new Error("no <canvas-cast>");
element.src = new URLSearchParams(location.search).get("ws") ?? "";
`,
};

/** Writes the app's sources (no node_modules) into `dir`. */
export function writeScratchViteApp(dir: string): void {
  for (const [name, text] of Object.entries(FILES)) writeFileSync(join(dir, name), text);
}
