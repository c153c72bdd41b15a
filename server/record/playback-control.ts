// What one `/ws/` connection plays, live or recorded, and the messages that switch it: `seek`
// leaves the live fan-out for a run of the recording (playback.ts), `live` (or the end of the
// recording) comes back with the GOP replay. While it plays the recording, the connection's
// pause, resume and resync apply to the run, and acks of recorded frames are checked against
// what the runs sent (recorded frames are numbered on their own, from 0 on the connection).

import type { ClientMessage, PlaybackMessage } from "../../shared/protocol.js";
import type { Logger } from "../log.js";
import type { StreamFanout } from "../stream/fanout.js";
import type { Viewer } from "../stream/viewer.js";
import type { PlaybackEnd, PlaybackSink } from "./playback.js";
import type { PlaybackRun, StreamRecording } from "./stream-recording.js";

export class PlaybackControl {
  private run: PlaybackRun | null = null;
  /** Counts seeks: a seek answered after a later one was asked is dropped. */
  private seeks = 0;
  /** Recorded frames sent on this connection: sequence numbers [0, nextSeq). */
  private nextSeq = 0;
  /** Paused (hidden page) while playing the recording: where to go on from. */
  private pausedAt: number | null = null;
  private closed = false;

  constructor(
    private readonly viewer: Viewer,
    private readonly fanout: StreamFanout,
    /** The stream's recording; null when the stream is not recorded. */
    private readonly recording: StreamRecording | null,
    private readonly log: Logger,
  ) {}

  /** True while the connection plays the recording. */
  get recorded(): boolean {
    return this.run !== null || this.pausedAt !== null;
  }

  /** Handles `message` if it is this connection's to handle; false leaves it to the fan-out. */
  handle(message: ClientMessage): boolean {
    switch (message.type) {
      case "seek":
        this.seek(message.at);
        return true;
      case "live":
        this.toLive();
        return true;
      case "ack": {
        // Valid if it names a recorded frame sent on this connection, or (the fan-out checks) a live one.
        const sent = this.run?.seqRange.next ?? this.nextSeq;
        if (message.seq >= sent) return false;
        this.viewer.acks = true;
        return true;
      }
      case "pause":
        if (!this.recorded) return false;
        if (this.run !== null) {
          this.pausedAt = this.run.lastSentAt ?? this.pausedAt;
          this.stopRun();
        }
        return true;
      case "resume":
      case "resync":
        if (!this.recorded) return false;
        // From the last keyframe at or before the last frame shown.
        if (this.pausedAt !== null || this.run !== null) this.seek(this.run?.lastSentAt ?? this.pausedAt ?? Date.now());
        return true;
      case "clock":
        return false;
    }
  }

  /** Ends a run (the socket closed). Safe to call twice. */
  close(): void {
    this.closed = true;
    this.seeks++;
    this.stopRun();
  }

  private seek(at: number): void {
    if (this.recording === null) {
      this.tell({ type: "playback", mode: this.recorded ? "recorded" : "live", error: "CC_ERR_NOT_RECORDED", message: `stream "${this.fanout.name}" is not recorded` });
      return;
    }
    const seek = ++this.seeks;
    // Asked now: a second seek before the answer replaces this one.
    void this.recording.open(at, this.sink(), this.nextSeq).then(
      (opening) => {
        if (seek !== this.seeks) {
          if (opening.ok) opening.cancel();
          return;
        }
        if (!opening.ok) {
          this.tell({ type: "playback", mode: this.recorded ? "recorded" : "live", error: opening.error, message: opening.message });
          return;
        }
        this.stopRun();
        this.pausedAt = null;
        this.fanout.leaveLive(this.viewer);
        const run = opening.begin();
        this.run = run;
        void run.ended.then((end) => this.runEnded(run, end));
      },
      (err: unknown) => {
        this.log.warn("seek failed", { stream: this.fanout.name, error: (err as Error).message });
        if (seek === this.seeks) this.tell({ type: "playback", mode: this.recorded ? "recorded" : "live", error: "CC_ERR_RECORDING_UNREACHABLE", message: (err as Error).message });
      },
    );
  }

  private runEnded(run: PlaybackRun, end: PlaybackEnd): void {
    this.nextSeq = Math.max(this.nextSeq, run.seqRange.next);
    if (this.run !== run || this.closed) return;
    this.run = null;
    if (end.reason === "stopped") return;
    if (end.reason === "none") {
      this.tell({ type: "playback", mode: "live", error: "CC_ERR_NO_RECORDING", message: end.message });
    } else {
      this.tell({ type: "playback", mode: "live" });
    }
    this.fanout.returnToLive(this.viewer);
  }

  private toLive(): void {
    this.seeks++; // a seek still unanswered is dropped
    if (!this.recorded) return;
    this.stopRun();
    this.pausedAt = null;
    this.tell({ type: "playback", mode: "live" });
    this.fanout.returnToLive(this.viewer);
  }

  private stopRun(): void {
    const run = this.run;
    if (run === null) return;
    this.run = null;
    run.stop();
    this.nextSeq = Math.max(this.nextSeq, run.seqRange.next);
  }

  private tell(message: PlaybackMessage): void {
    this.viewer.sendText(message);
  }

  private sink(): PlaybackSink {
    const viewer = this.viewer;
    return {
      sendText: (message) => viewer.sendText(message),
      sendFrame: (frame) => {
        if (!viewer.open) return;
        viewer.socket.sendWire(frame.wire);
        viewer.framesSent++;
        viewer.bytesSent += frame.byteLength;
      },
      get bufferedAmount() {
        return viewer.socket.bufferedAmount;
      },
    };
  }
}
