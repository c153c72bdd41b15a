// An origin's side of the relay: each encoding's frames, hello and state published once to NATS
// as the fan-out makes them (whoever watches here), its GOP cache sent to an edge that asks, and
// its streams announced every second (and to an edge that asks). With no edge listening the NATS
// server drops the frames at once; the origin's own viewers never wait for NATS.

import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Msg } from "@nats-io/transport-node";
import type { RecordingInfo } from "../../shared/api.js";
import type { Logger } from "../log.js";
import { NO_RECORDINGS, type RecordingLookup } from "../record/stream-recording.js";
import type { FanoutTap } from "../stream/fanout.js";
import type { ServedStream } from "../stream/served-stream.js";
import type { LinkSubscription, NatsLink } from "./nats-link.js";
import {
  ANNOUNCE_INTERVAL_MS,
  encodeJson,
  parseGopRequest,
  type AnnounceMessage,
  type AnnouncedStream,
  type ByeMessage,
  type GopHead,
  type RelaySubjects,
} from "./relay-protocol.js";

/** An id for this run of the process: its host, pid and a random part, as one NATS subject token. */
export function newOriginId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 32) || "host";
  return `${host}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

export class OriginPublisher {
  private readonly subscriptions: LinkSubscription[] = [];
  private readonly untaps: (() => void)[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly stopListening: () => void;
  private closed = false;
  /** Frames published, and GOP replies sent (for /api/streams and tests). */
  framesPublished = 0;
  gopReplies = 0;

  constructor(
    private readonly link: NatsLink,
    private readonly subjects: RelaySubjects,
    private readonly streams: ReadonlyMap<string, ServedStream>,
    readonly id: string,
    private readonly log: Logger,
    /** The recorded streams (their state is announced with them). */
    private readonly recordings: RecordingLookup = NO_RECORDINGS,
  ) {
    for (const stream of streams.values()) {
      for (const encoding of stream.encodings.values()) {
        const fanout = encoding.fanout;
        const subject = subjects.frames(stream.name, encoding.name, id);
        this.untaps.push(fanout.addTap(this.tapFor(subject)));
      }
    }
    this.subscriptions.push(link.subscribe(subjects.anyGop, (msg) => this.answerGop(msg)));
    this.subscriptions.push(
      link.subscribe(subjects.discover, (msg) => {
        if (msg.reply) link.publish(msg.reply, encodeJson(this.announcement()));
      }),
    );
    // At once on (re)connecting, so that edges learn of the streams without waiting a period.
    this.stopListening = link.onConnectedChange((connected) => {
      if (connected) this.announce();
    });
    this.timer = setInterval(() => this.announce(), ANNOUNCE_INTERVAL_MS);
    this.timer.unref();
  }

  /** What edges are told of the streams. */
  announcement(): AnnounceMessage {
    return { type: "announce", origin: this.id, intervalMs: ANNOUNCE_INTERVAL_MS, streams: [...this.streams.values()].map((s) => announced(s, this.recordings.get(s.name)?.info())) };
  }

  /** Says goodbye (edges stop waiting for this origin at once) and stops publishing. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.stopListening();
    const bye: ByeMessage = { type: "bye", origin: this.id };
    this.link.publish(this.subjects.announce, encodeJson(bye));
    for (const sub of this.subscriptions) sub.unsubscribe();
    for (const untap of this.untaps) untap();
  }

  private announce(): void {
    if (!this.closed) this.link.publish(this.subjects.announce, encodeJson(this.announcement()));
  }

  private tapFor(subject: string): FanoutTap {
    return {
      format: (hello) => this.link.publish(subject, encodeJson(hello)),
      state: (message) => this.link.publish(subject, encodeJson(message)),
      frame: (message) => {
        if (this.link.publish(subject, message.wire.payload())) this.framesPublished++;
      },
    };
  }

  /** An edge that subscribed asks for the GOP cache: hello, state and the frames, on its reply subject. */
  private answerGop(msg: Msg): void {
    const wanted = parseGopRequest(msg.data);
    const target = this.subjects.parseGop(msg.subject);
    if (wanted === null || target === null || !msg.reply) {
      this.log.debug("NATS: malformed GOP request ignored", { subject: msg.subject });
      return;
    }
    // Every origin hears every request: only the one asked answers.
    if (wanted.origin !== this.id) return;
    const fanout = this.streams.get(target.stream)?.encoding(target.encoding);
    if (fanout === undefined) return;
    const frames = fanout.gopSnapshot();
    const head: GopHead = { type: "gop", origin: this.id, frames: frames.length, hello: fanout.currentHello(), state: fanout.currentState() };
    this.link.publish(msg.reply, encodeJson(head));
    for (const frame of frames) this.link.publish(msg.reply, frame.wire.payload());
    this.gopReplies++;
  }
}

function announced(stream: ServedStream, recording: RecordingInfo | undefined): AnnouncedStream {
  const info = stream.info();
  const state = stream.fanout.currentState();
  return {
    name: stream.name,
    source: info.source,
    keyframeIntervalS: info.keyframeIntervalS,
    restarts: info.restarts,
    state: state.state,
    ...(state.reason !== undefined ? { reason: state.reason } : {}),
    ...(state.retryInMs !== undefined ? { retryInMs: state.retryInMs } : {}),
    encodings: [...stream.encodings.values()].map((e) => {
      const i = e.info();
      return { name: e.name, width: i.width, height: i.height, framerate: i.framerate, targetKbps: i.targetKbps, codec: e.fanout.codecString, fps: i.fps, kbps: i.kbps };
    }),
    ...(recording !== undefined ? { recording } : {}),
  };
}
