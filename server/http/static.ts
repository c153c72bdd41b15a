// Static files of the built web client. sirv in production mode indexes the directory once at
// start-up and serves only the files it found, so no request path can reach outside it.

import { existsSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import sirv from "sirv";
import { setSecurityHeaders } from "./security-headers.js";

/** Files other origins may load: the embeddable player module and its source map and types. */
const EMBEDDABLE = new Set(["/canvascast.js", "/canvascast.js.map", "/canvascast.d.ts"]);

export type StaticHandler = (req: IncomingMessage, res: ServerResponse, notFound: () => void) => void;

export function createStaticHandler(webRoot: string): StaticHandler {
  if (!existsSync(webRoot)) {
    throw Object.assign(new Error(`web client not built: ${webRoot} does not exist (run npm run build)`), {
      code: "CC_ERR_NO_WEB_BUILD",
    });
  }
  const serve = sirv(webRoot, {
    dev: false,
    etag: true,
    dotfiles: false,
    // Hashed assets can be cached forever; index.html must not be.
    setHeaders(res, pathname) {
      setSecurityHeaders(res);
      res.setHeader("Cache-Control", pathname.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-cache");
      if (EMBEDDABLE.has(pathname)) {
        // The player module is for other people's pages: loadable cross-origin (module scripts need CORS).
        res.setHeader("Access-Control-Allow-Origin", "*");
        res.setHeader("Cross-Origin-Resource-Policy", "cross-origin");
      }
    },
  });
  return (req, res, notFound) => serve(req, res, notFound);
}
