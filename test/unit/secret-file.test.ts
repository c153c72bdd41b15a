// readSecretFile (server/secret-file.ts) on real files: the text without its line break, the warning
// for a file other users may open, and errors that name the key and the path but never the secret.

import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { ConfigError } from "../../server/config-error.js";
import { MAX_SECRET_FILE_BYTES, readSecretFile, SECRET_FILE_MODE } from "../../server/secret-file.js";

const SECRET = "s3cret-9f2c4e6a8b0d1f3e5a7c";
const dir = mkdtempSync(join(tmpdir(), "canvascast-secret-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file in the test's directory with exactly this content and mode (chmod: the umask does not decide). */
function secretFile(name: string, content: string | Uint8Array, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

function errorOf(path: string, key = "--secret-file"): ConfigError {
  try {
    readSecretFile(path, key);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe("CC_ERR_CONFIG");
    expect((err as ConfigError).key).toBe(key);
    expect((err as ConfigError).message).not.toContain(SECRET);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("readSecretFile", () => {
  test("the text without its trailing line break (LF, CRLF, several), inner lines and spaces kept; mode 600: no warning", () => {
    expect(readSecretFile(secretFile("lf", `${SECRET}\n`), "k")).toEqual({ text: SECRET, warning: null });
    expect(readSecretFile(secretFile("crlf", `${SECRET}\r\n\r\n`), "k").text).toBe(SECRET);
    expect(readSecretFile(secretFile("none", SECRET), "k").text).toBe(SECRET);
    expect(readSecretFile(secretFile("lines", ` a b \n${SECRET}\n`), "k").text).toBe(` a b \n${SECRET}`);
    expect(readSecretFile(secretFile("bom", `\uFEFF${SECRET}\n`), "k").text).toBe(SECRET);
    expect(readSecretFile(secretFile("owner-only", SECRET, 0o400), "k").warning).toBeNull();
  });

  test("group or others with any permission: a CC_WARN_SECRET_FILE_MODE warning naming the key, path and mode, not the secret", () => {
    for (const mode of [0o640, 0o604, 0o644, 0o620, 0o601]) {
      const path = secretFile(`open-${mode.toString(8)}`, `${SECRET}\n`, mode);
      const { text, warning } = readSecretFile(path, "cams.json: tokenFile");
      expect(text).toBe(SECRET);
      expect(warning?.code, mode.toString(8)).toBe(SECRET_FILE_MODE);
      expect(warning?.message).toContain("cams.json: tokenFile");
      expect(warning?.message).toContain(path);
      expect(warning?.message).toContain(`mode 0${mode.toString(8)}`);
      expect(warning?.message).toContain(`chmod 600 ${path}`);
      expect(warning?.message).not.toContain(SECRET);
    }
  });

  test("missing, a directory, empty, only a line break, not UTF-8, too big: errors naming the key and the path", () => {
    const missing = join(dir, "missing");
    expect(errorOf(missing).message).toBe(`--secret-file: cannot read ${missing}: ENOENT: no such file or directory`);
    const sub = join(dir, "sub");
    mkdirSync(sub);
    expect(errorOf(sub).message).toContain(`${sub} is a directory`);
    expect(errorOf(secretFile("empty", "")).message).toContain("is empty");
    expect(errorOf(secretFile("newline", "\n")).message).toContain("is empty");
    // A device is read like a file, up to its end: /dev/null has none.
    expect(errorOf("/dev/null").message).toContain("/dev/null is empty");
    expect(errorOf(secretFile("latin1", Buffer.from([0x73, 0xe9, 0x63, 0x0a]))).message).toContain("is not UTF-8");
    const big = secretFile("big", `${SECRET}\n${"x".repeat(MAX_SECRET_FILE_BYTES)}`);
    expect(errorOf(big).message).toMatch(/has \d+ bytes; a secret file holds at most/);
    // Exactly at the limit is read.
    expect(readSecretFile(secretFile("at-limit", "y".repeat(MAX_SECRET_FILE_BYTES)), "k").text).toHaveLength(MAX_SECRET_FILE_BYTES);
  });

  test("mode 000: EACCES names the path (as root, which may read anything, the secret is read)", () => {
    const path = secretFile("no-read", `${SECRET}\n`, 0o000);
    if (process.getuid?.() === 0) {
      expect(readSecretFile(path, "k").text).toBe(SECRET);
      return;
    }
    expect(errorOf(path).message).toBe(`--secret-file: cannot read ${path}: EACCES: permission denied`);
  });
});
