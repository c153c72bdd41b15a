// An edge's view of a stream's recording at its origin, over NATS (relay-protocol.ts): the list and
// pieces of segment files are asked of the origin; a seek asks the origin to play its recording to an inbox of this edge, and
// what comes there goes to the viewer as if played here. While it plays, the viewer's socket buffer
// is reported to the origin every STATUS_INTERVAL_MS (its pacing skips a slow viewer to a keyframe,
// as for its own viewers). The run ends when the origin says so, on stop(), or when the origin has
// sent nothing for SILENCE_MS (gone): the viewer goes back to live, which says what became of it.
// A recorded frame lost on the way makes the viewer skip to the next keyframe.

import type { RecordingInfo, RecordingsResponse } from "../../shared/api.js";
import { decodeBinaryMessage, FrameFlag } from "../../shared/protocol.js";
import { FrameMessage } from "../stream/frame-message.js";
import type { PlaybackEnd, PlaybackSink } from "../record/playback.js";
import type { PlaybackOpening, PlaybackRun, SegmentChunk, StreamRecording } from "../record/stream-recording.js";
import type { LinkSubscription, NatsLink } from "./nats-link.js";
import {
  SEGMENT_CHUNK_BYTES,
  classifyPlaybackMessage,
  encodeJson,
  parseRecordingsReply,
  parseSegmentReply,
  type PlaybackControlMessage,
  type RelaySubjects,
} from "./relay-protocol.js";

/** How long the origin has to answer a list or a seek. */
export const REQUEST_TIMEOUT_MS = 3000;
const STATUS_INTERVAL_MS = 500;
/** A run that heard nothing from its origin for this long has lost it. */
const SILENCE_MS = 5000;

export interface RemoteRecordingSource {
  readonly link: NatsLink;
  readonly subjects: RelaySubjects;
  /** The origin followed now. */
  origin(): string;
  /** What the origin last announced of the recording; null when it records nothing. */
  info(): RecordingInfo | null;
}

export class RemoteRecording implements StreamRecording {
  constructor(
    readonly stream: string,
    private readonly source: RemoteRecordingSource,
  ) {}

  info(): RecordingInfo {
    const info = this.source.info();
    if (info === null) throw new Error(`stream "${this.stream}" is not recorded`);
    return info;
  }

  async list(query: URLSearchParams): Promise<RecordingsResponse> {
    const answer = parseRecordingsReply(await this.ask(this.source.subjects.recordings(this.stream), { origin: this.source.origin(), query: query.toString() }));
    if (answer === null) throw new Error("the origin's answer was not a recordings list");
    if (answer.type === "refused") throw new Error(answer.message);
    return answer.body;
  }

  async readSegment(file: string, offset: number, length: number): Promise<SegmentChunk> {
    const reply = parseSegmentReply(
      await this.ask(this.source.subjects.segment(this.stream), { origin: this.source.origin(), file, offset, length: Math.min(length, SEGMENT_CHUNK_BYTES) }),
    );
    if (reply === null) throw new Error("the origin's answer was not a piece of the segment");
    const { head, bytes } = reply;
    return head.type === "refused" ? { ok: false, message: head.message } : { ok: true, size: head.size, mimeType: head.mimeType, finished: head.finished, bytes };
  }

  /** A request to the origin and its one reply (REQUEST_TIMEOUT_MS at most). */
  private ask(subject: string, request: object): Promise<Uint8Array> {
    const { link } = this.source;
    const inbox = link.inbox();
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        sub.unsubscribe();
        reject(new Error(`the origin did not answer within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      const sub = link.subscribe(inbox, (msg) => {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(msg.data);
      });
      link.publish(subject, encodeJson(request), inbox);
    });
  }

  open(at: number, sink: PlaybackSink, firstSeq: number): Promise<PlaybackOpening> {
    const { link, subjects } = this.source;
    const run = new RemoteRun(link, sink, firstSeq);
    link.publish(subjects.playback(this.stream), encodeJson({ origin: this.source.origin(), at, firstSeq }), run.inbox);
    return run.opened;
  }
}

type Classified = NonNullable<ReturnType<typeof classifyPlaybackMessage>>;

/** One run played by the origin to this edge's inbox. */
class RemoteRun implements PlaybackRun {
  readonly inbox: string;
  readonly opened: Promise<PlaybackOpening>;
  readonly ended: Promise<PlaybackEnd>;
  lastSentAt: number | null = null;
  private nextSeq: number;
  private readonly sub: LinkSubscription;
  private control: string | null = null;
  /** Until begin(): what the origin sent, held in order. */
  private held: { data: Uint8Array; message: Classified }[] | null = [];
  private statusTimer: NodeJS.Timeout | null = null;
  private silenceTimer: NodeJS.Timeout;
  private finish!: (end: PlaybackEnd) => void;
  private answer!: (opening: PlaybackOpening) => void;
  private done = false;
  /** A frame was lost: deltas are dropped until a keyframe. */
  private skipping = false;

  constructor(
    private readonly link: NatsLink,
    private readonly sink: PlaybackSink,
    private readonly firstSeq: number,
  ) {
    this.nextSeq = firstSeq;
    this.inbox = link.inbox();
    this.ended = new Promise((resolve) => (this.finish = resolve));
    this.opened = new Promise((resolve) => (this.answer = resolve));
    this.sub = link.subscribe(this.inbox, (msg) => this.receive(msg.data));
    this.silenceTimer = setTimeout(() => this.lost(), REQUEST_TIMEOUT_MS);
  }

  get seqRange(): { readonly first: number; readonly next: number } {
    return { first: this.firstSeq, next: this.nextSeq };
  }

  stop(): void {
    this.send({ type: "stop" });
    this.end({ reason: "stopped" });
  }

  private receive(data: Uint8Array): void {
    if (this.done) return;
    this.heard();
    const message = classifyPlaybackMessage(data);
    if (message?.kind === "opened") {
      const opened = message.opened;
      if (opened.type === "refused") {
        this.answer({ ok: false, error: opened.error, message: opened.message });
        this.end({ reason: "stopped" });
        return;
      }
      this.control = opened.control;
      this.answer({ ok: true, begin: () => this.begin(), cancel: () => this.stop() });
      return;
    }
    if (message === null) return;
    if (this.held !== null) {
      this.held.push({ data, message });
      return;
    }
    this.forward(data, message);
  }

  private begin(): PlaybackRun {
    const held = this.held ?? [];
    this.held = null;
    for (const { data, message } of held) this.forward(data, message);
    this.statusTimer = setInterval(() => this.send({ type: "status", buffered: this.sink.bufferedAmount }), STATUS_INTERVAL_MS);
    return this;
  }

  private forward(data: Uint8Array, message: Classified): void {
    if (this.done) return;
    if (message.kind === "ended") {
      this.end(message.ended.reason === "none" ? { reason: "none", message: message.ended.message ?? "nothing is recorded then or after" } : { reason: "end" });
    } else if (message.kind === "message") {
      this.sink.sendText(message.message);
    } else if (message.kind === "frame") {
      let decoded;
      try {
        decoded = decodeBinaryMessage(data);
      } catch {
        return;
      }
      if (decoded.kind !== "video") return;
      let header = decoded.header;
      const key = (header.flags & FrameFlag.KEYFRAME) !== 0;
      // A frame lost on the way (NATS dropped it, or it was above max_payload): skip to the next keyframe,
      // flagged discontinuity, as live frames do; no viewer gets a frame whose reference it was not sent.
      if (header.seq !== this.nextSeq && this.lastSentAt !== null) this.skipping = true;
      if (this.skipping) {
        if (!key) return;
        this.skipping = false;
        header = { ...header, flags: header.flags | FrameFlag.DISCONTINUITY };
      }
      this.sink.sendFrame(FrameMessage.encode(header, decoded.data));
      this.nextSeq = (header.seq + 1) >>> 0;
      this.lastSentAt = header.serverTime;
    }
  }

  private heard(): void {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => this.lost(), SILENCE_MS);
  }

  private lost(): void {
    if (this.control === null) {
      this.answer({ ok: false, error: "CC_ERR_RECORDING_UNREACHABLE", message: `the origin did not answer within ${REQUEST_TIMEOUT_MS} ms` });
      this.end({ reason: "stopped" });
      return;
    }
    this.end({ reason: "end" });
  }

  private send(message: PlaybackControlMessage): void {
    if (this.control !== null && !this.done) this.link.publish(this.control, encodeJson(message));
  }

  private end(end: PlaybackEnd): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.silenceTimer);
    if (this.statusTimer !== null) clearInterval(this.statusTimer);
    this.sub.unsubscribe();
    this.finish(end);
  }
}
