// VP8 (vp8enc): live settings (deadline 1, fastest speed, CBR), in two temporal layers.

import { BITSTREAM_READERS } from "../../shared/codec.js";
import type { CodecModule } from "./codec-module.js";

export const vp8: CodecModule = {
  name: "vp8",
  mediaType: "video/x-vp8",
  encoderArgs: ({ bitrateKbps, keyframeDistance }) => [
    "!", "vp8enc",
    // vp8enc defaults are for files (deadline 1 s); these are the live settings.
    "deadline=1", "cpu-used=8", "end-usage=cbr",
    `target-bitrate=${Math.round(bitrateKbps * 1000)}`,
    `keyframe-max-dist=${keyframeDistance}`,
    "lag-in-frames=0", "threads=1", "error-resilient=default",
    ...RATE_HOLD_ARGS,
    ...temporalLayerArgs(),
  ],
  // VP8 has no gst parser: an encoder's or rtpvp8depay's frames are whole, with the size in the caps.
  parseArgs: ["!", "video/x-vp8"],
  rtp: { depayloader: "rtpvp8depay", encodingName: "VP8" },
  read: BITSTREAM_READERS.vp8,
  headerFlagOnKeyframes: false,
  provisionalCodecString: "vp8",
};

/**
 * Holds the rate on content no quantizer compresses enough (noise, a shaken camera): a 1 s model
 * of the client's buffer, frames dropped while it is below 30 %. Measured on test:snow at
 * 640×480@30 and 1.5 Mbit/s: 8.6 Mbit/s without, 1.56 with; libvpx's defaults (a 6 s buffer, no
 * dropping) suit files. vp9enc takes the same properties.
 */
export const RATE_HOLD_ARGS = ["dropframe-threshold=30", "buffer-size=1000", "buffer-initial-size=500", "buffer-optimal-size=600"];

/**
 * Two temporal layers, as reference rules per frame (vp8enc applies the flags in turn, by frame
 * number): even frames reference and update only the last frame; odd frames reference it too but
 * update no reference buffer and no probabilities, so no frame depends on them. A joining player
 * skips those frames of the replayed GOP (shared/vp8.ts) and decodes half of it. The rate control
 * stays one layer (CBR at the stream's bitrate); the bitstream is plain VP8 for every decoder.
 */
function temporalLayerArgs(): string[] {
  const base = "no-ref-golden+no-ref-alt+no-upd-golden+no-upd-alt";
  return [`temporal-scalability-layer-flags=<${base},${base}+no-upd-last+no-upd-entropy>`];
}
