// Reads a WebM byte stream back with ts-ebml, an EBML/Matroska parser independent of our muxer,
// into the facts the tests check: element order, unknown sizes, clusters and their blocks.

import { Decoder, tools } from "ts-ebml";
import { expect } from "vitest";

export interface ParsedBlock {
  /** Cluster timestamp + the block's relative timecode, ms. */
  readonly time: number;
  readonly relative: number;
  readonly key: boolean;
  readonly frame: Uint8Array;
}

export interface ParsedCluster {
  readonly timestamp: number;
  readonly unknownSize: boolean;
  readonly blocks: ParsedBlock[];
}

export interface ParsedWebm {
  /** Top-level and header element names in order, e.g. ["EBML", "Segment?", "Info", "Tracks", "Cluster?", …] ("?" = unknown size). */
  readonly order: string[];
  readonly docType: string | undefined;
  readonly timestampScale: number | undefined;
  readonly codecId: string | undefined;
  readonly width: number | undefined;
  readonly height: number | undefined;
  readonly defaultDurationNs: number | undefined;
  readonly clusters: ParsedCluster[];
}

export function readWebm(bytes: Uint8Array): ParsedWebm {
  // A copy with its own ArrayBuffer (a Node Buffer may be a view into a shared pool).
  const copy = new Uint8Array(bytes);
  const elements = new Decoder().decode(copy.buffer);
  const order: string[] = [];
  const clusters: ParsedCluster[] = [];
  let docType: string | undefined;
  let timestampScale: number | undefined;
  let codecId: string | undefined;
  let width: number | undefined;
  let height: number | undefined;
  let defaultDurationNs: number | undefined;
  let current: { timestamp: number | null; unknownSize: boolean; blocks: ParsedBlock[] } | null = null;
  const close = (): void => {
    if (current) clusters.push({ timestamp: current.timestamp ?? NaN, unknownSize: current.unknownSize, blocks: current.blocks });
    current = null;
  };
  for (const e of elements) {
    const value = (e as { value?: unknown }).value;
    switch (e.name) {
      case "EBML":
      case "Segment":
      case "Info":
      case "Tracks":
        if (e.type === "m" && !e.isEnd) order.push(e.name + (e.unknownSize ? "?" : ""));
        break;
      case "Cluster":
        if (e.type === "m" && !e.isEnd) {
          close();
          order.push("Cluster" + (e.unknownSize ? "?" : ""));
          current = { timestamp: null, unknownSize: e.unknownSize === true, blocks: [] };
        }
        break;
      case "DocType":
        docType = value as string;
        break;
      case "TimestampScale":
        timestampScale = value as number;
        break;
      case "CodecID":
        codecId = value as string;
        break;
      case "PixelWidth":
        width = value as number;
        break;
      case "PixelHeight":
        height = value as number;
        break;
      case "DefaultDuration":
        defaultDurationNs = value as number;
        break;
      case "Timestamp":
        if (current) current.timestamp = value as number;
        break;
      case "SimpleBlock": {
        if (!current) throw new Error("SimpleBlock outside a cluster");
        const block = tools.ebmlBlock((e as unknown as { data: Buffer }).data);
        const base = current.timestamp ?? NaN;
        current.blocks.push({ time: base + block.timecode, relative: block.timecode, key: block.keyframe, frame: new Uint8Array(block.frames[0]!) });
        break;
      }
    }
  }
  close();
  return { order, docType, timestampScale, codecId, width, height, defaultDurationNs, clusters };
}

/** What every viewer's bytes must be: init segment, then clusters of unknown size from 0, each starting with a keyframe, timecodes never going back. */
export function expectValidLiveWebm(parsed: ParsedWebm, framerate = 30): void {
  expect(parsed.order.slice(0, 4)).toEqual(["EBML", "Segment?", "Info", "Tracks"]);
  expect(parsed.order.slice(4).every((e) => e === "Cluster?")).toBe(true);
  expect(parsed.docType).toBe("webm");
  expect(parsed.timestampScale).toBe(1_000_000);
  expect(parsed.codecId).toBe("V_VP8");
  expect(parsed.defaultDurationNs).toBe(Math.round(1e9 / framerate));
  expect(parsed.clusters.length).toBeGreaterThan(0);
  expect(parsed.clusters[0]!.timestamp).toBe(0);
  let last = -Infinity;
  for (const cluster of parsed.clusters) {
    expect(cluster.blocks[0]?.key, `cluster at ${cluster.timestamp} starts with a keyframe`).toBe(true);
    expect(cluster.blocks[0]?.relative).toBe(0);
    for (const block of cluster.blocks) {
      expect(block.time, "block timecodes never go back").toBeGreaterThanOrEqual(last);
      last = block.time;
    }
    // The VP8 frame tag agrees with the SimpleBlock keyframe flag.
    for (const block of cluster.blocks) expect((block.frame[0]! & 1) === 0).toBe(block.key);
  }
}

