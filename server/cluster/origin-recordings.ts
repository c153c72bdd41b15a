// An origin's recordings, for its edges: it answers a recordings request with what its HTTP API
// would, and plays a recording to an edge's viewer on the subject the edge gave (the run is this
// server's own Playback, paced here; the edge reports its viewer's socket buffer every 500 ms, so a
// slow viewer skips to a keyframe as it would here). A run whose edge is not heard from for
// PLAYBACK_SILENCE_MS (an edge gone) is stopped. An edge serving a segment file reads it from here in chunks.

import type { Msg } from "@nats-io/transport-node";
import type { Logger } from "../log.js";
import type { PlaybackRun, RecordingLookup } from "../record/stream-recording.js";
import type { LinkSubscription, NatsLink } from "./nats-link.js";
import {
  encodeJson,
  encodeSegmentReply,
  parsePlaybackControl,
  parseSegmentRequest,
  parsePlaybackRequest,
  parseRecordingsRequest,
  type PlaybackEnded,
  type PlaybackOpened,
  type RecordingsReply,
  type RelaySubjects,
} from "./relay-protocol.js";

/** A run whose edge said nothing for this long is stopped. */
export const PLAYBACK_SILENCE_MS = 3000;

interface RemoteRun {
  readonly run: PlaybackRun;
  readonly control: LinkSubscription;
  heardAt: number;
  buffered: number;
}

export class OriginRecordings {
  private readonly subscriptions: LinkSubscription[];
  private readonly runs = new Set<RemoteRun>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly link: NatsLink,
    private readonly subjects: RelaySubjects,
    private readonly recordings: RecordingLookup,
    private readonly id: string,
    private readonly log: Logger,
  ) {
    this.subscriptions = [
      link.subscribe(subjects.anyRecordings, (msg) => void this.answerList(msg)),
      link.subscribe(subjects.anyPlayback, (msg) => void this.play(msg)),
      link.subscribe(subjects.anySegment, (msg) => void this.answerSegment(msg)),
    ];
    this.timer = setInterval(() => this.dropSilent(), 1000);
    this.timer.unref();
  }

  /** Runs playing to edges now. */
  get playing(): number {
    return this.runs.size;
  }

  /** Stops every run and answers nothing more. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const sub of this.subscriptions) sub.unsubscribe();
    for (const r of [...this.runs]) this.end(r);
  }

  private async answerList(msg: Msg): Promise<void> {
    const request = parseRecordingsRequest(msg.data);
    const stream = this.subjects.streamOf(msg.subject);
    if (request === null || stream === null || !msg.reply) return void this.log.debug("NATS: malformed recordings request ignored", { subject: msg.subject });
    // Every origin hears every request: only the one asked answers.
    if (request.origin !== this.id) return;
    const recording = this.recordings.get(stream);
    const reply: RecordingsReply =
      recording === undefined
        ? { type: "refused", error: "CC_ERR_NOT_RECORDED", message: `stream "${stream}" is not recorded` }
        : { type: "recordings", body: await recording.list(new URLSearchParams(request.query)) };
    this.link.publish(msg.reply, encodeJson(reply));
  }

  /** A piece of a segment file (an edge serving GET /recordings/…): its size and type, and the bytes asked for. */
  private async answerSegment(msg: Msg): Promise<void> {
    const request = parseSegmentRequest(msg.data);
    const stream = this.subjects.streamOf(msg.subject);
    if (request === null || stream === null || !msg.reply) return void this.log.debug("NATS: malformed segment request ignored", { subject: msg.subject });
    if (request.origin !== this.id) return;
    const chunk = (await this.recordings.get(stream)?.readSegment(request.file, request.offset, request.length)) ?? {
      ok: false,
      message: `stream "${stream}" is not recorded`,
    };
    const reply = chunk.ok
      ? encodeSegmentReply({ type: "chunk", size: chunk.size, mimeType: chunk.mimeType, finished: chunk.finished, offset: request.offset }, chunk.bytes)
      : encodeSegmentReply({ type: "refused", error: "CC_ERR_NO_SEGMENT", message: chunk.message });
    this.link.publish(msg.reply, reply);
  }

  private async play(msg: Msg): Promise<void> {
    const request = parsePlaybackRequest(msg.data);
    const stream = this.subjects.streamOf(msg.subject);
    const to = msg.reply;
    if (request === null || stream === null || !to) return void this.log.debug("NATS: malformed playback request ignored", { subject: msg.subject });
    if (request.origin !== this.id || this.closed) return;
    const recording = this.recordings.get(stream);
    if (recording === undefined) {
      const refused: PlaybackOpened = { type: "refused", error: "CC_ERR_NOT_RECORDED", message: `stream "${stream}" is not recorded` };
      this.link.publish(to, encodeJson(refused));
      return;
    }
    let state: RemoteRun | null = null;
    const opening = await recording.open(
      request.at,
      {
        sendText: (message) => this.link.publish(to, encodeJson(message)),
        sendFrame: (frame) => this.link.publish(to, frame.wire.payload()),
        get bufferedAmount() {
          return state?.buffered ?? 0;
        },
      },
      request.firstSeq,
    );
    if (!opening.ok) {
      const refused: PlaybackOpened = { type: "refused", error: opening.error, message: opening.message };
      this.link.publish(to, encodeJson(refused));
      return;
    }
    if (this.closed) return opening.cancel();
    const controlSubject = this.link.inbox();
    const control = this.link.subscribe(controlSubject, (m) => {
      const message = parsePlaybackControl(m.data);
      if (message === null || state === null) return;
      state.heardAt = Date.now();
      if (message.type === "status") state.buffered = message.buffered;
      else this.end(state);
    });
    const opened: PlaybackOpened = { type: "opened", control: controlSubject };
    this.link.publish(to, encodeJson(opened));
    const run = opening.begin();
    const remote: RemoteRun = { run, control, heardAt: Date.now(), buffered: 0 };
    state = remote;
    this.runs.add(remote);
    void run.ended.then((end) => {
      if (!this.runs.has(remote)) return;
      this.end(remote);
      if (end.reason === "stopped") return;
      const ended: PlaybackEnded = end.reason === "none" ? { type: "ended", reason: "none", message: end.message } : { type: "ended", reason: "end" };
      this.link.publish(to, encodeJson(ended));
    });
  }

  private end(remote: RemoteRun): void {
    if (!this.runs.delete(remote)) return;
    remote.control.unsubscribe();
    remote.run.stop();
  }

  private dropSilent(): void {
    const now = Date.now();
    for (const r of [...this.runs]) {
      if (now - r.heardAt > PLAYBACK_SILENCE_MS) {
        this.log.info("an edge's playback stopped: its edge is silent", { silentMs: now - r.heardAt });
        this.end(r);
      }
    }
  }
}
