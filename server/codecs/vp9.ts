// VP9 (vp9enc, libvpx): realtime deadline, no lag. 640×480@30 here: 18 % of a core with one
// thread at cpu-used=8 (20 % with two, 25 % at cpu-used=6), keeping up.

import { BITSTREAM_READERS } from "../../shared/codec.js";
import type { CodecModule } from "./codec-module.js";
import { RATE_HOLD_ARGS } from "./vp8.js";

export const vp9: CodecModule = {
  name: "vp9",
  mediaType: "video/x-vp9",
  encoderArgs: ({ bitrateKbps, keyframeDistance }) => [
    "!", "vp9enc",
    "deadline=1", "cpu-used=8", "end-usage=cbr",
    `target-bitrate=${Math.round(bitrateKbps * 1000)}`,
    `keyframe-max-dist=${keyframeDistance}`,
    "lag-in-frames=0", "threads=1", "error-resilient=default",
    ...RATE_HOLD_ARGS, // test:snow at 1.5 Mbit/s: 1.55 Mbit/s (1.33 and 23 fps without: the encoder fell behind)
  ],
  // vp9parse puts the size in the caps (rtpvp9depay's have none) and keeps superframes whole.
  parseArgs: ["!", "vp9parse", "!", "video/x-vp9,alignment=super-frame"],
  rtp: { depayloader: "rtpvp9depay", encodingName: "VP9" },
  read: BITSTREAM_READERS.vp9,
  headerFlagOnKeyframes: false,
  provisionalCodecString: "vp09.00.30.08",
};
