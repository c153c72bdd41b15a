// Every codec the server can encode, by name: adding one is one module and one line here.

import type { CodecName } from "../../shared/codec.js";
import { av1 } from "./av1.js";
import type { CodecModule } from "./codec-module.js";
import { h264 } from "./h264.js";
import { vp8 } from "./vp8.js";
import { vp9 } from "./vp9.js";

export const CODECS: Readonly<Record<CodecName, CodecModule>> = { vp8, vp9, av1, h264 };

export const DEFAULT_CODEC: CodecName = "vp8";
