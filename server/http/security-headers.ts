// Security headers for the dashboard and the files it loads. The Content-Security-Policy allows
// exactly what the built dashboard uses, nothing else:
// - scripts and styles: its own files under /assets (the Vite build inlines no script or style;
//   the page sets styles only through the CSSOM, which style-src does not govern);
// - img-src data: the favicon is a data: SVG;
// - media-src blob: the MSE path plays a MediaSource through a blob: URL in a <video>;
// - connect-src 'self': GET /api/streams and the WebSockets to /ws/, /webm/ and /mp4/ on the same origin
//   ('self' covers ws:/wss: of the page's own host and port);
// - no workers: the dashboard plays on the main thread (the embeddable module's worker runs on the
//   embedding page, under that page's policy);
// - no framing, no plugins, no <base>, no form posts.
// Snapshots are downloads of a blob: link, which no fetch directive governs.

import type { ServerResponse } from "node:http";

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src data:",
  "media-src blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy": DASHBOARD_CSP,
  "X-Content-Type-Options": "nosniff",
  // Stream names and tokens in URLs stay on this server.
  "Referrer-Policy": "no-referrer",
};

export function setSecurityHeaders(res: ServerResponse): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
}
