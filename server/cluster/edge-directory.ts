// An edge's list of streams: what the origins announce on NATS. A stream appears when an origin
// first announces it and follows that origin; when the origin is not heard for three announcement
// periods, or says goodbye, the stream follows another origin that announces it, or tells its
// viewers the origin is gone and waits for it to come back (they stay connected). A stream nobody
// has announced for a minute, and that nobody watches, is dropped from the list.

import type { Msg } from "@nats-io/transport-node";
import { wallClockMs, type Millis } from "../../shared/units.js";
import type { Logger } from "../log.js";
import type { EdgeStream } from "./edge-stream.js";
import type { LinkSubscription, NatsLink } from "./nats-link.js";
import { parseAnnouncement, type AnnounceMessage, type AnnouncedStream, type RelaySubjects } from "./relay-protocol.js";

export interface EdgeDirectoryOptions {
  readonly link: NatsLink;
  readonly subjects: RelaySubjects;
  readonly log: Logger;
  /** Where the streams served are kept, by name (the HTTP side and the metrics read it as it changes). */
  readonly streams: Map<string, EdgeStream>;
  /** Makes the edge's stream for what an origin announced. */
  readonly makeStream: (announced: AnnouncedStream, origin: string) => EdgeStream;
  /** An origin not heard for this many of its announcement periods is gone. */
  readonly missedAnnouncements?: number;
  /** A stream nobody announces and nobody watches is dropped after this long. */
  readonly forgetAfterMs?: number;
  readonly clock?: () => Millis;
}

interface HeardOrigin {
  lastHeardAt: Millis;
  intervalMs: number;
  streams: ReadonlyMap<string, AnnouncedStream>;
}

const WATCH_INTERVAL_MS = 250;
/** How long the origins' answers to a discover request take to come, at most, on a healthy cluster. */
const DISCOVER_WINDOW_MS = 300;
const DEFAULT_MISSED_ANNOUNCEMENTS = 3;
const DEFAULT_FORGET_AFTER_MS = 60_000;

export class EdgeDirectory {
  /** The streams served, by name (options.streams). */
  readonly streams: Map<string, EdgeStream>;
  private readonly origins = new Map<string, HeardOrigin>();
  /** Since when each stream has had no live origin. */
  private readonly orphanedAt = new Map<string, Millis>();
  private readonly warnedDuplicates = new Set<string>();
  private readonly subscriptions: LinkSubscription[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly stopListening: () => void;
  private readonly discoverInbox: string;
  private readonly clock: () => Millis;
  private closed = false;
  private readonly discovered: Promise<void>;
  private markDiscovered: () => void = () => undefined;

  constructor(private readonly options: EdgeDirectoryOptions) {
    this.discovered = new Promise((resolve) => (this.markDiscovered = resolve));
    this.streams = options.streams;
    const { link, subjects } = options;
    this.clock = options.clock ?? wallClockMs;
    this.discoverInbox = link.inbox();
    const onAnnouncement = (msg: Msg): void => this.onAnnouncement(msg);
    this.subscriptions.push(link.subscribe(subjects.announce, onAnnouncement), link.subscribe(this.discoverInbox, onAnnouncement));
    this.stopListening = link.onConnectedChange((connected) => {
      if (connected) {
        // Every origin answers at once: the list is complete, and streams that waited for their
        // origin resume, without waiting an announcement period.
        // Origins could not be heard while this edge was away: they get their periods again from now.
        const now = this.clock();
        for (const heard of this.origins.values()) heard.lastHeardAt = now;
        link.publish(subjects.discover, new Uint8Array(0), this.discoverInbox);
        setTimeout(() => this.markDiscovered(), DISCOVER_WINDOW_MS).unref();
      } else {
        for (const stream of this.streams.values()) stream.lost("this edge lost its connection to NATS; reconnecting");
      }
    });
    this.timer = setInterval(() => this.watch(), WATCH_INTERVAL_MS);
    this.timer.unref();
  }

  /**
   * Resolves once the origins have answered the first discover request, or after `timeoutMs`
   * (NATS unreachable): an edge that listens before would refuse viewers of streams it is about to list.
   */
  ready(timeoutMs: number): Promise<void> {
    return Promise.race([this.discovered, new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref())]);
  }

  /** Closes every stream (their viewers get 1001) and stops listening. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.stopListening();
    for (const sub of this.subscriptions) sub.unsubscribe();
    await Promise.all([...this.streams.values()].map((s) => s.close()));
    this.streams.clear();
  }

  private onAnnouncement(msg: Msg): void {
    if (this.closed) return;
    const message = parseAnnouncement(msg.data);
    if (message === null) {
      this.options.log.debug("NATS: malformed announcement ignored", { subject: msg.subject });
      return;
    }
    if (message.type === "bye") {
      this.options.log.info("origin said goodbye", { origin: message.origin });
      this.forgetOrigin(message.origin, `origin ${message.origin} stopped`);
      return;
    }
    this.heard(message);
  }

  private heard(message: AnnounceMessage): void {
    const now = this.clock();
    const origin = message.origin;
    const known = this.origins.get(origin);
    const streams = new Map(message.streams.map((s) => [s.name, s]));
    if (known === undefined) this.options.log.info("origin heard", { origin, streams: [...streams.keys()] });
    this.origins.set(origin, { lastHeardAt: now, intervalMs: message.intervalMs, streams });
    // Streams this origin had and no longer announces (it was restarted with another configuration).
    for (const name of known?.streams.keys() ?? []) {
      if (!streams.has(name) && this.streams.get(name)?.origin === origin) this.orphan(name, `origin ${origin} no longer has this stream`);
    }
    for (const announced of streams.values()) this.offer(announced, origin);
  }

  /** `origin` announces `announced`: the stream follows it if it has no origin, or follows this one. */
  private offer(announced: AnnouncedStream, origin: string): void {
    const name = announced.name;
    const existing = this.streams.get(name);
    if (existing === undefined) {
      this.streams.set(name, this.options.makeStream(announced, origin));
      this.orphanedAt.delete(name);
      return;
    }
    const followed = existing.origin;
    if (followed !== origin && this.origins.has(followed) && this.origins.get(followed)!.streams.has(name)) {
      const key = `${name}\n${origin}`;
      if (!this.warnedDuplicates.has(key)) {
        this.warnedDuplicates.add(key);
        this.options.log.warn("two origins announce one stream name: following the first", { code: "CC_WARN_DUPLICATE_STREAM", stream: name, following: followed, ignored: origin });
      }
      return;
    }
    if (!existing.sameEncodings(announced)) {
      // Another set of encodings: the stream is made anew, and its players reconnect to it.
      this.options.log.info("stream's encodings changed: serving it anew", { stream: name, origin });
      void existing.close();
      this.streams.set(name, this.options.makeStream(announced, origin));
    } else {
      existing.update(announced, origin);
    }
    this.orphanedAt.delete(name);
  }

  private watch(): void {
    const now = this.clock();
    // Disconnected, this edge hears no one: its viewers are told that, not that every origin is gone.
    if (!this.options.link.connected) return;
    const missed = this.options.missedAnnouncements ?? DEFAULT_MISSED_ANNOUNCEMENTS;
    for (const [origin, heard] of this.origins) {
      const silentMs = now - heard.lastHeardAt;
      if (silentMs > missed * heard.intervalMs) {
        this.options.log.warn("origin not heard: gone", { origin, silentMs: Math.round(silentMs) });
        this.forgetOrigin(origin, `origin ${origin} not heard from for ${Math.round(silentMs / 100) / 10} s`);
      }
    }
    const forgetAfter = this.options.forgetAfterMs ?? DEFAULT_FORGET_AFTER_MS;
    for (const [name, since] of this.orphanedAt) {
      const stream = this.streams.get(name);
      if (stream === undefined) {
        this.orphanedAt.delete(name);
      } else if (now - since > forgetAfter && stream.viewerCount === 0) {
        this.options.log.info("stream no origin announces dropped", { stream: name });
        this.orphanedAt.delete(name);
        this.streams.delete(name);
        void stream.close();
      }
    }
  }

  private forgetOrigin(origin: string, reason: string): void {
    this.origins.delete(origin);
    for (const [name, stream] of this.streams) if (stream.origin === origin) this.orphan(name, reason);
  }

  /** The stream's origin is gone: another that announces it takes over, or viewers are told and wait. */
  private orphan(name: string, reason: string): void {
    const stream = this.streams.get(name);
    if (stream === undefined) return;
    for (const [origin, heard] of this.origins) {
      const announced = heard.streams.get(name);
      if (origin !== stream.origin && announced !== undefined) {
        this.offer(announced, origin);
        return;
      }
    }
    stream.lost(reason);
    if (!this.orphanedAt.has(name)) this.orphanedAt.set(name, this.clock());
  }
}
