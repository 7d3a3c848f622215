/**
 * The options of the compression and encryption layer
 * (src/crypto/codec_storage.ts), and their checks.
 *
 * @module
 */

import type { Logger, LogLevel } from "../logger.ts";
import type { EncryptionOptions } from "./codec_wrap.ts";

/** Compress values from this many bytes by default. */
export const DEFAULT_MIN_BYTES = 256;

/**
 * Compression: on, or on from a size.
 *
 * Compression runs before encryption, so in an encrypted database the
 * stored size of a value tells how well it compressed: whoever can see the
 * file (or the KV) and can get chosen text stored next to a secret in the
 * same value (a document holding both) can learn that secret from sizes,
 * one guess at a time (as CRIME/BREACH did to HTTPS). Leave compression off
 * for encrypted values that mix attacker-chosen text with secrets. Sizes are
 * visible in any case (to 16 bytes), compressed or not.
 */
export type CompressionOptions = boolean | {
  /** Compress values of at least this many bytes. Default 256. */
  readonly minBytes?: number;
};

/** Options of {@linkcode CodecStorage.open}. */
export interface CodecOptions {
  /** Encrypt every value (needed to open an encrypted database). */
  readonly encryption?: EncryptionOptions | undefined;
  /**
   * Compress values with deflate when it makes them smaller. With
   * `encryption`, mind the length side channel
   * ({@linkcode CompressionOptions}).
   */
  readonly compression?: CompressionOptions | undefined;
  /** Where key-rotation progress is reported. Default: silent. */
  readonly logger?: Logger | undefined;
  /** The least level passed to `logger`. Default `"info"`. */
  readonly logLevel?: LogLevel | undefined;
}

export function minBytesOf(
  compression: CompressionOptions | undefined,
  action: string,
): number | null | undefined {
  if (compression === undefined) return undefined;
  if (compression === false) return null;
  if (compression === true) return DEFAULT_MIN_BYTES;
  if (typeof compression !== "object" || compression === null) {
    throw new TypeError(
      `${action}: compression must be true, false or { minBytes }`,
    );
  }
  const min = compression.minBytes ?? DEFAULT_MIN_BYTES;
  if (!(Number.isSafeInteger(min) && min >= 0)) {
    throw new RangeError(
      `${action}: compression.minBytes must be a whole number from 0, got ${min}`,
    );
  }
  return min;
}
