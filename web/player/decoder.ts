// Wraps WebCodecs `VideoDecoder` for a live stream of the codec hello names: a support check
// before configuring (VideoDecoder.isConfigSupported), keyframe gating, recovery after errors, a
// generation counter so output from before a reset is dropped, and every VideoFrame either handed
// on or closed.

import type { VideoFrameHeader } from "../../shared/protocol.js";
import { isKeyframe, isRecorded, isReplay } from "../../shared/protocol.js";
import type { Micros, Millis } from "../../shared/units.js";
import { PlayerError } from "./errors.js";

/** What we know about a decoded frame, matched to it through the chunk timestamp. */
export interface FrameMeta {
  readonly seq: number;
  readonly serverTime: Millis;
  /** The pipeline's presentation timestamp (its running time at capture), µs. */
  readonly pts: Micros;
  readonly replay: boolean;
  /** From the stream's recording: `serverTime` is when it was recorded. */
  readonly recorded: boolean;
  readonly keyframe: boolean;
  /** `performance.now()` when the message arrived. */
  readonly receivedAt: number;
  /** True if no newer chunk had been submitted when this frame came out of the decoder. */
  readonly newest: boolean;
}

export interface DecoderCallbacks {
  /** Takes ownership of `frame`: the callee must close it. */
  onFrame(frame: VideoFrame, meta: FrameMeta): void;
  onError(error: PlayerError): void;
}

export interface DecoderCounters {
  /** Frames that came out of the decoder and were handed on. */
  decoded: number;
  /** Chunks not decoded: delta frames while waiting for a keyframe, backlog, frames before configure. */
  dropped: number;
  /** Decoder output from before a reset, closed unseen. */
  stale: number;
  errors: number;
}

export interface DecoderSize {
  readonly width: number;
  readonly height: number;
}

/** What hello says the frames are: the WebCodecs codec string and the picture size. */
export interface DecoderFormat extends DecoderSize {
  readonly codec: string;
}

/** A frame that came while the codec's support was being checked, decoded once it is known. */
interface HeldFrame {
  readonly header: VideoFrameHeader;
  readonly data: Uint8Array;
  readonly receivedAt: number;
}

/** The codec a decoder is prepared with before hello: the one most streams use. */
const PREPARED_CODEC = "vp8";
/** Frames held while a support check runs (a replayed GOP); more, and the rest wait for a keyframe. */
const MAX_HELD = 600;

interface PendingMeta {
  readonly generation: number;
  readonly seq: number;
  readonly serverTime: Millis;
  /** The pipeline's presentation timestamp (its running time at capture), µs. */
  readonly pts: Micros;
  readonly replay: boolean;
  /** From the stream's recording: `serverTime` is when it was recorded. */
  readonly recorded: boolean;
  readonly keyframe: boolean;
  readonly receivedAt: number;
}

/** At most this many chunks waiting for output are remembered; older entries are forgotten. */
const MAX_PENDING = 120;
/** With more than this many chunks queued in the decoder, delta frames are dropped until a keyframe. */
const MAX_DECODE_QUEUE = 60;

export function webCodecsAvailable(): boolean {
  return typeof globalThis.VideoDecoder === "function" && typeof globalThis.EncodedVideoChunk === "function";
}

/** Answers per codec string, shared by every decoder of the page (or worker). */
const support = new Map<string, Promise<boolean>>();

/** Whether this browser decodes `codec` (VideoDecoder.isConfigSupported, asked once per codec string). */
export function codecSupported(codec: string): Promise<boolean> {
  let answer = support.get(codec);
  if (answer === undefined) {
    answer = Promise.resolve(decoderConfig(codec)).then((config) => VideoDecoder.isConfigSupported(config)).then(
      (result) => result.supported === true,
      () => false, // a TypeError: not even a valid codec string
    );
    support.set(codec, answer);
  }
  return answer;
}

export function decoderConfig(codec: string, size?: DecoderSize): VideoDecoderConfig {
  return {
    codec,
    ...(size === undefined ? {} : { codedWidth: size.width, codedHeight: size.height }),
    optimizeForLatency: true,
    colorSpace: { primaries: "smpte170m", transfer: "smpte170m", matrix: "smpte170m", fullRange: false },
  };
}

export class FrameDecoder {
  readonly counters: DecoderCounters = { decoded: 0, dropped: 0, stale: 0, errors: 0 };
  readonly #callbacks: DecoderCallbacks;
  #decoder: VideoDecoder | undefined;
  #size: DecoderSize | undefined;
  /** The codec hello named; the decoder is configured for it once its support is known. */
  #codec = PREPARED_CODEC;
  /** The codec whose support check is under way; frames meanwhile are held. */
  #checking: string | undefined;
  #held: HeldFrame[] = [];
  #generation = 0;
  #waitingForKeyframe = true;
  /** Set by the error callback; the decoder is rebuilt when the next keyframe arrives. */
  #needsRestart = false;
  #fatal = false;
  /** Configured by prepare(), without a size. */
  #prepared = false;
  #closed = false;
  /** Chunk timestamps are our own counter, so they are unique across pipeline restarts and resets. */
  #nextTimestamp = 0;
  #lastSubmitted = -1;
  readonly #pending = new Map<number, PendingMeta>();

  constructor(callbacks: DecoderCallbacks) {
    this.#callbacks = callbacks;
  }

  get size(): DecoderSize | undefined {
    return this.#size;
  }

  get waitingForKeyframe(): boolean {
    return this.#waitingForKeyframe;
  }

  /**
   * Configures for a stream of this codec and size. Another codec is first checked
   * (isConfigSupported: frames meanwhile are held, an unsupported one is a fatal
   * CC_ERR_CODEC_UNSUPPORTED); a different size (or a first call) resets and reconfigures the
   * decoder; the same codec and size only wait for the next keyframe.
   */
  configure(format: DecoderFormat): void {
    if (this.#closed) return;
    const sameCodec = format.codec === this.#codec;
    const same = sameCodec && this.#size !== undefined && this.#size.width === format.width && this.#size.height === format.height;
    this.#size = { width: format.width, height: format.height };
    if (!sameCodec) {
      this.#codec = format.codec;
      this.#fatal = false;
      this.#prepared = false;
      this.#closeDecoder();
      this.#check(format.codec, true);
      return;
    }
    if (this.#checking !== undefined) return; // the check's answer configures
    // A decoder prepared before hello (no size) keeps going: VP8 keyframes carry their size.
    if ((same || this.#prepared) && this.#decoder !== undefined && this.#decoder.state === "configured" && !this.#needsRestart) {
      this.waitForKeyframe();
      return;
    }
    this.#fatal = false;
    this.#restart();
  }

  /**
   * Asks whether the browser decodes `codec`. `hold`: frames are held until the answer, then
   * decoded on a decoder configured for it; otherwise (a decoder already configured, prepared
   * before hello) only an unsupported answer acts.
   */
  #check(codec: string, hold: boolean): void {
    if (hold) {
      this.#checking = codec;
      this.#held = [];
    }
    void codecSupported(codec).then((supported) => {
      if (this.#closed || codec !== this.#codec) return; // another hello since
      if (hold) this.#checking = undefined;
      const held = this.#held;
      this.#held = [];
      if (!supported) {
        this.#fatal = true;
        this.counters.errors++;
        this.counters.dropped += held.length;
        this.#closeDecoder();
        this.#callbacks.onError(new PlayerError("CC_ERR_CODEC_UNSUPPORTED", `this browser cannot decode ${codec}`, true));
        return;
      }
      if (!hold) return;
      this.#restart();
      for (const frame of held) this.decode(frame.header, frame.data, frame.receivedAt);
    });
  }

  /**
   * Builds and configures the VideoDecoder now, before the stream's size is known, so that its
   * start overlaps the socket's: hello then only records the size.
   */
  prepare(): void {
    if (this.#closed || this.#fatal || this.#decoder !== undefined || this.#codec !== PREPARED_CODEC) return;
    this.#prepared = true;
    this.#restart(true);
    // Not waited for: VP8 decodes wherever VideoDecoder exists; the answer only confirms it.
    this.#check(PREPARED_CODEC, false);
  }

  /** Drops delta frames until the next keyframe (e.g. on a new connection). */
  waitForKeyframe(): void {
    this.#waitingForKeyframe = true;
  }

  decode(header: VideoFrameHeader, data: Uint8Array, receivedAt: number): void {
    if (this.#closed) return;
    const keyframe = isKeyframe(header);
    if (this.#checking !== undefined && !this.#fatal) {
      // Held from a keyframe on, until the support check answers.
      if ((keyframe || this.#held.length > 0) && this.#held.length < MAX_HELD) this.#held.push({ header, data, receivedAt });
      else this.counters.dropped++;
      return;
    }
    if (this.#size === undefined || this.#fatal) {
      this.counters.dropped++;
      return;
    }
    if (!keyframe && (this.#waitingForKeyframe || this.#needsRestart)) {
      this.counters.dropped++;
      return;
    }
    if (keyframe && (this.#needsRestart || this.#decoder === undefined || this.#decoder.state === "closed")) {
      this.#restart();
    }
    const decoder = this.#decoder;
    if (decoder === undefined || decoder.state !== "configured") {
      this.counters.dropped++;
      return;
    }
    if (!keyframe && decoder.decodeQueueSize > MAX_DECODE_QUEUE) {
      // The decoder cannot keep up: skip to the next keyframe rather than fall further behind.
      this.counters.dropped++;
      this.#waitingForKeyframe = true;
      return;
    }

    const timestamp = this.#nextTimestamp++;
    this.#pending.set(timestamp, {
      generation: this.#generation,
      seq: header.seq,
      serverTime: header.serverTime,
      pts: header.pts,
      replay: isReplay(header),
      recorded: isRecorded(header),
      keyframe,
      receivedAt,
    });
    if (this.#pending.size > MAX_PENDING) {
      const oldest = this.#pending.keys().next();
      if (oldest.done !== true) this.#pending.delete(oldest.value);
    }
    try {
      decoder.decode(new EncodedVideoChunk({ type: keyframe ? "key" : "delta", timestamp, data }));
      this.#lastSubmitted = timestamp;
      if (keyframe) this.#waitingForKeyframe = false;
    } catch (err) {
      // decode() throws synchronously for a delta frame after configure/reset, or when closed.
      this.#pending.delete(timestamp);
      this.#onDecoderError(err);
    }
  }

  /**
   * Releases the underlying VideoDecoder (e.g. while the page is hidden: Chrome may reclaim codecs
   * in background tabs) and drops its pending output. The decoder stays usable: the next
   * `configure()`, or the next keyframe, builds a new one.
   */
  suspend(): void {
    if (this.#closed) return;
    this.#generation++;
    this.#pending.clear();
    this.#waitingForKeyframe = true;
    this.#closeDecoder();
  }

  /** Closes the decoder; pending output is dropped. Safe to call more than once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#generation++;
    this.#pending.clear();
    this.#held = [];
    this.#closeDecoder();
  }

  #restart(withoutSize = false): void {
    const size = this.#size;
    if (size === undefined && !withoutSize) return;
    this.#generation++;
    this.#pending.clear();
    this.#waitingForKeyframe = true;
    this.#needsRestart = false;
    const config = decoderConfig(this.#codec, size);
    try {
      // After an error the decoder is closed and cannot be reset: build a new one.
      if (this.#decoder === undefined || this.#decoder.state === "closed") this.#decoder = this.#create();
      else this.#decoder.reset();
      this.#decoder.configure(config);
    } catch (err) {
      // configure() throws synchronously only for an invalid config: retrying will not help.
      this.#fatal = true;
      this.counters.errors++;
      this.#callbacks.onError(PlayerError.from(err, "CC_ERR_DECODER_UNSUPPORTED"));
      this.#closeDecoder();
    }
  }

  #create(): VideoDecoder {
    // Output from before a reset is recognised by generation through the pending map; errors
    // from an instance we have already replaced are ignored.
    const decoder: VideoDecoder = new VideoDecoder({
      output: (frame) => this.#onOutput(frame),
      error: (err) => {
        if (decoder === this.#decoder) this.#onDecoderError(err);
      },
    });
    return decoder;
  }

  #onOutput(frame: VideoFrame): void {
    const meta = this.#pending.get(frame.timestamp);
    if (meta !== undefined) this.#pending.delete(frame.timestamp);
    if (this.#closed || meta === undefined || meta.generation !== this.#generation) {
      frame.close();
      this.counters.stale++;
      return;
    }
    this.counters.decoded++;
    const out: FrameMeta = {
      seq: meta.seq,
      serverTime: meta.serverTime,
      pts: meta.pts,
      replay: meta.replay,
      recorded: meta.recorded,
      keyframe: meta.keyframe,
      receivedAt: meta.receivedAt,
      newest: frame.timestamp === this.#lastSubmitted,
    };
    try {
      this.#callbacks.onFrame(frame, out);
    } catch (err) {
      // The callee owns the frame even when it throws; closing twice is harmless.
      frame.close();
      reportError(err);
    }
  }

  #onDecoderError(err: unknown): void {
    if (this.#closed) return;
    this.counters.errors++;
    const unsupported = err instanceof DOMException && err.name === "NotSupportedError";
    if (unsupported) {
      this.#fatal = true;
      this.#closeDecoder();
      this.#callbacks.onError(
        new PlayerError("CC_ERR_DECODER_UNSUPPORTED", `${this.#codec} ${this.#describeSize()} is not supported here`, true, {
          cause: err,
        }),
      );
      return;
    }
    // Recover: drop everything in flight and rebuild at the next keyframe.
    this.#needsRestart = true;
    this.#waitingForKeyframe = true;
    this.#generation++;
    this.#pending.clear();
    const message = err instanceof Error ? err.message : String(err);
    this.#callbacks.onError(new PlayerError("CC_ERR_DECODE", `decoder error, waiting for a keyframe: ${message}`, false, { cause: err }));
  }

  #closeDecoder(): void {
    const decoder = this.#decoder;
    this.#decoder = undefined;
    if (decoder !== undefined && decoder.state !== "closed") decoder.close();
  }

  #describeSize(): string {
    return this.#size === undefined ? "" : `${this.#size.width}×${this.#size.height}`;
  }
}
