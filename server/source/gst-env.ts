// What the local GStreamer installation offers.

import { execFile } from "node:child_process";

/** True when gst-inspect-1.0 knows the element. False also when gst-inspect-1.0 itself is missing. */
export function hasGstElement(name: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile("gst-inspect-1.0", ["--exists", name], { timeout: 10_000 }, (err) => resolve(err === null));
  });
}
