// A stream's tile encoding (the smaller one for grids of players) from `--tile` and the config
// file's `tile` keys → validated TileSettings, or null for none.
//
// Streams made from flags (`--source`, `--stream`) get a default tile: 320 wide with the stream's
// aspect ratio, at its frame rate, 300 kbit/s, when the stream is wider than that. Streams of the
// config file get one when the file says so (their own `tile`, or `defaults.tile`). `--tile WxH`
// sets every stream's tile size, `--tile off` removes every tile (flags win over the file).
//
// A `codec: copy` stream decodes nothing, so there is no picture to scale a tile from: it gets no
// default tile, and a tile asked for needs a source of its own (a camera's substream, copied too).

import { ConfigError } from "./config-error.js";
import type { EncodeSettings, SourceSpec, TileSettings } from "./source/pipeline.js";

export const DEFAULT_TILE_WIDTH = 320;
export const DEFAULT_TILE_KBPS = 300;

/** `--tile`: absent, `off`, or a size. */
export type TileFlag = "off" | { readonly width: number; readonly height: number } | undefined;

/** What the config file asks for (sizes and sources already parsed). */
export interface TileRequest {
  readonly size?: { readonly width: number; readonly height: number } | undefined;
  readonly framerate?: number | undefined;
  readonly bitrateKbps?: number | undefined;
  /** A camera's own smaller stream; absent: the stream's picture, scaled. */
  readonly source?: SourceSpec | undefined;
}

/** 320 wide with the stream's aspect ratio (even height); the stream's own size if it is not wider. */
export function defaultTileSize(full: { readonly width: number; readonly height: number }): { width: number; height: number } {
  if (full.width <= DEFAULT_TILE_WIDTH) return { width: full.width, height: full.height };
  const height = Math.max(16, 2 * Math.round((DEFAULT_TILE_WIDTH * full.height) / full.width / 2));
  return { width: DEFAULT_TILE_WIDTH, height };
}

/** A stream from flags: the default tile unless `--tile` says otherwise. */
export function flagStreamTile(stream: string, full: EncodeSettings, flag: TileFlag): TileSettings | null {
  if (flag === "off" || (flag === undefined && full.codec === "copy")) return null;
  if (full.codec === "copy") throw new ConfigError("--tile", copyTileMessage(stream));
  if (flag === undefined) {
    // Only where it saves something: a stream no wider than a tile is its own tile.
    if (full.width <= DEFAULT_TILE_WIDTH) return null;
    return { ...defaultTileSize(full), framerate: full.framerate, bitrateKbps: DEFAULT_TILE_KBPS, source: null };
  }
  return checkTile(stream, full, { ...flag, framerate: full.framerate, bitrateKbps: DEFAULT_TILE_KBPS, source: null }, { size: "--tile", fps: "--tile" });
}

/**
 * A stream from the config file: what the file asks for (null: no tile), then `--tile`. `key` is
 * where the request was made (e.g. "cams.json: streams[1].tile" or "cams.json: defaults.tile"), for errors.
 */
export function fileStreamTile(stream: string, full: EncodeSettings, request: TileRequest | null, flag: TileFlag, key: string): TileSettings | null {
  if (flag === "off" || (request === null && flag === undefined)) return null;
  if (full.codec === "copy" && request?.source === undefined) throw new ConfigError(flag !== undefined ? "--tile" : key, copyTileMessage(stream));
  const size = flag ?? request?.size ?? defaultTileSize(full);
  const tile: TileSettings = {
    width: size.width,
    height: size.height,
    framerate: request?.framerate ?? full.framerate,
    bitrateKbps: request?.bitrateKbps ?? DEFAULT_TILE_KBPS,
    source: request?.source ?? null,
  };
  return checkTile(stream, full, tile, {
    size: flag !== undefined ? "--tile" : request?.size !== undefined ? `${key}.size` : key,
    fps: request?.framerate !== undefined ? `${key}.fps` : key,
  });
}

const copyTileMessage = (stream: string): string =>
  `stream "${stream}" forwards its source's video (codec copy), so no picture is decoded to scale a tile from: ` +
  `give its tile a source of its own (the camera's substream: "tile": {"source": "rtsp://…"}), or use --tile off`;

/** A tile scaled from the stream's picture is no larger and no faster than the stream. */
function checkTile(stream: string, full: EncodeSettings, tile: TileSettings, keys: { readonly size: string; readonly fps: string }): TileSettings {
  if (tile.source !== null) return tile;
  if (tile.width > full.width || tile.height > full.height) {
    throw new ConfigError(
      keys.size,
      `the tile of stream "${stream}" (${tile.width}x${tile.height}) is scaled from its picture, so it cannot be larger than the stream (${full.width}x${full.height})`,
    );
  }
  if (tile.framerate > full.framerate) {
    throw new ConfigError(
      keys.fps,
      `the tile of stream "${stream}" is scaled from its picture, so its fps (${tile.framerate}) cannot be above the stream's (${full.framerate})`,
    );
  }
  return tile;
}
