/**
 * The file storage's options, their checks, and its counters.
 *
 * @module
 */

import { type Logger, type LogLevel, resolveLog } from "../logger.ts";
import type { Damage } from "./file_scan.ts";

/**
 * When a commit counts as written:
 *
 * - `"strict"`: its promise resolves after its bytes are on disk (fsync);
 *   commits that arrive together share one fsync (group commit).
 * - `"batched"`: it resolves at once; commits are written and fsynced
 *   together, at the latest `flushInterval` ms after the oldest of them
 *   (a timer), earlier once a number of them that adapts to the write rate
 *   (32 to 16 384) is queued. The bound: a commit acknowledged at time `t`
 *   is on disk by `t + flushInterval + W`, where `W` is the time to finish
 *   the write and fsync already under way (or the last step of a running
 *   compaction: its tail and a rename) and then its own; `W` is the disk's
 *   fsync latency, milliseconds on an idle disk, more under load. A process
 *   or machine crash loses at most the commits younger than that.
 * - `"none"`: like `"batched"` but never fsynced: a process crash loses the
 *   unwritten window, a power cut whatever the OS had not written back.
 */
export type Durability = "strict" | "batched" | "none";

/** Options of {@linkcode FileStorage.open}. */
export interface FileStorageOptions {
  /** When commits are durable. Default `"strict"`. */
  readonly durability?: Durability;
  /**
   * How long to wait for another process's lock before a `LockedError`, ms.
   * Default `5000`.
   */
  readonly lockTimeout?: number;
  /**
   * Open without the lock and refuse writes: several readers may open a file
   * while one writer has it. A reader sees the commits that were in the file
   * when it opened (and more with `refresh()`). It never changes the file (a
   * torn tail is left in place).
   */
  readonly readOnly?: boolean;
  /**
   * Salvage a damaged log: keep every intact commit, drop the damaged bytes
   * (reported in `stats()`, with `damage` listing each range) after copying
   * the damaged file aside, and rewrite the log. Without it a damaged log is
   * an `IntegrityError`.
   *
   * With `readOnly: true` it salvages without changing anything: no lock,
   * no truncation, no rewrite, no copy or other file beside the log; the
   * intact commits are readable and the damage is listed in `stats()`.
   * That is how a damaged database is copied to a new one.
   */
  readonly repair?: boolean;
  /**
   * `"batched"` and `"none"`: the longest a commit waits before its write
   * (and, for `"batched"`, fsync) starts, ms; see {@linkcode Durability} for
   * the whole bound. Default `100`.
   */
  readonly flushInterval?: number;
  /**
   * Compact on its own when the log is this many times the size of the live
   * data (and over `compactMinBytes`). Default `2`.
   */
  readonly compactRatio?: number;
  /** No automatic compaction below this file size, bytes. Default 1 MiB. */
  readonly compactMinBytes?: number;
  /**
   * Where to report torn tails, repairs, slow fsyncs, quota pressure and
   * key-rotation progress (`console` is one). Default: silent.
   */
  readonly logger?: Logger;
  /** The least level passed to `logger`. Default `"info"`. */
  readonly logLevel?: LogLevel;
}

/** Counters of a file storage, from `stats()`. */
export type FileStorageStats = {
  /** The log file's path. */
  readonly path: string;
  /** The durability mode. */
  readonly durability: Durability;
  /** Whether it was opened read-only. */
  readonly readOnly: boolean;
  /** Bytes in the log file (written, not counting commits still queued). */
  readonly fileBytes: number;
  /** Bytes of live keys and values (8 bytes of lengths each included). */
  readonly liveBytes: number;
  /** Keys held. */
  readonly keys: number;
  /** Commits accepted since open. */
  readonly commits: number;
  /** Commits accepted but not yet written. */
  readonly queued: number;
  /** Writes of queued commits to the file. */
  readonly flushes: number;
  /** fsyncs of the log. */
  readonly syncs: number;
  /**
   * Reads of stored values from the file since open (records close
   * together, such as a page of a scan or of the change feed, share one).
   */
  readonly valueReads: number;
  /** Compactions done since open. */
  readonly compactions: number;
  /** Bytes of a torn last commit cut off when the file was opened. */
  readonly tornBytes: number;
  /** Damaged byte ranges dropped by `repair` when the file was opened. */
  readonly repairedRanges: number;
  /** Bytes dropped by `repair`. */
  readonly repairedBytes: number;
  /**
   * The damaged ranges `repair` skipped, in file order: where each starts,
   * how many bytes it spans (0 for something missing, such as the end of a
   * snapshot cut off) and what is wrong there.
   */
  readonly damage: readonly Damage[];
  /** Where `repair` copied the damaged file, if it did. */
  readonly damagedCopy: string | undefined;
  /** Failed writes or fsyncs since open. */
  readonly writeErrors: number;
  /** The last write or compaction error, if any. */
  readonly lastError: string | undefined;
  /**
   * Keys loaded at open from the key directory hint a clean close wrote
   * (`<log>.hint`, FORMAT.md), instead of reading the log they are in; 0
   * when the log was read whole.
   */
  readonly hintKeys: number;
  /**
   * Frames of commits not yet written that RAM holds (their values are
   * read from them until the flush): 0 once everything is written, or
   * taken back after a failed write.
   */
  readonly unwrittenFrames: number;
};

/**
 * Checks the options of `FileStorage.open` before anything is opened.
 *
 * @param options The options.
 * @param action For error messages.
 * @throws {TypeError} A bad durability or logger.
 * @throws {RangeError} A bad number.
 */
export function checkOptions(
  options: FileStorageOptions,
  action: string,
): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${action}: options must be an object`);
  }
  const { durability } = options;
  if (
    durability !== undefined && durability !== "strict" &&
    durability !== "batched" && durability !== "none"
  ) {
    throw new TypeError(
      `${action}: durability must be "strict", "batched" or "none", got ${
        JSON.stringify(durability)
      }`,
    );
  }
  const positive = (
    name: keyof FileStorageOptions,
    min: number,
    max = Number.MAX_VALUE,
  ) => {
    const value = options[name];
    if (value === undefined) return;
    if (typeof value !== "number" || !(value >= min && value <= max)) {
      throw new RangeError(
        `${action}: ${name} must be a finite number from ${min}${
          max === Number.MAX_VALUE ? "" : ` to ${max}`
        }, got ${String(value)}`,
      );
    }
  };
  // Timer delays: past 2 ** 31 - 1 ms a timer fires after 1 ms.
  positive("lockTimeout", 0, 2 ** 31 - 1);
  positive("flushInterval", 1, 2 ** 31 - 1);
  positive("compactRatio", 1);
  positive("compactMinBytes", 0);
  resolveLog(options.logger, options.logLevel);
}
