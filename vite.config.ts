// Builds the browser side (web/) into dist/web; `vite dev` proxies the API and sockets to a
// canvascast server on :8080 (start it with `node dist/server/main.js`).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const server = "http://127.0.0.1:8080";

export default defineConfig({
  root: "web",
  build: {
    outDir: fileURLToPath(new URL("./dist/web", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    sourcemap: true,
  },
  server: {
    proxy: {
      "/api": { target: server, changeOrigin: false },
      "/ws": { target: server, ws: true },
    },
  },
});
