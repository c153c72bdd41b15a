// Static files of the built web client. sirv in production mode indexes the directory once at
// start-up and serves only the files it found, so no request path can reach outside it.

import { existsSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import sirv from "sirv";

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
      res.setHeader("X-Content-Type-Options", "nosniff");
      res.setHeader("Cache-Control", pathname.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-cache");
    },
  });
  return (req, res, notFound) => serve(req, res, notFound);
}
