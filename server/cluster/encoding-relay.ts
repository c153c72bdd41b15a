// An edge's feed of one encoding of one stream from its origin over NATS. It subscribes only while
// the encoding has viewers (and `lingerMs` after the last leaves, so that a dashboard switching
// views does not resubscribe each time). On subscribing, or when the origin comes back, it asks the
// origin for its GOP cache and holds live frames until the reply, so that its viewers get the GOP
// at once, then every frame after it. Frames and messages of origins other than the one followed
// are ignored. Sequence numbers are the origin's; after a switch to another origin (a restarted
// one) they are shifted to continue one after the last, as a restarted pipeline's timestamps are.

import type { Msg } from "@nats-io/transport-node";
import type { RelayInfo } from "../../shared/api.js";
import { decodeBinaryMessage, type EncodingName, type HelloMessage, type StateMessage } from "../../shared/protocol.js";
import { wallClockMs, type Millis } from "../../shared/units.js";
import type { Logger } from "../log.js";
import type { NumberedFrame, StreamFanout } from "../stream/fanout.js";
import type { LinkSubscription, NatsLink } from "./nats-link.js";
import { classifyFramesMessage, encodeJson, parseGopHead, type GopHead, type RelaySubjects } from "./relay-protocol.js";

export interface RelayOptions {
  readonly link: NatsLink;
  readonly subjects: RelaySubjects;
  readonly log: Logger;
  /** How long the subscription stays after the last viewer left. */
  readonly lingerMs: number;
  /** How long to wait for the origin's GOP before going on with live frames alone. */
  readonly gopTimeoutMs: number;
  readonly clock?: () => Millis;
}

/** What came on the frames subject while waiting for the GOP, in order. */
type Pending = { readonly kind: "frame"; readonly frame: NumberedFrame } | { readonly kind: "hello"; readonly hello: HelloMessage } | { readonly kind: "state"; readonly state: StateMessage };

interface Join {
  readonly inbox: LinkSubscription;
  readonly timer: NodeJS.Timeout;
  readonly pending: Pending[];
}

/** Hop samples kept for the percentiles (a power of two). */
const HOP_SAMPLES = 1024;

export class EncodingRelay {
  private frames: LinkSubscription | null = null;
  private join: Join | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  /** Added to the origin's sequence numbers; set at the first frame of each origin followed. */
  private offset = 0;
  private offsetOrigin: string | null = null;
  /** The origin's sequence number of the last frame taken from it; null after (re)subscribing, and while joining. */
  private lastOriginSeq: number | null = null;
  /** While joining after frames were taken: the last one, to count those lost before the GOP. */
  private lossBase: number | null = null;
  private readonly hops = new Float64Array(HOP_SAMPLES);
  private hopCount = 0;
  private readonly clock: () => Millis;
  private closed = false;
  framesIn = 0;
  framesLost = 0;

  constructor(
    readonly stream: string,
    readonly encoding: EncodingName,
    private readonly fanout: StreamFanout,
    private origin: string,
    private readonly options: RelayOptions,
  ) {
    this.clock = options.clock ?? wallClockMs;
  }

  get subscribed(): boolean {
    return this.frames !== null;
  }

  /** The encoding's viewer count changed: subscribe for the first, unsubscribe a while after the last. */
  viewers(count: number): void {
    if (this.closed) return;
    if (count > 0) {
      if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
      if (this.frames === null) this.subscribe();
      return;
    }
    if (this.frames === null || this.lingerTimer !== null) return;
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = null;
      this.unsubscribe();
    }, this.options.lingerMs);
    this.lingerTimer.unref();
  }

  /** Follow another origin from now on (the one followed is gone, or restarted with a new id). */
  follow(origin: string): void {
    if (origin === this.origin) return;
    this.options.log.info("following another origin", { encoding: this.encoding, from: this.origin, to: origin });
    this.origin = origin;
    this.lastOriginSeq = null;
    this.fanout.discontinuity();
    if (this.frames !== null) this.requestGop();
  }

  /** The origin may have sent frames this edge missed (the edge reconnected, the origin is back): ask for its GOP again. */
  rejoin(): void {
    if (this.frames !== null && this.join === null) this.requestGop();
  }

  info(): RelayInfo {
    return {
      subscribed: this.frames !== null,
      framesIn: this.framesIn,
      framesLost: this.framesLost,
      hopMsP50: this.hopPercentile(0.5),
      hopMsP99: this.hopPercentile(0.99),
    };
  }

  /** Unsubscribes and stops its timers. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    this.unsubscribe();
  }

  private subscribe(): void {
    const { link, subjects } = this.options;
    this.lastOriginSeq = null;
    this.lossBase = null;
    this.frames = link.subscribe(subjects.framesOfAnyOrigin(this.stream, this.encoding), (msg) => this.onFramesMessage(msg));
    this.requestGop();
  }

  private unsubscribe(): void {
    this.endJoin();
    this.frames?.unsubscribe();
    this.frames = null;
    // What is cached now will be stale by the next subscription: a joiner then gets the origin's GOP.
    this.fanout.discontinuity();
  }

  private requestGop(): void {
    this.endJoin();
    // The GOP is taken whole, even frames already taken: their duplicates among the live frames are dropped after it.
    if (this.lastOriginSeq !== null) this.lossBase = this.lastOriginSeq;
    this.lastOriginSeq = null;
    const { link, subjects } = this.options;
    const origin = this.origin;
    const inboxSubject = link.inbox();
    let head: GopHead | null = null;
    const gop: NumberedFrame[] = [];
    const pending: Pending[] = [];
    const inbox = link.subscribe(inboxSubject, (msg) => {
      if (this.join?.inbox !== inbox) return;
      if (head === null) {
        head = parseGopHead(msg.data);
        if (head === null || head.origin !== origin) {
          head = null;
          return;
        }
        if (head.frames === 0) this.finishJoin(head, gop);
        return;
      }
      const frame = decodeFrame(msg.data);
      if (frame !== null) gop.push(frame);
      if (gop.length >= head.frames) this.finishJoin(head, gop);
    });
    const timer = setTimeout(() => {
      if (this.join?.inbox !== inbox) return;
      this.options.log.warn("no GOP from the origin in time: waiting for its next keyframe", { encoding: this.encoding, origin, timeoutMs: this.options.gopTimeoutMs });
      this.finishJoin(null, []);
    }, this.options.gopTimeoutMs);
    timer.unref();
    this.join = { inbox, timer, pending };
    link.publish(subjects.gop(this.stream, this.encoding), encodeJson({ origin }), inboxSubject);
  }

  /** The GOP came (or did not, `head` null): it goes to the viewers, then what came meanwhile. */
  private finishJoin(head: GopHead | null, gop: readonly NumberedFrame[]): void {
    const join = this.join;
    if (join === null) return;
    this.endJoin();
    if (head !== null) {
      this.applyHello(head.hello);
      this.applyState(head.state);
      this.fanout.prime(gop.flatMap((f) => this.take(f) ?? []));
    }
    for (const item of join.pending) this.apply(item, false);
  }

  private endJoin(): void {
    const join = this.join;
    if (join === null) return;
    this.join = null;
    clearTimeout(join.timer);
    join.inbox.unsubscribe();
  }

  private onFramesMessage(msg: Msg): void {
    if (this.options.subjects.originOfFrames(msg.subject) !== this.origin) return;
    const message = classifyFramesMessage(msg.data);
    let item: Pending | null = null;
    if (message === null) {
      this.options.log.debug("NATS: malformed message on a frames subject ignored", { subject: msg.subject });
    } else if (message.kind === "frame") {
      const frame = decodeFrame(msg.data);
      if (frame !== null) item = { kind: "frame", frame };
    } else {
      item = message;
    }
    if (item === null) return;
    if (this.join !== null) this.join.pending.push(item);
    else this.apply(item, true);
  }

  private apply(item: Pending, live: boolean): void {
    switch (item.kind) {
      case "hello":
        this.applyHello(item.hello);
        break;
      case "state":
        this.applyState(item.state);
        break;
      case "frame": {
        const frame = this.take(item.frame);
        if (frame === null) break;
        if (this.fanout.relay(frame) !== null && live) this.recordHop(frame.header.serverTime);
        break;
      }
    }
  }

  /** The frame as this edge numbers it (the origin's number, shifted after a change of origin), counting what was lost before it. */
  private take(frame: NumberedFrame): NumberedFrame | null {
    const originSeq = frame.header.seq;
    if (this.offsetOrigin !== this.origin) {
      const last = this.fanout.lastSeq;
      this.offset = last === null ? 0 : (last + 1 - originSeq) >>> 0;
      this.offsetOrigin = this.origin;
    }
    if (this.lastOriginSeq !== null) {
      const step = (originSeq - this.lastOriginSeq) >>> 0;
      if (step === 0 || step >= 0x8000_0000) return null; // already taken (the GOP and live frames overlap)
      this.framesLost += step - 1;
    } else if (this.lossBase !== null) {
      const step = (originSeq - this.lossBase) >>> 0;
      if (step > 1 && step < 0x8000_0000) this.framesLost += step - 1;
    }
    this.lossBase = null;
    this.lastOriginSeq = originSeq;
    this.framesIn++;
    return this.offset === 0 ? frame : { header: { ...frame.header, seq: (originSeq + this.offset) >>> 0 }, data: frame.data };
  }

  private applyHello(hello: HelloMessage): void {
    this.fanout.declareCodec(hello.codec);
    this.fanout.setVideoInfo({ width: hello.width, height: hello.height, framerate: hello.framerate });
  }

  private applyState(state: StateMessage): void {
    this.fanout.setState(state.state, state.reason, state.retryInMs);
  }

  private recordHop(serverTime: number): void {
    this.hops[this.hopCount % HOP_SAMPLES] = this.clock() - serverTime;
    this.hopCount++;
  }

  private hopPercentile(q: number): number | null {
    const n = Math.min(this.hopCount, HOP_SAMPLES);
    if (n === 0) return null;
    const sorted = Array.from(this.hops.subarray(0, n)).sort((a, b) => a - b);
    return Math.round(sorted[Math.min(n - 1, Math.floor(q * n))]! * 10) / 10;
  }
}

function decodeFrame(data: Uint8Array): NumberedFrame | null {
  try {
    const message = decodeBinaryMessage(data);
    return message.kind === "video" ? { header: message.header, data: message.data } : null;
  } catch {
    return null;
  }
}
