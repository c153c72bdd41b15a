// The few fields canvascast reads from a GStreamer caps string such as
// "video/x-vp8, width=(int)640, height=(int)480, framerate=(fraction)30/1, …".

export interface VideoCaps {
  readonly mediaType: string;
  readonly width: number;
  readonly height: number;
  /** Frames per second; 0 when the caps say variable (0/1) or nothing. */
  readonly framerate: number;
}

export function parseVideoCaps(caps: string): VideoCaps | null {
  const mediaType = caps.split(",", 1)[0]?.trim() ?? "";
  const width = intField(caps, "width");
  const height = intField(caps, "height");
  if (!mediaType || width === null || height === null) return null;
  const rate = /(?:^|[\s,])framerate=\(fraction\)(\d+)\/(\d+)/.exec(caps);
  const framerate = rate && Number(rate[2]) > 0 ? Number(rate[1]) / Number(rate[2]) : 0;
  return { mediaType, width, height, framerate };
}

function intField(caps: string, name: string): number | null {
  const m = new RegExp(`(?:^|[\\s,])${name}=\\(int\\)(\\d+)`).exec(caps);
  return m ? Number(m[1]) : null;
}
