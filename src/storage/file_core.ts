/**
 * The file storage's shared state: its settings, the log file and its
 * handles, the key directory, the commits waiting to be written, the
 * counters, and the few helpers every part uses. `FileStorage` (file.ts:
 * reads, commits and their writing) is the façade over one
 * {@linkcode FileCore}; opening and recovery (file_open.ts) and compaction
 * (file_rewrite.ts) are functions over it.
 *
 * @module
 */

import type { Log } from "../logger.ts";
import { resolveLog } from "../logger.ts";
import { ClosedError } from "../errors.ts";
import type { Durability, FileStorageOptions } from "./file_options.ts";
import { applyFrame, type Queued, type TailFrame } from "./file_log.ts";
import { faults, PositionedReader } from "./file_io.ts";
import type { Damage } from "./file_scan.ts";
import type { FileHeader, Frame } from "./file_format.ts";
import { KeyDir } from "./file_keydir.ts";
import type { CopyProgress } from "./file_compact.ts";

/** An fsync that takes this long or more is logged ("slow-fsync"), ms. */
const SLOW_FSYNC_MS = 1000;

/** The state of one open file storage. Internal. */
export class FileCore {
  /** The path the storage was opened with. */
  readonly path: string;
  /** The log's path with symbolic links resolved: what compaction replaces. */
  readonly realPath: string;
  readonly durability: Durability;
  readonly readOnly: boolean;
  /** Salvage: keep reading past damage (repair), and never change the file. */
  readonly salvage: boolean;
  readonly flushInterval: number;
  readonly compactRatio: number;
  readonly compactMinBytes: number;
  /** Positioned reads of the log. */
  readonly reader: PositionedReader;
  /** Every live key and where its value is. */
  readonly dir: KeyDir;
  /** Where torn tails, repairs and slow fsyncs are reported. */
  readonly log: Log;
  header: FileHeader;
  /** The log, open; for a writer, also what holds the lock. */
  file: Deno.FsFile;
  /** The sequence number of the last commit. */
  seq = 0;
  /** The log's length: where the next frame goes. */
  fileBytes = 0;
  /** Commits accepted and not yet written, oldest first. */
  queue: Queued[] = [];
  /** Batched modes: resolves when the queued commits are written. */
  written: PromiseWithResolvers<void> | undefined;
  /** The file operations, one at a time (see {@linkcode FileCore.withIo}). */
  io: Promise<unknown> = Promise.resolve();
  compacting: Promise<boolean> | undefined;
  /** While a compaction runs: who is told how far its copy is. */
  compactProgress: CopyProgress | undefined;
  /**
   * While a compaction runs: the sequence number its snapshot includes, and
   * the later frames written since, which go to the new file too.
   */
  tail: { seq: number; frames: TailFrame[] } | undefined;
  /** Writes that failed (a compaction under way gives up after one). */
  failures = 0;
  closed = false;
  commitsSinceCompaction = 0;
  readonly stats = {
    commits: 0,
    flushes: 0,
    syncs: 0,
    compactions: 0,
    tornBytes: 0,
    repairedRanges: 0,
    repairedBytes: 0,
    damage: [] as readonly Damage[],
    damagedCopy: undefined as string | undefined,
    lastError: undefined as string | undefined,
    /** Keys loaded from the key directory hint at open (0: none used). */
    hintKeys: 0,
  };

  /**
   * @param path The path the storage is opened with.
   * @param realPath The log's path, links resolved.
   * @param options The storage's options (checked).
   * @param file The log, open (and locked for a writer).
   * @param reader A handle of its own for positioned reads.
   * @param header The header of a new log (replaced by the file's).
   */
  constructor(
    path: string,
    realPath: string,
    options: FileStorageOptions,
    file: Deno.FsFile,
    reader: Deno.FsFile,
    header: FileHeader,
  ) {
    this.reader = new PositionedReader(path, reader);
    this.dir = new KeyDir(this.reader);
    this.path = path;
    this.realPath = realPath;
    this.durability = options.durability ?? "strict";
    this.readOnly = options.readOnly === true;
    this.salvage = this.readOnly && options.repair === true;
    this.flushInterval = options.flushInterval ?? 100;
    this.compactRatio = options.compactRatio ?? 2;
    this.compactMinBytes = options.compactMinBytes ?? 1 << 20;
    this.log = resolveLog(options.logger, options.logLevel);
    this.file = file;
    this.header = header;
  }

  /**
   * Runs a file operation after every earlier one.
   *
   * @param fn The operation.
   * @returns What it returns.
   */
  withIo<R>(fn: () => Promise<R>): Promise<R> {
    const run = this.io.then(fn);
    this.io = run.catch(() => {});
    return run;
  }

  /**
   * fsyncs the log (or a compaction's file), warning when it is slow.
   *
   * @param file The file.
   * @param how `sync` (data and metadata) or `syncData`.
   * @param name Its path, for the warning.
   */
  async sync(
    file: Deno.FsFile,
    how: "sync" | "syncData",
    name: string,
  ): Promise<void> {
    if (faults.beforeSync !== undefined) await faults.beforeSync(name);
    const started = performance.now();
    await (how === "sync" ? file.sync() : file.syncData());
    const ms = performance.now() - started;
    if (ms >= SLOW_FSYNC_MS) {
      this.log.warn(
        "slow-fsync",
        `an fsync of '${name}' took ${Math.round(ms)} ms`,
        { path: name, ms: Math.round(ms) },
      );
    }
  }

  /**
   * The error of a call after `close()`.
   *
   * @param action What was attempted (`get`, `commit`...).
   * @returns The error.
   */
  closedError(action: string): ClosedError {
    return new ClosedError(
      `Cannot ${action}: the file storage '${this.path}' is closed`,
    );
  }

  /**
   * Applies a frame read from the log at `base` to the directory.
   *
   * @param frame The frame.
   * @param base Where it starts in the file.
   * @param version The file's format version.
   */
  apply(frame: Frame, base: number, version: number): void {
    applyFrame(this.dir, frame, base, version, this.reader.gen);
  }
}
