// AV1 (av1enc, libaom) in its realtime usage, then av1parse to temporal units of sized OBUs (what
// WebCodecs decodes). libaom's CBR asserts with gst's quantizer defaults (0..0), so bounds are set.
// 640×480@30 here: 46 % of a core at cpu-used=10 with two threads (54 % at 9), keeping up.

import { BITSTREAM_READERS } from "../../shared/codec.js";
import type { CodecModule } from "./codec-module.js";

/** Temporal units of OBUs with size fields, the sequence header in band on keyframes. */
const PARSE_ARGS = ["!", "av1parse", "!", "video/x-av1,stream-format=obu-stream,alignment=tu"];

export const av1: CodecModule = {
  name: "av1",
  mediaType: "video/x-av1",
  encoderArgs: ({ bitrateKbps, keyframeDistance }) => [
    "!", "av1enc",
    "usage-profile=realtime", "cpu-used=10", "end-usage=cbr",
    `target-bitrate=${Math.round(bitrateKbps)}`, // kbit/s for av1enc
    // The whole quantizer range, for the rate on hard content: on test:snow at 1.5 Mbit/s, 11.2
    // Mbit/s at 18 fps (falling behind) with max-quantizer=56, 2.64 at 30 fps with 63. Fewer bits
    // than that take fewer frames, and libaom's drop-frame stops all output within seconds here
    // (gst 1.22, libaom 3.6), so it stays off.
    "min-quantizer=4", "max-quantizer=63",
    `keyframe-max-dist=${keyframeDistance}`,
    "lag-in-frames=0", "row-mt=true", "threads=2",
    ...PARSE_ARGS,
  ],
  parseArgs: PARSE_ARGS,
  // gst-plugins-rs has it (not Debian 12's GStreamer): without it, the probe reports the missing element.
  rtp: { depayloader: "rtpav1depay", encodingName: "AV1" },
  read: BITSTREAM_READERS.av1,
  headerFlagOnKeyframes: true,
  provisionalCodecString: "av01.0.04M.08",
};
