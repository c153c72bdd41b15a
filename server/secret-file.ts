// Reads a file that holds a secret (viewer tokens, a password), so that the secret need not be on the
// command line, where every local user can read it in `ps`. Errors name the flag or key and the path,
// never the contents; a file that other users may open gets a warning for the console and dashboard.

import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { ServerWarning } from "../shared/api.js";
import { ConfigError } from "./config-error.js";

export const SECRET_FILE_MODE = "CC_WARN_SECRET_FILE_MODE";

/** A secret file is a line or a short list: anything bigger is not the file that was meant. */
export const MAX_SECRET_FILE_BYTES = 1024 * 1024;

export interface SecretFile {
  /** The file's text (UTF-8) without its trailing line break(s). Never empty. */
  readonly text: string;
  /** Set when group or others have any permission on it (mode & 0o077). */
  readonly warning: ServerWarning | null;
}

/** `key` names where the path came from, e.g. "--token-file" or "cams.json: tokenFile". */
export function readSecretFile(path: string, key: string): SecretFile {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw new ConfigError(key, `cannot read ${path}: ${describeFsError(err)}`);
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new ConfigError(key, `${path} is a directory, not a file holding the secret`);
    // Pipes and devices (e.g. a shell's <(…)) have no size or meaningful mode: read them up to the limit.
    if (stat.isFile() && stat.size > MAX_SECRET_FILE_BYTES) {
      throw new ConfigError(key, `${path} has ${stat.size} bytes; a secret file holds at most ${MAX_SECRET_FILE_BYTES}`);
    }
    const bytes = readUpTo(fd, MAX_SECRET_FILE_BYTES + 1, path, key);
    if (bytes.length > MAX_SECRET_FILE_BYTES) throw new ConfigError(key, `${path} holds more than ${MAX_SECRET_FILE_BYTES} bytes`);
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new ConfigError(key, `${path} is not UTF-8 text`);
    }
    text = text.replace(/^\uFEFF/, "").replace(/[\r\n]+$/, "");
    if (text === "") throw new ConfigError(key, `${path} is empty`);
    const open = stat.isFile() ? stat.mode & 0o077 : 0;
    const warning =
      open === 0
        ? null
        : {
            code: SECRET_FILE_MODE,
            message: `${key} ${path} holds a secret and is open to other users (mode ${(stat.mode & 0o777).toString(8).padStart(4, "0")}): chmod 600 ${path}`,
          };
    return { text, warning };
  } finally {
    closeSync(fd);
  }
}

function readUpTo(fd: number, limit: number, path: string, key: string): Uint8Array {
  const buffer = Buffer.alloc(limit);
  let length = 0;
  try {
    for (;;) {
      const n = readSync(fd, buffer, length, limit - length, null);
      if (n === 0) break;
      length += n;
      if (length === limit) break;
    }
  } catch (err) {
    throw new ConfigError(key, `cannot read ${path}: ${describeFsError(err)}`);
  }
  return buffer.subarray(0, length);
}

/** "ENOENT: no such file or directory" without Node's ", open 'PATH'" tail (the message already names the path). */
function describeFsError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/, \w+ '.*'$/, "");
}
