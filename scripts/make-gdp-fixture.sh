#!/usr/bin/env bash
# Captures real gst-launch output (VP8 in GDP) for the parser's unit tests.
# 12 frames of 160x120 test pattern, a keyframe every 5 frames: caps, events, key and delta buffers.
# `layers`: the same with the server's two temporal layers (odd frames update no reference).
set -euo pipefail
kind="${1:-plain}"
fixtures="$(dirname "$0")/../test/fixtures"
case "$kind" in
  plain) out="$fixtures/videotestsrc-vp8-160x120.gdp"; extra=() ;;
  layers)
    out="$fixtures/videotestsrc-vp8-layers-160x120.gdp"
    base="no-ref-golden+no-ref-alt+no-upd-golden+no-upd-alt"
    extra=("temporal-scalability-layer-flags=<$base,$base+no-upd-last+no-upd-entropy>") ;;
  *) echo "usage: $0 [plain|layers]" >&2; exit 2 ;;
esac
gst-launch-1.0 -q -e \
  videotestsrc num-buffers=12 pattern=smpte horizontal-speed=4 \
  ! video/x-raw,width=160,height=120,framerate=30/1 \
  ! videoconvert \
  ! vp8enc deadline=1 cpu-used=8 end-usage=cbr target-bitrate=200000 keyframe-max-dist=5 \
      lag-in-frames=0 threads=1 error-resilient=default ${extra[@]+"${extra[@]}"} \
  ! gdppay ! fdsink fd=1 > "$out"
echo "wrote $out ($(stat -c %s "$out") bytes)"
