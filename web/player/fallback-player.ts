// The `auto` player: WebCodecs first; when the browser's VideoDecoder cannot decode the stream's
// codec (isConfigSupported, CC_ERR_CODEC_UNSUPPORTED) but its MSE can play it
// (MediaSource.isTypeSupported for the codec's type, shared/mse.ts), the same player object goes
// on through MSE: it reports the error as non-fatal, naming the codec, and its owner (playStream,
// <canvas-cast>) swaps the canvas for a <video> on the codec's MSE path. When neither can play the
// codec the error stays fatal and the state `unsupported`.

import type { Encoding, PauseReason, Player, PlayerStatsSnapshot, PlayerThread } from "./api.js";
import { mseFormatOf, type MseContainer } from "../../shared/mse.js";
import { PlayerError } from "./errors.js";
import { mseTypeSupported } from "./mse-sink.js";
import { PlayerBase } from "./player-base.js";

/** Makes the MSE player on the container's path (and the <video> it plays into). */
export type MseFallback = (container: MseContainer) => Player;

export class FallbackPlayer extends PlayerBase {
  #inner: Player;
  readonly #toMse: MseFallback;
  #unlisten: (() => void)[] = [];
  /** Moving to MSE: the WebCodecs player's last states are not reported. */
  #moving = false;
  #userPaused = false;
  #askedEncoding: Encoding | undefined;

  constructor(first: Player, toMse: MseFallback) {
    super(first.reason);
    this.#inner = first;
    this.#toMse = toMse;
    this.#listen(first);
    this.setState(first.state, first.reason, first.retryAt);
  }

  get url(): string {
    return this.#inner.url;
  }
  get thread(): PlayerThread {
    return this.#inner.thread;
  }
  get mode(): "webcodecs" | "mse" {
    return this.#inner.mode;
  }
  get encoding(): Encoding {
    return this.#inner.encoding;
  }
  get pausedFor(): readonly PauseReason[] {
    return this.#inner.pausedFor;
  }

  stats(): PlayerStatsSnapshot {
    return this.#inner.stats();
  }
  snapshot(): Promise<Blob> {
    return this.#inner.snapshot();
  }
  setEncoding(encoding: Encoding): void {
    this.#askedEncoding = encoding;
    this.#inner.setEncoding(encoding);
  }
  pause(): void {
    this.#userPaused = true;
    this.#inner.pause();
  }
  resume(): void {
    this.#userPaused = false;
    this.#inner.resume();
  }
  seek(at: Date | number): void {
    this.#inner.seek(at);
  }
  live(): void {
    this.#inner.live();
  }

  protected override teardown(): void {
    for (const off of this.#unlisten.splice(0)) off();
    this.#inner.close();
  }

  #listen(inner: Player): void {
    this.#unlisten = [
      inner.on("state", (change) => {
        if (!this.#moving && change.state !== "closed") this.setState(change.state, change.reason, change.retryAt);
      }),
      inner.on("stats", (stats) => this.emit("stats", stats)),
      inner.on("hello", (hello) => {
        this.setHello(hello);
        this.emit("hello", hello);
      }),
      inner.on("skipped", (message) => this.emit("skipped", message)),
      inner.on("playback", (change) => this.setPlayback(change)),
      inner.on("error", (err) => this.#onError(inner, err)),
    ];
  }

  #onError(inner: Player, err: PlayerError): void {
    const codec = inner.hello?.codec;
    const format = codec === undefined ? null : mseFormatOf(codec);
    if (err.code !== "CC_ERR_CODEC_UNSUPPORTED" || inner.mode !== "webcodecs" || this.#moving || format === null || !mseTypeSupported(format.mimeType)) {
      this.emit("error", err);
      return;
    }
    this.#moving = true;
    this.emit("error", new PlayerError(err.code, `${err.message} with WebCodecs: playing it through MSE (${format.mimeType})`, false, { cause: err }));
    // Not from inside the WebCodecs player's own callback: it closes once that has returned.
    queueMicrotask(() => {
      if (this.state === "closed" || this.#inner !== inner) return;
      for (const off of this.#unlisten.splice(0)) off();
      inner.close();
      const next = this.#toMse(format.container);
      this.#inner = next;
      this.#moving = false;
      this.#listen(next);
      if (this.#askedEncoding !== undefined) next.setEncoding(this.#askedEncoding);
      if (this.#userPaused) next.pause();
      this.setState(next.state, next.reason, next.retryAt);
    });
  }
}
