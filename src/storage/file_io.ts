/**
 * The file storage's I/O helpers, its error wording, and the fault points
 * tests use.
 *
 * @module
 */

import {
  ClosedError,
  IntegrityError,
  QuotaError,
  TetherError,
} from "../errors.ts";
import { concatBytes } from "../bytes.ts";
import { type LogSource, SCAN_WINDOW } from "./file_scan.ts";

/**
 * Points where tests make writes fail or stop compaction. Not part of the
 * public API.
 */
export const faults: {
  /** Called before each write to the log; throw to fail it. */
  beforeWrite?: (() => void) | undefined;
  /**
   * Called inside a synchronous write of the log, before it (its time
   * counts as the write's: a slow disk for the `slow-write` warning).
   */
  syncWrite?: (() => void) | undefined;
  /**
   * Awaited before each fsync of a file, with its name (the log's path, or a
   * compaction's new file); throw (or reject) to fail that fsync, hold the
   * promise to hold it.
   */
  beforeSync?: ((name: string) => Promise<void> | void) | undefined;
  /** Called at each step of a compaction; throw to stop it there. */
  compactStep?: ((step: string) => void) | undefined;
  /**
   * Called before each write to a compaction's new file, with its length;
   * throw to fail it (as a full disk would, with an error whose `code` is
   * `"ENOSPC"`).
   */
  compactWrite?: ((bytes: number) => void) | undefined;
} = {};
/** The directory of a path. */
export function dirname(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i < 0 ? "." : i === 0 ? path.slice(0, 1) : path.slice(0, i);
}

/** Helper of the file storage. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : concatBytes(parts);
}

/** Helper of the file storage. */
export async function writeAll(
  file: Deno.FsFile,
  bytes: Uint8Array,
): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await file.write(bytes.subarray(at));
}

/**
 * The most bytes a strict flush writes with a synchronous `write` (a copy
 * into the page cache: ~30 µs for 150 KB measured on a 2-core VM) instead
 * of an asynchronous one, whose trip through the runtime's thread pool took
 * 0.5-1 ms for the same 150 KB while the database was busy (60-120 µs
 * alone) before its fsync could start.
 */
export const SYNC_WRITE_MAX = 256 * 1024;

/**
 * A synchronous write that holds the event loop this long or more is logged
 * (`"slow-write"`), ms: the page cache was under writeback pressure, or the
 * disk is slow (the asynchronous path would have waited without holding it).
 */
export const SLOW_WRITE_MS = 20;

/**
 * Writes `bytes` at the file's position: synchronously when they are at
 * most {@linkcode SYNC_WRITE_MAX} and an fsync follows at once (`strict`:
 * the dirty pages never pile up, so the write does not wait for the disk),
 * else asynchronously.
 *
 * @param file The file.
 * @param bytes The bytes.
 * @param strict Whether an fsync follows this write at once.
 * @returns A promise that settles once every byte is written, with how long
 *   the write held the event loop, ms (0 when it was asynchronous).
 */
export function writeLog(
  file: Deno.FsFile,
  bytes: Uint8Array,
  strict: boolean,
): Promise<number> {
  if (!strict || bytes.length > SYNC_WRITE_MAX) {
    return writeAll(file, bytes).then(() => 0);
  }
  const started = performance.now();
  try {
    faults.syncWrite?.();
    let at = 0;
    while (at < bytes.length) at += file.writeSync(bytes.subarray(at));
  } catch (e) {
    return Promise.reject(e);
  }
  return Promise.resolve(performance.now() - started);
}

/**
 * The log in an open file, read a window at a time with synchronous
 * positioned reads into one reused buffer (grown only for a frame larger
 * than a window): opening never holds the whole file in RAM.
 *
 * @param file The log, open for reading.
 * @param size Its size (bytes after it are not read).
 * @returns The source for `scanLog`.
 */
export function fileSource(file: Deno.FsFile, size: number): LogSource {
  let buf = new Uint8Array(Math.min(size, SCAN_WINDOW));
  return {
    size,
    read(at: number, len: number): Uint8Array {
      len = Math.max(0, Math.min(len, size - at));
      if (len > buf.length) buf = new Uint8Array(len);
      file.seekSync(at, Deno.SeekMode.Start);
      let got = 0;
      while (got < len) {
        const n = file.readSync(buf.subarray(got, len));
        if (n === null) break;
        got += n;
      }
      return buf.subarray(0, got);
    },
  };
}

/** Helper of the file storage. */
export async function syncDir(path: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  const dir = await Deno.open(dirname(path), { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

/** Helper of the file storage. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Helper of the file storage. */
export function isNoSpace(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT" ||
    /no space left|quota exceeded/i.test(errorText(e));
}

/** The error a failed compaction rejects with. */
export function compactionError(
  path: string,
  cause: unknown,
  renamed: boolean,
): Error {
  if (renamed) {
    return new TetherError(
      `Cannot finish compacting '${path}': the new file replaced the log, but ${
        errorText(cause)
      }; the database uses the new file`,
      { cause },
    );
  }
  if (cause instanceof TetherError) return cause;
  const message = `Cannot compact '${path}': ${
    errorText(cause)
  }; the new file was removed and the database is unchanged, still in the old file`;
  return isNoSpace(cause)
    ? new QuotaError(message, { cause })
    : new TetherError(message, { cause });
}

/**
 * Positioned reads of the log through a handle of its own (the writer's
 * handle stays at the end of the file, where appends go).
 */
export class PositionedReader {
  gen = 0;
  /** Reads made (each one seek and read of a run of bytes). */
  reads = 0;
  readonly path: string;
  #file: Deno.FsFile | undefined;

  constructor(path: string, file: Deno.FsFile | undefined) {
    this.path = path;
    this.#file = file;
  }

  /** Switches to another file (a compaction's), bumping the generation. */
  replace(file: Deno.FsFile | undefined): void {
    try {
      this.#file?.close();
    } catch { /* already closed */ }
    this.#file = file;
    this.gen++;
  }

  read(at: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    const file = this.#file;
    if (file === undefined) {
      throw new ClosedError(`Cannot read '${this.path}': it is closed`);
    }
    this.reads++;
    file.seekSync(at, Deno.SeekMode.Start);
    let got = 0;
    while (got < len) {
      const n = file.readSync(out.subarray(got));
      if (n === null || n === 0) {
        throw new IntegrityError(
          `Cannot read '${this.path}' at byte ${at}: the file ends at byte ${
            at + got
          }, before the ${len} bytes the record takes`,
        );
      }
      got += n;
    }
    return out;
  }
}
