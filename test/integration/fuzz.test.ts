// No message takes the server down: against the real server and a real pipeline, a few dozen sockets
// on /ws/cam0, /webm/cam0, unknown streams and unknown encodings send thousands of random messages —
// valid and invalid acks, pause/resume/resync storms, clocks, wrong and unknown types, prototype
// names, deep JSON, non-JSON, invalid UTF-8, binary, oversized, fragmented and empty messages — and close or
// terminate abruptly, then reconnect. Driven by a seeded PRNG per socket slot.
//
// Checked for each seed: every close the server chose has a documented code (never 1011), and the
// one the first offending message on that socket calls for; the server's text messages parse and
// clock replies echo `t`; a healthy viewer watching throughout gets every frame, consecutive, and no
// `skipped`; afterwards the process is alive, /healthz answers 200, the viewer count is back to the
// healthy viewer alone, and every stderr line is a JSON log line below level error.
//
// Seeds: CI_SEEDS; FUZZ_SEEDS=1,2,3 runs those instead, FUZZ_SEED_COUNT=20 that many random ones
// (printed). Every failure message starts with its seed and the command that replays it.

import { randomInt } from "node:crypto";
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { StreamsResponse } from "../../shared/api.js";
import { decodeBinaryMessage, parseServerMessage } from "../../shared/protocol.js";
import { mulberry32 } from "../helpers/random.js";
import { isAlive, startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";

// Written out again rather than imported: the tests pin the documented values (docs/protocol.md).
const UNSUPPORTED_DATA = 1003;
const INVALID_DATA = 1007;
const MESSAGE_TOO_BIG = 1009;
const INTERNAL_ERROR = 1011;
const BAD_MESSAGE = 4400;
const UNKNOWN_STREAM = 4404;
const UNKNOWN_ENCODING = 4406;
const ABNORMAL = 1006; // no close frame: what a client sees after its own terminate()
const MAX_MESSAGE_BYTES = 4096;
/** Close codes the server may choose, per endpoint (docs/protocol.md, "Close codes"). */
const DOCUMENTED: Record<Mode, ReadonlySet<number>> = {
  ws: new Set([1001, 1002, UNSUPPORTED_DATA, INVALID_DATA, MESSAGE_TOO_BIG, BAD_MESSAGE, UNKNOWN_STREAM, 4408]),
  webm: new Set([1001, 1002, INVALID_DATA, MESSAGE_TOO_BIG, UNKNOWN_STREAM, 4408, 4409]),
  unknown: new Set([UNKNOWN_STREAM, UNKNOWN_ENCODING]),
};
/** HTTP refusals of an upgrade to a valid path that are documented and possible here. */
const DOCUMENTED_REFUSALS = new Set([429, 503]);

const CI_SEEDS = [1, 2, 3];
const STORM_MS = 8000;
const MAX_MESSAGES_PER_SEED = 6000;
const SLOTS = [20, 30] as const; // how many sockets at once: a random count in this range
// The fuzz storm and the suite's other files share two cores with the healthy viewer's thread, which
// can go unscheduled for over half a second: that is a slow viewer by the default 500 ms
// `--max-lag-ms`, and the server would rightly skip it. What is tested here is that no message
// harms anyone, not the lag limit (flow-control.test.ts tests that), so the limit is 3 s.
const SERVER_ARGS = ["--source", "test", "--size", "320x240", "--fps", "30", "--keyframe-interval", "1", "--max-lag-ms", "3000"];

function seeds(): number[] {
  const list = process.env.FUZZ_SEEDS;
  if (list) {
    const parsed = list.split(",").map((s) => Number(s.trim()));
    if (parsed.some((n) => !Number.isInteger(n) || n < 0 || n > 0xffffffff)) throw new Error(`FUZZ_SEEDS must be u32 integers: ${list}`);
    return parsed;
  }
  const count = process.env.FUZZ_SEED_COUNT;
  if (count) {
    const n = Number(count);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error(`FUZZ_SEED_COUNT must be 1–1000: ${count}`);
    const picked = Array.from({ length: n }, () => randomInt(0x7fffffff));
    console.info(`fuzz: FUZZ_SEED_COUNT=${n} → FUZZ_SEEDS=${picked.join(",")}`);
    return picked;
  }
  return CI_SEEDS;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Mode = "ws" | "webm" | "unknown";

/**
 * What a message calls for: `ok` changes nothing, `bad` is a protocol error on /ws/ (4400),
 * `maybe` is an ack the server may or may not take (a seq from before this socket joined, or one
 * that may be in flight), `binary` is a binary message (1003 on /ws/), `utf8` a text message that
 * is not UTF-8 (1007), `big` one over 4096 bytes (1009). /webm/ ignores all but utf8 and big.
 */
type Cls = "ok" | "bad" | "maybe" | "binary" | "utf8" | "big";

interface Message {
  readonly label: string;
  readonly cls: Cls;
  /** One message; more than one part: its fragments. */
  readonly parts: readonly Buffer[];
  readonly binary: boolean;
  /** A clock message's t, for checking the reply. */
  readonly clockT?: number;
}

/** The close codes this message can cause on this endpoint; null: the socket stays open. */
function outcomes(cls: Cls, mode: Mode): (number | null)[] {
  if (cls === "big") return [MESSAGE_TOO_BIG];
  if (cls === "utf8") return [INVALID_DATA];
  if (mode !== "ws") return [null];
  switch (cls) {
    case "ok":
      return [null];
    case "bad":
      return [BAD_MESSAGE];
    case "maybe":
      return [null, BAD_MESSAGE];
    case "binary":
      return [UNSUPPORTED_DATA];
  }
}

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T,>(r: Rand, items: readonly T[]): T => items[int(r, items.length)]!;
const chance = (r: Rand, p: number): boolean => r() < p;

/** What a message generator knows about its socket. */
interface GenContext {
  readonly r: Rand;
  /** Sequence numbers this socket received (the newest last, at most 64). */
  readonly seqs: readonly number[];
  /** Sequence numbers earlier sockets of this slot received. */
  readonly oldSeqs: readonly number[];
}

const space = (r: Rand): string => pick(r, ["", "", "", "", " ", "\n", "\t", "\r\n  "]);

/** A JSON object written by hand (raw values, so 1e999, -0 or 5.0 can be written), keys in random order, random whitespace. */
function obj(r: Rand, entries: readonly (readonly [string, string])[]): string {
  const list = [...entries];
  for (let i = list.length - 1; i > 0; i--) {
    const j = int(r, i + 1);
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  const body = list.map(([k, v]) => `${space(r)}${JSON.stringify(k)}${space(r)}:${space(r)}${v}${space(r)}`).join(",");
  return `${space(r)}{${body}}${space(r)}`;
}

/** Over 4096 bytes in all is 1009 whatever the content: ws counts the length before it looks at the bytes. */
const sized = (m: Message): Message => (m.parts.reduce((n, p) => n + p.length, 0) > MAX_MESSAGE_BYTES ? { ...m, cls: "big" } : m);
const text = (label: string, cls: Cls, t: string, clockT?: number): Message =>
  sized({ label, cls, parts: [Buffer.from(t, "utf8")], binary: false, ...(clockT !== undefined ? { clockT } : {}) });
const bytes = (label: string, cls: Cls, b: Buffer, binary: boolean): Message => sized({ label, cls, parts: [b], binary });

/** Harmless extra fields a client may add (ignored by the server). */
function extras(r: Rand): [string, string][] {
  const all: [string, string][] = [
    ["x", "1"],
    ["émoji", '"😀"'],
    ["nul", '"\\u0000"'],
    ["lone", '"\\ud800"'],
    ["__proto__", '{"type":"ack","seq":-1}'],
    ["constructor", '{"prototype":{"type":"bogus"}}'],
    ["nested", '{"a":[1,{"b":null}]}'],
    ["seq", '"not a number"'],
  ];
  return all.filter(() => chance(r, 0.15));
}

/** A string of `n` bytes of UTF-8, some characters multi-byte. */
function padding(r: Rand, n: number): string {
  let s = "";
  let left = n;
  while (left > 0) {
    if (left >= 2 && chance(r, 0.2)) {
      s += "é";
      left -= 2;
    } else {
      s += "x";
      left -= 1;
    }
  }
  return s;
}

/** `{"type":TYPE,"pad":"…"}` of exactly `total` bytes. */
function padded(r: Rand, type: string, total: number): string {
  const base = `{"type":${JSON.stringify(type)},"pad":""}`;
  return base.slice(0, -2) + padding(r, total - Buffer.byteLength(base)) + '"}';
}

function validMessage(g: GenContext): Message {
  const { r, seqs } = g;
  const roll = int(r, 14);
  switch (roll) {
    case 0:
    case 1:
    case 2: {
      if (seqs.length === 0) return text("resync (nothing to ack yet)", "ok", '{"type":"resync"}');
      const seq = pick(r, seqs);
      // Also as JSON numbers written otherwise that are the same integer.
      const raw = pick(r, [String(seq), String(seq), `${seq}.0`, `${seq}e0`, `${seq * 10}e-1`]);
      return text(`ack(received ${raw})`, "ok", obj(r, [["type", '"ack"'], ["seq", raw], ...extras(r).filter(([k]) => k !== "seq")]));
    }
    case 3:
    case 4:
    case 5: {
      const type = pick(r, ["pause", "resume", "resync"]);
      return text(type, "ok", obj(r, [["type", JSON.stringify(type)], ...extras(r)]));
    }
    case 6: {
      const t = pick(r, [0, -0, 1.5, -1e308, 1e308, 5e-324, r() * 1e6, Date.now(), performance.now(), -123.456, 2 ** 53 + 2]);
      return text(`clock(${t})`, "ok", obj(r, [["type", '"clock"'], ["t", JSON.stringify(t)], ...extras(r).filter(([k]) => k !== "t")]), t);
    }
    case 7:
      // Exactly at the limit: accepted.
      return text("4096-byte valid", "ok", padded(r, pick(r, ["pause", "resume", "resync"]), MAX_MESSAGE_BYTES));
    case 8: {
      const depth = 1 + int(r, 2000);
      return text(`resync with [${depth} deep]`, "ok", `{"type":"resync","d":${"[".repeat(depth)}${"]".repeat(depth)}}`);
    }
    case 9: {
      const depth = 1 + int(r, 600);
      return text(`pause with {${depth} deep}`, "ok", `{"type":"pause","d":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}`);
    }
    case 10:
      // Duplicate keys: JSON.parse keeps the last.
      return pick(r, [
        text("dup type → pause", "ok", '{"type":"bogus","type":"pause"}'),
        text("dup seq → valid", seqs.length ? "ok" : "maybe", `{"type":"ack","seq":"x","seq":${seqs.at(-1) ?? 0}}`),
        text("pause with __proto__ ack", "ok", '{"type":"pause","__proto__":{"type":"ack"}}'),
      ]);
    case 11:
      return text("whitespace-wrapped resume", "ok", ` \t\r\n{"type":"resume"}\n\t `);
    case 12: {
      // A valid message in fragments, split anywhere (a multi-byte character too).
      const whole = Buffer.from(obj(r, [["type", '"resync"'], ["s", '"é€😀"']]), "utf8");
      const cuts = [...new Set(Array.from({ length: 1 + int(r, 4) }, () => 1 + int(r, whole.length - 1)))].sort((a, b) => a - b);
      const parts = [0, ...cuts].map((c, i) => whole.subarray(c, [...cuts, whole.length][i]));
      return sized({ label: `resync in ${parts.length} fragments`, cls: "ok", parts, binary: false });
    }
    default:
      return text("resume", "ok", '{"type":"resume"}');
  }
}

const INVALID_UTF8: readonly number[][] = [
  [0xff],
  [0xfe, 0xff],
  [0xc0, 0xaf], // overlong '/'
  [0xed, 0xa0, 0x80], // an encoded surrogate
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0x80], // a lone continuation byte
  [0xe2, 0x82], // truncated
  [0xf8, 0x88, 0x80, 0x80, 0x80], // 5-byte form
];

function invalidMessage(g: GenContext): Message {
  const { r, seqs, oldSeqs } = g;
  const newest = seqs.at(-1);
  switch (int(r, 16)) {
    case 0: {
      const raw = pick(r, ["-1", "-0.5", "4294967296", "4294967297", "1.5", '"5"', '"abc"', "1e308", '"NaN"', '"Infinity"', "null", "true", "[]", "{}", "1e999", "-1e999", "1e21", "9007199254740993", "-4294967295", '{"valueOf":1}']);
      return text(`ack(${raw})`, "bad", obj(r, [["type", '"ack"'], ["seq", raw]]));
    }
    case 1: {
      // A sequence number far ahead of anything sent (the stream starts at 0).
      const seq = (newest ?? 0) + 100_000 + int(r, 1e9);
      return text(`ack(never sent ${seq})`, "bad", obj(r, [["type", '"ack"'], ["seq", String(seq)]]));
    }
    case 2: {
      // Sent before this socket joined, from an earlier socket, the u32 just "before" 0, maybe in flight: the server may take these.
      const seq = pick(r, [0, 1, 0xffffffff, 0x80000000, (newest ?? 0) + 1, (newest ?? 0) + 2, pick(r, oldSeqs.length ? oldSeqs : [0]), int(r, (newest ?? 0) + 1)]);
      const raw = pick(r, [String(seq), seq === 0 ? "-0" : String(seq)]);
      return text(`ack(maybe ${raw})`, "maybe", obj(r, [["type", '"ack"'], ["seq", raw]]));
    }
    case 3:
      return text("ack without seq", "bad", obj(r, [["type", '"ack"']]));
    case 4: {
      const raw = pick(r, ['"1"', "null", "1e999", "-1e999", "{}", "[]", "true", '"NaN"']);
      return chance(r, 0.1) ? text("clock without t", "bad", '{"type":"clock"}') : text(`clock(${raw})`, "bad", obj(r, [["type", '"clock"'], ["t", raw]]));
    }
    case 5: {
      const t = pick(r, ["1", "null", '["ack"]', '{"toString":"ack"}', "true", "0", '"PAUSE"', '"pause "', '" ack"', '"ack\\u0000"', '"paus"', '"resync\\n"', '"ｐａｕｓｅ"', '"clock"']);
      return text(`type ${t}`, "bad", obj(r, [["type", t]]));
    }
    case 6: {
      const t = pick(r, ["hello", "stats", "skipped", "frame", "state", "", "unknown", "subscribe", "ping", "close", Math.floor(r() * 1e9).toString(36)]);
      return text(`unknown type "${t}"`, "bad", obj(r, [["type", JSON.stringify(t)], ...extras(r)]));
    }
    case 7:
      return protoMessage(r);
    case 8:
      return badText(r, [
        ["[]", "[]"],
        ["[pause]", '[{"type":"pause"}]'],
        ["[1,2,3]", "[1,2,3]"],
        ["null", "null"],
        ["true", "true"],
        ["0", "0"],
        ['"pause"', '"pause"'],
        ['""', '""'],
        ["1e999", "1e999"],
      ]);
    case 9: {
      const depth = 1 + int(r, 2040);
      return pick(r, [
        text(`[${depth} deep]`, "bad", "[".repeat(depth) + "]".repeat(depth)),
        text(`{${depth} deep}`, "bad", '{"a":'.repeat(depth) + "1" + "}".repeat(depth)), // over 680 deep: over 4096 bytes
        text(`unbalanced [${depth}`, "bad", "[".repeat(depth)),
      ]);
    }
    case 10:
      return badText(r, [
        ["{", "{"],
        ["}", "}"],
        ["{type:pause}", "{type:pause}"],
        ["single quotes", "{'type':'pause'}"],
        ["pause", "pause"],
        ["trailing x", '{"type":"pause"}x'],
        ["two objects", '{"type":"pause"}{"type":"pause"}'],
        ["trailing comma", '{"type":"pause",}'],
        ["comment", '{"type":"pause"/*c*/}'],
        ["BOM", '\uFEFF{"type":"pause"}'],
        ["nbsp", '\u00a0{"type":"pause"}'],
        ["NaN", "NaN"],
        ["undefined", "undefined"],
        ["empty", ""],
      ]);
    case 11: {
      // Random text: printable ASCII or any code point (no lone surrogates: those would be sent as U+FFFD).
      const n = int(r, 300);
      const ascii = chance(r, 0.5);
      let s = "~";
      for (let i = 0; i < n; i++) {
        if (ascii) s += String.fromCharCode(32 + int(r, 95));
        else {
          let cp = int(r, 0x110000);
          if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
          s += String.fromCodePoint(cp);
        }
      }
      return text(`random text (${n})`, "bad", s);
    }
    case 12: {
      const bad = Buffer.from(pick(r, INVALID_UTF8));
      if (chance(r, 0.5)) return bytes(`invalid UTF-8 ${bad.toString("hex")}`, "utf8", bad, false);
      // Inside an otherwise valid message, possibly in fragments.
      const whole = Buffer.concat([Buffer.from('{"type":"pause","s":"'), bad, Buffer.from('"}')]);
      if (chance(r, 0.5)) return bytes(`pause with invalid UTF-8 ${bad.toString("hex")}`, "utf8", whole, false);
      const cut = 1 + int(r, whole.length - 1);
      return sized({ label: `fragmented pause with invalid UTF-8 ${bad.toString("hex")}`, cls: "utf8", parts: [whole.subarray(0, cut), whole.subarray(cut)], binary: false });
    }
    case 13: {
      const n = pick(r, [0, 1, 4, 24, int(r, 200), int(r, MAX_MESSAGE_BYTES + 1)]);
      const b = Buffer.from(Array.from({ length: n }, () => int(r, 256)));
      if (chance(r, 0.2)) return bytes("binary JSON pause", "binary", Buffer.from('{"type":"pause"}'), true);
      return bytes(`binary (${n})`, "binary", b, true);
    }
    case 14: {
      const n = pick(r, [MAX_MESSAGE_BYTES + 1, MAX_MESSAGE_BYTES + 1 + int(r, 20_000), 65_536]);
      switch (int(r, 4)) {
        case 0:
          return text(`${n}-byte valid JSON`, "big", padded(r, "pause", n));
        case 1:
          return bytes(`${n}-byte binary`, "big", Buffer.alloc(n, 0x61), true);
        case 2: {
          // Fewer than 4096 characters, more than 4096 bytes.
          const s = `{"type":"pause","pad":"${"é".repeat(2100)}"}`;
          return text(`${s.length} chars, ${Buffer.byteLength(s)} bytes`, "big", s);
        }
        default: {
          // Each fragment small, the message too big.
          const parts = Array.from({ length: 3 }, () => Buffer.alloc(2000, 0x20));
          return { label: "6000 bytes in 3 fragments", cls: "big", parts, binary: false };
        }
      }
    }
    default:
      return text("4096-byte bad JSON", "bad", padded(r, "nope", MAX_MESSAGE_BYTES));
  }
}

/** One of these [label, text] pairs, each a protocol error. */
function badText(r: Rand, list: readonly (readonly [string, string])[]): Message {
  const [label, t] = pick(r, list);
  return text(label, "bad", t);
}

function protoMessage(r: Rand): Message {
  return badText(r, [
    ["proto pause", '{"__proto__":{"type":"pause"}}'],
    ["constructor", '{"type":"constructor"}'],
    ["__proto__", '{"type":"__proto__"}'],
    ["toString", '{"type":"toString"}'],
    ["hasOwnProperty", '{"type":"hasOwnProperty"}'],
    ["valueOf", '{"type":"valueOf"}'],
    ["__defineGetter__", '{"type":"__defineGetter__"}'],
    ['"toString"', '"toString"'],
    ['"__proto__"', '"__proto__"'],
    ["constructor.prototype", '{"constructor":{"prototype":{"type":"pause"}}}'],
    ["ack, seq on __proto__", '{"type":"ack","__proto__":{"seq":1}}'],
    ["clock, t on __proto__", '{"type":"clock","__proto__":{"t":1}}'],
    ["Type", '{"Type":"pause"}'],
    ["dup type → bogus", '{"type":"pause","type":"bogus"}'],
  ]);
}

/** One socket's story, for the oracle and for failure messages. */
interface Conn {
  readonly name: string;
  readonly mode: Mode;
  /** Close codes still possible, by the messages sent so far; null: open. */
  possible: Set<number | null>;
  /** Labels of the last messages sent. */
  readonly sent: string[];
  sentCount: number;
  terminated: boolean;
  ourClose: number | null;
  readonly seqs: number[];
  readonly clocks: number[];
}

interface Storm {
  readonly failures: string[];
  readonly closeCodes: Map<string, number>;
  connections: number;
  messages: number;
  refusals: number;
}

function advance(conn: Conn, next: readonly (number | null)[]): void {
  if (!conn.possible.has(null)) return;
  conn.possible.delete(null);
  for (const o of next) conn.possible.add(o);
}

const describeConn = (c: Conn): string =>
  `${c.name} (${c.mode}, ${c.sentCount} sent, last: ${c.sent.slice(-6).join(" | ") || "none"})`;

/** One fuzzing slot: connects, fuzzes, closes or is closed, reconnects — until the deadline or its budget. */
async function runSlot(server: ServerProcess, storm: Storm, slot: number, seed: number, deadline: number, budget: { left: number }): Promise<void> {
  const r = mulberry32((seed ^ Math.imul(slot + 1, 0x9e3779b1)) >>> 0);
  const mode: Mode = slot % 10 < 6 ? "ws" : slot % 10 < 9 ? "webm" : "unknown";
  const address = `127.0.0.${10 + slot}`; // one address per slot: far below the connection rate limit
  const oldSeqs: number[] = [];
  for (let n = 0; n < 200 && Date.now() < deadline && budget.left > 0; n++) {
    const path =
      mode === "ws" ? "ws/cam0" : mode === "webm" ? pick(r, ["webm/cam0", "webm/cam0?meta=1"]) : pick(r, ["ws/nosuch", "webm/nosuch", "ws/CAM0", "ws/cam1", "ws/cam0_", "ws/cam0?encoding=tile", "webm/cam0?encoding=FULL"]);
    await runConnection(server, storm, { name: `slot ${slot} conn ${n} ${path}`, mode, path, address, r, oldSeqs, deadline, budget });
    await sleep(50 + int(r, 350));
  }
}

interface ConnectionSpec {
  readonly name: string;
  readonly mode: Mode;
  readonly path: string;
  readonly address: string;
  readonly r: Rand;
  readonly oldSeqs: number[];
  readonly deadline: number;
  readonly budget: { left: number };
}

async function runConnection(server: ServerProcess, storm: Storm, spec: ConnectionSpec): Promise<void> {
  const { r, mode } = spec;
  const fail = (conn: Conn, what: string): void => void storm.failures.push(`${what} — ${describeConn(conn)}`);
  const conn: Conn = {
    name: spec.name,
    mode,
    possible: new Set(mode === "unknown" ? [spec.path.includes("?encoding=") ? UNKNOWN_ENCODING : UNKNOWN_STREAM] : [null]),
    sent: [],
    sentCount: 0,
    terminated: false,
    ourClose: null,
    seqs: [],
    clocks: [],
  };
  storm.connections++;
  const ws = new WebSocket(server.wsBase + spec.path, { localAddress: spec.address, handshakeTimeout: 5000 });
  ws.binaryType = "nodebuffer";
  const clientErrors: Error[] = [];
  ws.on("error", (err) => void clientErrors.push(err));
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    try {
      if (isBinary) {
        if (mode !== "ws") return;
        const m = decodeBinaryMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        if (m.kind === "video") {
          conn.seqs.push(m.header.seq);
          if (conn.seqs.length > 64) conn.seqs.shift();
        }
        return;
      }
      const m = parseServerMessage(data.toString("utf8"));
      if (m.type === "clock") {
        const expected = conn.clocks.shift();
        if (expected === undefined || m.t !== expected) fail(conn, `clock reply t=${m.t}, expected ${expected}`);
      }
    } catch (err) {
      fail(conn, `unreadable server message: ${(err as Error).message}`);
    }
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once("close", (code, why) => resolve({ code, reason: why.toString() })));
  const refused: { status: number | null } = { status: null };
  ws.once("unexpected-response", (req, res) => {
    refused.status = res.statusCode ?? 0;
    req.destroy();
  });

  if (chance(r, 0.03)) {
    // Gone during the handshake.
    conn.terminated = true;
    ws.terminate();
    await closed;
    return;
  }
  const opened = await Promise.race([new Promise<boolean>((resolve) => ws.once("open", () => resolve(true))), closed.then(() => false)]);
  if (!opened) {
    if (refused.status === null) fail(conn, `could not connect: ${clientErrors[0]?.message ?? "closed before open"}`);
    else {
      storm.refusals++;
      if (!DOCUMENTED_REFUSALS.has(refused.status)) fail(conn, `upgrade refused with HTTP ${refused.status}`);
    }
    return;
  }

  const badness = pick(r, [0, 0.005, 0.02, 0.1, 0.4, 0.9]);
  const perConnection = 1 + int(r, 400 * r());
  const send = (m: Message): void => {
    if (ws.readyState !== WebSocket.OPEN) return;
    m.parts.forEach((part, i) => ws.send(part, { binary: m.binary, fin: i === m.parts.length - 1 }));
    if (m.clockT !== undefined && conn.possible.has(null)) conn.clocks.push(m.clockT);
    advance(conn, outcomes(m.cls, mode));
    conn.sent.push(m.label);
    if (conn.sent.length > 20) conn.sent.shift();
    conn.sentCount++;
    storm.messages++;
    spec.budget.left--;
  };
  const terminate = (): void => {
    conn.terminated = true;
    conn.possible.delete(null);
    conn.possible.add(ABNORMAL);
    ws.terminate();
  };
  const closeOurselves = (): void => {
    // 1005: a close frame without a code; 3000–3999 are the application's: echoed by the server.
    const code = pick(r, [1000, 1005, 3000 + int(r, 1000)]);
    if (conn.possible.has(null)) {
      conn.possible.delete(null);
      conn.possible.add(code);
    }
    conn.ourClose = code;
    if (code === 1005) ws.close();
    else ws.close(code, pick(r, ["", "bye", "é".repeat(40)]));
  };

  for (let i = 0; i < perConnection && ws.readyState === WebSocket.OPEN && Date.now() < spec.deadline && spec.budget.left > 0; ) {
    const g: GenContext = { r, seqs: conn.seqs, oldSeqs: spec.oldSeqs };
    const roll = r();
    if (roll < 0.004) {
      terminate();
      break;
    }
    if (roll < 0.006) {
      // Half a message, then gone.
      if (ws.readyState === WebSocket.OPEN) ws.send(Buffer.from('{"type":"pa'), { binary: false, fin: false });
      conn.sent.push("half a fragmented message");
      terminate();
      break;
    }
    if (roll < 0.009) {
      closeOurselves();
      break;
    }
    if (roll < 0.03) {
      ws.ping(Buffer.from(Array.from({ length: int(r, 126) }, () => int(r, 256))));
      i++;
      continue;
    }
    if (roll < 0.035) {
      ws.pong();
      i++;
      continue;
    }
    if (roll < 0.08) {
      // A storm: many pause/resume/resync (or acks, or clocks) at once.
      const kind = pick(r, ["prr", "prr", "ack", "clock"]);
      const n = 5 + int(r, 40);
      for (let k = 0; k < n; k++) {
        if (kind === "prr") {
          const type = pick(r, ["pause", "resume", "resync"]);
          send(text(`${type} (storm)`, "ok", `{"type":"${type}"}`));
        } else if (kind === "ack" && conn.seqs.length > 0) {
          send(text("ack (storm)", "ok", `{"type":"ack","seq":${pick(r, conn.seqs)}}`));
        } else {
          const t = r() * 1e9;
          send(text("clock (storm)", "ok", `{"type":"clock","t":${JSON.stringify(t)}}`, t));
        }
      }
      i += n;
    } else {
      send(chance(r, badness) ? invalidMessage(g) : validMessage(g));
      i++;
    }
    // Paced so that the budget lasts about the storm's length; now and then back to back.
    if (chance(r, 0.1)) await new Promise((resolve) => setImmediate(resolve));
    else await sleep(int(r, 160));
  }

  if (!conn.terminated && ws.readyState === WebSocket.OPEN) {
    // Still open: either the server's close is on its way, or nothing called for one.
    if (conn.possible.has(null)) {
      if (chance(r, 0.3)) terminate();
      else closeOurselves();
    }
  }
  const timeout = sleep(5000).then(() => null);
  const result = await Promise.race([closed, timeout]);
  spec.oldSeqs.push(...conn.seqs.slice(-8));
  if (spec.oldSeqs.length > 32) spec.oldSeqs.splice(0, spec.oldSeqs.length - 32);
  if (result === null) {
    fail(conn, `not closed within 5 s; expected one of ${[...conn.possible].join(",")}`);
    ws.terminate();
    return;
  }
  const { code, reason } = result;
  const key = code >= 3000 && code <= 3999 ? "3xxx" : String(code); // 3xxx: our own, echoed
  storm.closeCodes.set(key, (storm.closeCodes.get(key) ?? 0) + 1);
  if (code === INTERNAL_ERROR) fail(conn, `closed with 1011 (an internal error is a server bug): "${reason}"`);
  if (!conn.possible.has(code)) fail(conn, `closed with ${code} "${reason}"; expected one of ${[...conn.possible].join(",")}`);
  const ours = code === conn.ourClose || (conn.terminated && code === ABNORMAL);
  if (!ours && !DOCUMENTED[mode].has(code)) fail(conn, `closed with undocumented code ${code} "${reason}"`);
  if (!ours && code === BAD_MESSAGE && !/^CC_ERR_(BAD_JSON|BAD_MESSAGE)\b/.test(reason)) fail(conn, `4400 without an error code: "${reason}"`);
  if (clientErrors.length > 0 && !conn.terminated) fail(conn, `client error: ${clientErrors.map((e) => e.message).join("; ")}`);
}

async function viewerCount(server: ServerProcess): Promise<number> {
  const res = await fetch(server.url + "api/streams", { signal: AbortSignal.timeout(5000) });
  return ((await res.json()) as StreamsResponse).streams.find((s) => s.name === "cam0")?.viewers ?? -1;
}

/** What the healthy viewer saw. */
interface HealthyReport {
  readonly frames: number;
  /** [previous seq, seq] wherever a sequence number was missing. */
  readonly gaps: readonly (readonly [number, number])[];
  readonly skipped: readonly unknown[];
  readonly open: boolean;
  readonly closed: { readonly code: number; readonly reason: string } | null;
  readonly errors: readonly string[];
}

/**
 * The healthy viewer runs in a worker thread, with its own event loop. In this thread, the fuzzing
 * sockets' work (handshakes, GOP replays) can hold up its acks for hundreds of ms on a busy 2-core
 * machine, and the server then rightly treats it as a slow reader and skips frames. Its own loop
 * reads and acks every 100 ms, as a browser tab does, whatever this thread is doing.
 */
const HEALTHY_VIEWER = `
const { workerData, parentPort } = require("node:worker_threads");
const WebSocket = require(workerData.wsPath);
const ws = new WebSocket(workerData.url);
ws.binaryType = "nodebuffer";
let frames = 0, newest, closed = null;
const gaps = [], skipped = [], errors = [];
ws.on("message", (data, isBinary) => {
  if (isBinary) {
    if (data.length < 24 || data[0] !== 1) return; // kind 1: a video frame; u32 seq at offset 4
    const seq = data.readUInt32LE(4);
    if (newest !== undefined && seq !== ((newest + 1) >>> 0)) gaps.push([newest, seq]);
    newest = seq;
    frames++;
  } else {
    const m = JSON.parse(data.toString("utf8"));
    if (m.type === "skipped") skipped.push(m);
  }
});
ws.on("error", (err) => errors.push(err.message));
ws.on("close", (code, reason) => (closed = { code, reason: reason.toString() }));
const ack = setInterval(() => {
  if (newest !== undefined && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ack", seq: newest }));
}, 100);
parentPort.on("message", (m) => {
  if (m === "stop") {
    clearInterval(ack);
    ws.close();
    parentPort.close();
    return;
  }
  parentPort.postMessage({ frames, gaps, skipped, open: ws.readyState === WebSocket.OPEN, closed, errors });
});
`;

function startHealthyViewer(url: string): { report(): Promise<HealthyReport>; waitForFrames(n: number, timeoutMs: number): Promise<HealthyReport>; stop(): Promise<void> } {
  const wsPath = createRequire(import.meta.url).resolve("ws");
  const worker = new Worker(HEALTHY_VIEWER, { eval: true, workerData: { url, wsPath } });
  const failed = new Promise<never>((_, reject) => worker.once("error", reject));
  failed.catch(() => undefined);
  const report = (): Promise<HealthyReport> =>
    Promise.race([failed, new Promise<HealthyReport>((resolve) => {
      worker.once("message", (m: HealthyReport) => resolve(m));
      worker.postMessage("report");
    })]);
  const waitForFrames = async (n: number, timeoutMs: number): Promise<HealthyReport> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await report();
      if (r.frames >= n) return r;
      if (Date.now() > deadline) throw new Error(`healthy viewer: only ${r.frames} of ${n} frames in ${timeoutMs} ms (${JSON.stringify(r)})`);
      await sleep(100);
    }
  };
  return {
    report,
    waitForFrames,
    async stop() {
      worker.postMessage("stop");
      await Promise.race([new Promise((resolve) => worker.once("exit", resolve)), sleep(2000)]);
      await worker.terminate();
    },
  };
}

describe("fuzzing client messages against the real server", () => {
  for (const seed of seeds()) {
    it(`seed ${seed}: every socket closed with its documented code, the server up, a healthy viewer without a gap`, async () => {
      const replay = `seed ${seed} (replay: FUZZ_SEEDS=${seed} npx vitest run test/integration/fuzz.test.ts)`;
      const server = await startServerProcess(SERVER_ARGS);
      const healthy = startHealthyViewer(server.wsBase + "ws/cam0");
      try {
        await healthy.waitForFrames(10, 15_000);
        const watchedFrom = Date.now();

        const storm: Storm = { failures: [], closeCodes: new Map(), connections: 0, messages: 0, refusals: 0 };
        const r = mulberry32(seed);
        const slots = SLOTS[0] + int(r, SLOTS[1] - SLOTS[0] + 1);
        const deadline = Date.now() + STORM_MS;
        const budget = { left: MAX_MESSAGES_PER_SEED };
        await Promise.all(Array.from({ length: slots }, (_, slot) => runSlot(server, storm, slot, seed, deadline, budget)));

        // The healthy viewer goes on after the storm.
        const before = (await healthy.report()).frames;
        const seen = await healthy.waitForFrames(before + 15, 10_000);
        const failures = [...storm.failures];
        for (const [prev, cur] of seen.gaps) failures.push(`healthy viewer: frame ${cur} after ${prev}`);
        if (seen.skipped.length > 0) failures.push(`healthy viewer was sent skipped: ${JSON.stringify(seen.skipped)}`);
        if (!seen.open) failures.push(`healthy viewer's socket is not open: ${JSON.stringify(seen.closed)} ${seen.errors.join("; ")}`);
        const watchedMs = Date.now() - watchedFrom;
        if (seen.frames < (watchedMs / 1000) * 30 * 0.5) failures.push(`healthy viewer got only ${seen.frames} frames in ${watchedMs} ms`);

        if (!isAlive(server.pid) || server.child.exitCode !== null) failures.push(`server process died:\n${server.output().slice(-3000)}`);
        const health = await fetch(server.url + "healthz", { signal: AbortSignal.timeout(5000) });
        const body = (await health.json()) as { status?: string; streams?: Record<string, string> };
        if (health.status !== 200 || body.status !== "ok") failures.push(`/healthz: ${health.status} ${JSON.stringify(body)}`);
        if (body.streams?.cam0 !== "live") failures.push(`cam0 is ${body.streams?.cam0} after the storm`);
        // Every fuzzing viewer is gone: only the healthy one is left.
        let count = await viewerCount(server);
        for (let i = 0; i < 50 && count !== 1; i++) {
          await sleep(100);
          count = await viewerCount(server);
        }
        if (count !== 1) failures.push(`cam0 has ${count} viewers after every fuzzing socket closed; expected 1`);
        // stderr is the JSON log only (nothing through console.error, no Node warnings), and nothing at level error.
        for (const line of server.stderr().split("\n").filter((l) => l.trim() !== "")) {
          let entry: { level?: string };
          try {
            entry = JSON.parse(line) as { level?: string };
          } catch {
            failures.push(`server stderr line is not a JSON log line: ${line.slice(0, 300)}`);
            continue;
          }
          if (entry.level === "error" || entry.level === "fatal") failures.push(`server logged an error: ${line.slice(0, 1000)}`);
        }

        const codes = [...storm.closeCodes].sort(([a], [b]) => a.localeCompare(b)).map(([c, n]) => `${c}×${n}`).join(" ");
        console.info(`fuzz seed ${seed}: ${slots} slots, ${storm.connections} connections, ${storm.messages} messages, ${storm.refusals} refusals; closes ${codes}`);
        expect(storm.messages, `${replay}: too few messages sent`).toBeGreaterThan(1000);
        expect(failures.slice(0, 30), `${replay}: ${failures.length} failures`).toEqual([]);
      } catch (err) {
        if (err instanceof Error && !err.message.startsWith(`seed ${seed}`)) err.message = `${replay}: ${err.message}`;
        if (err instanceof Error && !isAlive(server.pid)) err.message += `\nThe server died:\n${server.output().slice(-4000)}`;
        throw err;
      } finally {
        await healthy.stop();
        await server.stop("SIGTERM");
        await stopAllServers();
      }
    });
  }
});
