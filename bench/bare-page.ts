// A bare page of another origin that embeds the server's /canvascast.js with one player, as a
// site embedding a camera would: `/worker` is a plain `<canvas-cast src=…>` (the element plays in a
// worker where it can), `/main` the same element with the player on the main thread (a subclass
// through the element's createPlayer() hook). A real navigation, so a join is timed from the
// page's navigation start like the dashboard's (browser-cost.ts's bare page is written into a page
// already loaded, which suits a measurement that starts after the load).

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export type BareThread = "worker" | "main";

export interface BarePages {
  /** The page's URL for a thread. */
  url(thread: BareThread): string;
  /** Stops the page server. Safe to call twice. */
  close(): Promise<void>;
}

/** The element's selector on both pages. */
export const BARE_PLAYER_SELECTOR = "canvas-cast, canvas-cast-main";

function page(serverOrigin: string, stream: string, thread: BareThread): string {
  const module = `${serverOrigin}/canvascast.js`;
  const src = `${serverOrigin.replace(/^http/, "ws")}/ws/${stream}`;
  const style = "<style>body{margin:0;background:#000}canvas-cast,canvas-cast-main{display:block;width:640px;height:480px}</style>";
  const player =
    thread === "worker"
      ? `<script type="module" src="${module}"></script>\n<canvas-cast src="${src}"></canvas-cast>`
      : `<script type="module">
import { CanvasCastElement, play } from "${module}";
customElements.define("canvas-cast-main", class extends CanvasCastElement {
  createPlayer(media, url) { return play(media, url, { worker: false }); }
});
</script>
<canvas-cast-main src="${src}"></canvas-cast-main>`;
  return `<!doctype html>\n<meta charset="utf-8">\n<title>bare page</title>\n${style}\n${player}\n`;
}

/** Serves the bare pages for `stream` of the server at `serverUrl`, on 127.0.0.1 (a secure context, another origin). */
export async function startBarePages(serverUrl: string, stream: string): Promise<BarePages> {
  const serverOrigin = new URL(serverUrl).origin;
  const server: Server = createServer((req, res) => {
    const thread = req.url === "/worker" ? "worker" : req.url === "/main" ? "main" : undefined;
    if (thread !== undefined) res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" }).end(page(serverOrigin, stream, thread));
    else res.writeHead(req.url === "/favicon.ico" ? 204 : 404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let closing: Promise<void> | undefined;
  return {
    url: (thread) => `${origin}/${thread}`,
    close: () => (closing ??= new Promise<void>((resolve) => server.close(() => resolve()))),
  };
}
