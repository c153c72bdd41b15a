// The frame protocol v1 (`/ws/<stream>`, docs/protocol.md): JSON text messages and one binary
// message per frame, the same bytes for every viewer but for the flags of replays and resumes.

import { FrameFlag, type HelloMessage, type SkippedMessage, type StateMessage, type ViewerStatsMessage } from "../../shared/protocol.js";
import type { Gap } from "./flow-control.js";
import type { FrameMessage } from "./frame-message.js";
import type { FrameRole, ViewerOutput } from "./output.js";
import type { Viewer } from "./viewer.js";
import type { WireMessage } from "./wire-message.js";

const ROLE_FLAGS: Record<FrameRole, number> = {
  live: 0,
  replay: FrameFlag.REPLAY,
  resync: FrameFlag.REPLAY | FrameFlag.DISCONTINUITY,
  resume: FrameFlag.DISCONTINUITY,
};

export class FrameOutput implements ViewerOutput {
  constructor(private readonly viewer: Viewer) {}

  greet(hello: HelloMessage, state: StateMessage): void {
    this.viewer.sendText(hello);
    this.viewer.sendText(state);
  }

  writeFrame(frame: FrameMessage, role: FrameRole, probe: WireMessage | null): boolean {
    this.viewer.sendWire(frame.withFlags(ROLE_FLAGS[role]), probe);
    return true;
  }

  gapEnded(gap: Gap): void {
    const notice: SkippedMessage = { type: "skipped", reason: gap.reason, frames: gap.frames, lagMs: gap.lagMs };
    this.viewer.sendText(notice);
  }

  state(message: StateMessage): void {
    this.viewer.sendText(message);
  }

  formatChanged(hello: HelloMessage): boolean {
    this.viewer.sendText(hello);
    return true;
  }

  stats(message: ViewerStatsMessage): void {
    this.viewer.sendText(message);
  }
}
