// An edge's stream: the encodings an origin announced, each a fan-out fed over NATS by its relay,
// with the same viewers, flow control, GOP replay and MSE outputs as a stream of the origin's own.
// Its state is the origin's; when the edge cannot hear the origin (it is gone, or the edge lost
// NATS) it says so, and takes the origin's state again as soon as it hears it.

import type { EncodingInfo, RecordingInfo, StreamInfo } from "../../shared/api.js";
import type { EncodingName, StreamState } from "../../shared/protocol.js";
import type { Logger } from "../log.js";
import { StreamFanout, type FanoutOptions } from "../stream/fanout.js";
import { describeStream, StreamEncoding, type ServedStream } from "../stream/served-stream.js";
import { EncodingRelay, type RelayOptions } from "./encoding-relay.js";
import type { AnnouncedStream } from "./relay-protocol.js";
import { RemoteRecording } from "./remote-recording.js";

export interface EdgeStreamOptions {
  readonly relay: Omit<RelayOptions, "log">;
  readonly log: Logger;
  readonly fanout?: FanoutOptions;
  /** The callback each encoding's fan-out calls with a viewer's delivery delay (the metrics' lag histogram). */
  readonly viewerLagObserver?: (encoding: EncodingName) => (lagMs: number) => void;
}

export class EdgeStream implements ServedStream {
  readonly encodings: ReadonlyMap<EncodingName, StreamEncoding>;
  readonly fanout: StreamFanout;
  private readonly relays = new Map<EncodingName, EncodingRelay>();
  private announced: AnnouncedStream;
  private originId: string;
  /** Why the edge cannot hear the origin, while it cannot. */
  private fault: string | null = null;
  private closed = false;
  private readonly remoteRecording: RemoteRecording;

  constructor(announced: AnnouncedStream, origin: string, options: EdgeStreamOptions) {
    this.announced = announced;
    this.originId = origin;
    const log = options.log.child({ stream: announced.name });
    let viewerIds = 1;
    const encodings = new Map<EncodingName, StreamEncoding>();
    for (const e of announced.encodings) {
      const observer = options.viewerLagObserver?.(e.name) ?? options.fanout?.onViewerLag;
      let relay: EncodingRelay | null = null;
      const fanout = new StreamFanout(announced.name, { width: e.width, height: e.height, framerate: e.framerate }, {
        ...options.fanout,
        codec: e.codec,
        encoding: e.name,
        nextViewerId: () => viewerIds++,
        ...(observer ? { onViewerLag: observer } : {}),
        onViewerCount: (n) => relay?.viewers(n),
        onSlowViewerClosed: (viewer) => {
          log.warn("viewer closed: too slow", { viewer: viewer.id, mode: viewer.mode, encoding: e.name, remote: viewer.remote });
          options.fanout?.onSlowViewerClosed?.(viewer);
        },
      });
      relay = new EncodingRelay(announced.name, e.name, fanout, origin, { ...options.relay, log });
      this.relays.set(e.name, relay);
      encodings.set(e.name, new StreamEncoding(e.name, { width: e.width, height: e.height, framerate: e.framerate }, e.targetKbps, fanout, relay));
    }
    this.encodings = encodings;
    this.fanout = encodings.get("full")!.fanout;
    this.remoteRecording = new RemoteRecording(announced.name, {
      link: options.relay.link,
      subjects: options.relay.subjects,
      origin: () => this.originId,
      info: () => (this.announced.recording as RecordingInfo | undefined) ?? null,
    });
    this.applyAnnounced(true);
  }

  /** The origin's recording of the stream, played through this edge; null when the origin records none. */
  get recording(): RemoteRecording | null {
    return this.announced.recording === undefined ? null : this.remoteRecording;
  }

  get name(): string {
    return this.announced.name;
  }

  /** The origin followed. */
  get origin(): string {
    return this.originId;
  }

  get restarts(): number {
    return this.announced.restarts;
  }

  encoding(name: EncodingName): StreamFanout | undefined {
    return this.encodings.get(name)?.fanout;
  }

  get viewerCount(): number {
    let n = 0;
    for (const e of this.encodings.values()) n += e.fanout.viewerCount();
    return n;
  }

  /** Whether `announced` has the same encodings (names) as this stream: otherwise the stream is made anew. */
  sameEncodings(announced: AnnouncedStream): boolean {
    const names = announced.encodings.map((e) => e.name);
    return names.length === this.encodings.size && names.every((n) => this.encodings.has(n));
  }

  /** What `origin` announced of the stream now (the origin followed, or one that takes over from it). */
  update(announced: AnnouncedStream, origin: string): void {
    if (this.closed) return;
    this.announced = announced;
    const back = this.fault !== null;
    this.fault = null;
    if (origin !== this.originId) {
      this.originId = origin;
      for (const relay of this.relays.values()) relay.follow(origin);
    } else if (back) {
      // The origin may have sent frames the edge missed: its GOP gives the viewers a keyframe at once.
      for (const relay of this.relays.values()) relay.rejoin();
    }
    this.applyAnnounced(back);
  }

  /** The edge cannot hear the origin: viewers are told why, and wait. */
  lost(reason: string): void {
    if (this.closed || this.fault === reason) return;
    this.fault = reason;
    for (const e of this.encodings.values()) {
      const was = e.fanout.state;
      const state: StreamState = was === "live" || was === "restarting" ? "restarting" : "offline";
      e.fanout.setState(state, reason);
    }
  }

  info(): StreamInfo {
    const byName = new Map(this.announced.encodings.map((e) => [e.name, e]));
    const encodings: EncodingInfo[] = [...this.encodings.values()].map((e) => {
      const relay = this.relays.get(e.name)!;
      const own = e.info();
      const announced = byName.get(e.name);
      // Not subscribed, it measures nothing itself: the origin's figures.
      const rates = relay.subscribed || announced === undefined ? {} : { fps: announced.fps, kbps: announced.kbps };
      return { ...own, ...rates };
    });
    return describeStream(
      this,
      { source: this.announced.source, keyframeIntervalS: this.announced.keyframeIntervalS, restarts: this.announced.restarts, origin: this.originId },
      encodings,
    );
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const relay of this.relays.values()) relay.close();
    for (const e of this.encodings.values()) e.fanout.close();
    return Promise.resolve();
  }

  /**
   * The announced state, size and codec, for encodings not subscribed (a subscribed one hears them
   * in order with its frames), and for all when `all` (first sight, or heard again after a fault).
   */
  private applyAnnounced(all: boolean): void {
    const a = this.announced;
    for (const e of a.encodings) {
      const relay = this.relays.get(e.name);
      const fanout = this.encodings.get(e.name)?.fanout;
      if (relay === undefined || fanout === undefined || (relay.subscribed && !all)) continue;
      if (!relay.subscribed) {
        fanout.declareCodec(e.codec);
        fanout.setVideoInfo({ width: e.width, height: e.height, framerate: e.framerate });
      }
      fanout.setState(a.state, a.reason, a.retryInMs);
    }
  }
}
