/**
 * Reading one unosql file: the checksum prefix, then compression and
 * encryption undone in the order the format note's section 6 gives, then
 * the JSON checked and parsed.
 *
 * @module
 */

import {
  Damage,
  deriveKeys,
  inflate,
  isCurrentEnvelope,
  isLegacyEnvelope,
  isZlibHeader,
  KeyProblem,
  looksLikeEnvelope,
  openEnvelope,
  stripChecksum,
  type UnosqlFormat,
  type UnosqlKeys,
} from "./unosql_format.ts";
import { type Parsed, parseText } from "./unosql_json.ts";

/** What the reader needs to open encrypted payloads. */
export interface KeySource {
  /** The caller's key bytes, if given. */
  readonly key: Uint8Array | undefined;
  /**
   * Derives (once per format) the keys; throws `TypeError` when the salt
   * cannot be found.
   */
  readonly keys: (format: UnosqlFormat) => Promise<UnosqlKeys>;
}

/** A decoded file. */
export interface ReadFile {
  /** The records. */
  readonly parsed: Parsed;
  /** The format its envelope showed (else the one assumed). */
  readonly format: UnosqlFormat;
  /** Whether it was encrypted. */
  readonly encrypted: boolean;
  /** Whether it was compressed. */
  readonly compressed: boolean;
  /** Whether a checksum prefix was checked. */
  readonly checksum: boolean;
}

/**
 * A legacy envelope whose MAC did not match: a wrong key or iteration count
 * when every encrypted file fails so, otherwise damage.
 */
export class LegacyMacMismatch extends Damage {}

const BRACKET = 0x5b, BRACE = 0x7b;

/**
 * Reads one file.
 *
 * @param file The bytes.
 * @param assumed The version.
 * @param prefixed Whether it starts with the 32-byte SHA-256.
 * @param keys The key source.
 * @param fixed Whether the version is known; if not (a backup: the same
 *   bytes in both versions unless encrypted), an envelope tells it.
 * @returns The records and how they were stored.
 * @throws {Damage} A check failed (offsets in the file where known).
 * @throws {KeyProblem} Encrypted without a key, or the key does not open it.
 */
export async function readFile(
  file: Uint8Array,
  assumed: UnosqlFormat,
  prefixed: boolean,
  keys: KeySource,
  fixed: boolean,
): Promise<ReadFile> {
  let format = assumed;
  const payload = prefixed ? await stripChecksum(file) : file;
  const base = prefixed ? 32 : 0;
  let encrypted = false, compressed = false;
  let text: Uint8Array | undefined;
  let textBase: number | undefined;
  let p = payload;
  let at: number | undefined = base;
  for (let layer = 0; text === undefined; layer++) {
    if (!fixed && looksLikeEnvelope(p)) {
      // A current envelope proves itself without a key; any other is legacy.
      format = await isCurrentEnvelope(p) ? "current" : "legacy";
      if (
        format === "legacy" && keys.key !== undefined && keys.key.length !== 16
      ) {
        throw new KeyProblem(
          `holds a legacy envelope (its SHA-256 "MAC" is not the current keyless one), which needs a 16-byte key, not ${keys.key.length} bytes`,
        );
      }
    }
    if (format === "current" && await isCurrentEnvelope(p)) {
      text = await open(format, keys, p, at);
      encrypted = true;
    } else if (
      format === "legacy" && keys.key !== undefined && looksLikeEnvelope(p) &&
      await isLegacyEnvelope(p, (await keys.keys(format)).mac!)
    ) {
      text = await open(format, keys, p, at);
      encrypted = true;
    } else if (p[0] === BRACKET || p[0] === BRACE) {
      text = p;
      textBase = at;
    } else if (layer === 0 && isZlibHeader(p)) {
      p = await inflate(p, base);
      compressed = true;
      at = undefined;
    } else if (format === "legacy" && looksLikeEnvelope(p)) {
      if (keys.key === undefined) {
        throw new KeyProblem(
          "is encrypted (a legacy AES-128-CBC envelope); pass its key (16 bytes) and iteration count",
        );
      }
      throw new LegacyMacMismatch(
        "mac",
        `its envelope's MAC (${at === undefined ? "inflated " : ""}bytes ${
          (at ?? 0) + 16
        }..${
          (at ?? 0) + 48
        }) does not match: the key or iteration count is wrong, or the ciphertext is damaged`,
        at === undefined ? {} : { offset: at + 16 },
      );
    } else if (format === "current" && looksLikeEnvelope(p)) {
      throw new Damage(
        "mac",
        `its envelope's MAC (${at === undefined ? "inflated " : ""}bytes ${
          (at ?? 0) + 16
        }..${
          (at ?? 0) + 48
        }) does not match the SHA-256 of its IV and ciphertext: the ciphertext is damaged`,
        at === undefined ? {} : { offset: at + 16 },
      );
    } else {
      const where = at === undefined ? "the inflated data" : `byte ${at}`;
      throw new Damage(
        "shape",
        `holds neither JSON, a zlib stream nor an encryption envelope at ${where}${
          prefixed ? "" : " (it is not a unosql file, or it is damaged)"
        }`,
        at === undefined ? {} : { offset: at },
      );
    }
  }
  try {
    return {
      parsed: parseText(text),
      format,
      encrypted,
      compressed,
      checksum: prefixed,
    };
  } catch (e) {
    if (!(e instanceof Damage)) throw e;
    // With a verified MAC, undecodable plaintext that does not even start
    // like unosql's JSON means the key opened it wrongly (1 in 256 wrong
    // keys gives valid padding).
    if (
      encrypted && format === "current" && text[0] !== BRACKET &&
      text[0] !== BRACE
    ) {
      throw new KeyProblem(
        "decrypts to bytes that are not unosql's JSON: the key, salt or iteration count is wrong",
      );
    }
    const offset = textBase !== undefined && e.textOffset !== undefined
      ? textBase + e.textOffset
      : undefined;
    const detail = encrypted || compressed
      ? ` (in its ${
        [compressed && "inflated", encrypted && "decrypted"]
          .filter(Boolean).join(", ")
      } JSON text)`
      : "";
    throw new Damage(e.check, `${e.message}${detail}`, {
      ...(offset !== undefined ? { offset } : {}),
      ...(e.textOffset !== undefined ? { textOffset: e.textOffset } : {}),
    });
  }
}

async function open(
  format: UnosqlFormat,
  keys: KeySource,
  p: Uint8Array,
  at: number | undefined,
): Promise<Uint8Array> {
  if (keys.key === undefined) {
    throw new KeyProblem(
      `is encrypted (a ${
        format === "current" ? "current AES-256" : "legacy AES-128"
      } envelope${
        at === undefined ? "" : ` at byte ${at}`
      }); pass its key and iteration count`,
    );
  }
  return await openEnvelope(format, await keys.keys(format), p);
}

/**
 * A key source that derives the keys once per format, on first use.
 *
 * @param key The caller's key, if any.
 * @param iterations The iteration count, or `undefined` for unosql's
 *   default of the format (1000 current, 10000 legacy).
 * @param salt Finds the salt (throws `TypeError` when it cannot).
 * @returns The key source.
 */
export function keySource(
  key: Uint8Array | undefined,
  iterations: number | undefined,
  salt: () => Promise<Uint8Array>,
): KeySource {
  const derived = new Map<UnosqlFormat, Promise<UnosqlKeys>>();
  let salted: Promise<Uint8Array> | undefined;
  return {
    key,
    keys: (format) => {
      let keys = derived.get(format);
      if (keys === undefined) {
        const n = iterations ?? (format === "current" ? 1000 : 10000);
        keys = (salted ??= salt()).then((s) => deriveKeys(format, key!, s, n));
        derived.set(format, keys);
      }
      return keys;
    },
  };
}
