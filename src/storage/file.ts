/**
 * The file storage: every key in an in-memory key directory pointing at its
 * value in a checksummed log file (see FORMAT.md, "File log"), values read
 * with positioned reads, with group commit, torn-tail recovery, repair,
 * compaction and a one-writer lock.
 *
 * @module
 */

import { type Log, resolveLog } from "../logger.ts";
import {
  checkOptions,
  type Durability,
  type FileStorageOptions,
  type FileStorageStats,
} from "./file_options.ts";
import {
  applyFrame,
  type Queued,
  type TailFrame,
  upgradeFrame,
} from "./file_log.ts";
import {
  compactionError,
  concat,
  dirname,
  errorText,
  faults,
  isNoSpace,
  PositionedReader,
  readAll,
  syncDir,
  writeAll,
} from "./file_io.ts";

export type {
  Durability,
  FileStorageOptions,
  FileStorageStats,
} from "./file_options.ts";
export { faults } from "./file_io.ts";
import {
  ClosedError,
  IntegrityError,
  QuotaError,
  TetherError,
  TooLargeError,
} from "../errors.ts";
import {
  encodeFrame,
  encodeHeader,
  FILE_FORMAT_VERSION,
  type FileHeader,
  FLAG_SNAPSHOT,
  type Frame,
  HEADER_BYTES,
  MAGIC,
  readFrame,
} from "./file_format.ts";
import { type Damage, scanLog } from "./file_scan.ts";
import { lockReplacement, openLocked, releaseHeld } from "./file_lock.ts";
import {
  type DirUndo,
  KeyDir,
  KeyEntry,
  LEGACY,
  metaArgs,
  stamp,
} from "./file_keydir.ts";
import { copyLive, CopyProgress, SnapshotWriter } from "./file_compact.ts";
import { partsMeta, type RecordParts } from "./file_record.ts";
import { recordMeta } from "../value_codec.ts";
import { binaryString } from "../bytes.ts";
import type {
  ScanOptions,
  Storage,
  StorageCapabilities,
  StorageCommit,
  StorageCommitResult,
  StorageEntry,
} from "./contract.ts";

const MAX_THRESHOLD = 16_384;
const MIN_THRESHOLD = 32;
/** An fsync that takes this long or more is logged ("slow-fsync"), ms. */
const SLOW_FSYNC_MS = 1000;

/**
 * A {@linkcode Storage} kept in one append-only log file. Every key is held
 * in memory with where its value lies in the file; values are read with
 * positioned reads (a key directory, as in Bitcask). The log is read once on
 * open. Use it through `open({ path })`, or directly:
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FileStorage } from "@tether/db/storage";
 * const path = await Deno.makeTempFile({ suffix: ".tdb" });
 * await Deno.remove(path);
 * const storage = await FileStorage.open(path);
 * const key = new Uint8Array([1]);
 * await storage.commit({ sets: [{ key, value: new Uint8Array([42]) }] });
 * await storage.close();
 * const again = await FileStorage.open(path);
 * assert((await again.get(key))?.value[0] === 42);
 * await again.close();
 * ```
 */
export class FileStorage implements Storage {
  /** A file has one writer (this process) and no native expiry. */
  readonly capabilities: StorageCapabilities;

  readonly #path: string;
  readonly #durability: Durability;
  readonly #readOnly: boolean;
  readonly #flushInterval: number;
  readonly #compactRatio: number;
  readonly #compactMinBytes: number;
  /** Positioned reads of the log. */
  readonly #reader: PositionedReader;
  /** Every live key and where its value is. */
  readonly #dir: KeyDir;
  #header: FileHeader;
  /** The log, open; for a writer, also what holds the lock. */
  #file: Deno.FsFile;
  /** The log's path with symbolic links resolved: what compaction replaces. */
  readonly #realPath: string;
  /** Salvage: keep reading past damage (repair), and never change the file. */
  readonly #salvage: boolean;
  #seq = 0;
  #fileBytes = 0;
  #queue: Queued[] = [];
  #flushing: Promise<void> | undefined;
  #io: Promise<unknown> = Promise.resolve();
  #timer: number | undefined;
  /** Batched modes: resolves when the queued commits are written. */
  #written: PromiseWithResolvers<void> | undefined;
  #threshold = 256;
  #lastFlushAt = 0;
  #compacting: Promise<boolean> | undefined;
  /** While a compaction runs: who is told how far its copy is. */
  #compactProgress: CopyProgress | undefined;
  /**
   * While a compaction runs: the sequence number its snapshot includes, and
   * the later frames written since, which go to the new file too.
   */
  #tail: { seq: number; frames: TailFrame[] } | undefined;
  #failures = 0;
  /** Where torn tails, repairs and slow fsyncs are reported. */
  readonly #log: Log;
  #broken: Error | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #commitsSinceCompaction = 0;
  #stats = {
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
  };

  private constructor(
    path: string,
    realPath: string,
    options: FileStorageOptions,
    file: Deno.FsFile,
    reader: Deno.FsFile,
    header: FileHeader,
  ) {
    this.#reader = new PositionedReader(path, reader);
    this.#dir = new KeyDir(this.#reader);
    this.#path = path;
    this.#realPath = realPath;
    this.#durability = options.durability ?? "strict";
    this.#readOnly = options.readOnly === true;
    this.#salvage = this.#readOnly && options.repair === true;
    this.#flushInterval = options.flushInterval ?? 100;
    this.#compactRatio = options.compactRatio ?? 2;
    this.#compactMinBytes = options.compactMinBytes ?? 1 << 20;
    this.#log = resolveLog(options.logger, options.logLevel);
    this.#file = file;
    this.#header = header;
    this.capabilities = {
      nativeExpiry: false,
      shared: false,
      readOnly: this.#readOnly,
    };
  }

  /**
   * Opens (creating it and its directory if missing) a log file: takes the
   * writer's lock (an exclusive lock on the log file itself, whatever path
   * or symbolic link names it), replays the log into memory, cuts off a torn
   * last commit and removes what an interrupted compaction left. Anything
   * wrong other than a torn last commit is an `IntegrityError` naming the
   * byte offset, and the file is left as it is.
   *
   * @param path The log file's path.
   * @param options Durability, lock timeout, read-only, repair, compaction.
   * @returns The open storage.
   * @throws {LockedError} Another writer holds the file past `lockTimeout`.
   * @throws {IntegrityError} The log is damaged or cut short inside a
   *   compacted snapshot (and `repair` is off), or is not a `@tether/db` log.
   * @throws {TypeError} A bad option, or `readOnly` on a missing file.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { FileStorage } from "@tether/db/storage";
   * const dir = await Deno.makeTempDir();
   * const storage = await FileStorage.open(`${dir}/app.tdb`, { durability: "batched" });
   * assert.equal(storage.stats().durability, "batched");
   * await storage.close();
   * ```
   */
  static async open(
    path: string,
    options: FileStorageOptions = {},
  ): Promise<FileStorage> {
    const action = "Cannot open the file storage";
    if (typeof path !== "string" || path.length === 0) {
      throw new TypeError(`${action}: the path must be a non-empty string`);
    }
    checkOptions(options, action);
    const readOnly = options.readOnly === true;
    let file: Deno.FsFile | undefined;
    let reader: Deno.FsFile | undefined;
    let realPath: string | undefined;
    try {
      if (!readOnly) {
        await Deno.mkdir(dirname(path), { recursive: true });
        const locked = await openLocked(path, options.lockTimeout ?? 5000);
        file = locked.file;
        realPath = locked.realPath;
        await Deno.remove(`${realPath}.compact`).catch((e) => {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        });
      } else {
        try {
          file = await Deno.open(path, { read: true });
          realPath = await Deno.realPath(path);
        } catch (e) {
          if (e instanceof Deno.errors.NotFound) {
            throw new TypeError(
              `${action}: '${path}' does not exist, and a read-only open does not create it`,
              { cause: e },
            );
          }
          throw e;
        }
      }
      reader = await Deno.open(realPath, { read: true });
      const bytes = await readAll(file);
      const storage = new FileStorage(path, realPath, options, file, reader, {
        version: FILE_FORMAT_VERSION,
        flags: 0,
        createdAt: Date.now(),
        baseSeq: 0,
        salt: new Uint8Array(16),
      });
      await storage.#replay(bytes, options.repair === true);
      return storage;
    } catch (e) {
      file?.close();
      try {
        reader?.close();
      } catch { /* closed with the storage */ }
      if (!readOnly && realPath !== undefined) releaseHeld(realPath);
      throw e;
    }
  }

  /**
   * Reads the whole log into the key directory (the bytes are dropped
   * after); fixes the tail or repairs.
   */
  async #replay(bytes: Uint8Array, repair: boolean): Promise<void> {
    const path = this.#path;
    if (bytes.length < HEADER_BYTES && isMagicPrefix(bytes)) {
      if (bytes.length > 10 && (bytes[10]! & FLAG_SNAPSHOT) !== 0) {
        // Only a compaction sets this flag, and it fsyncs the whole file
        // before it becomes the log: this one was cut short.
        throw new IntegrityError(
          `Cannot open '${path}': the log is damaged at byte ${bytes.length} of ${bytes.length} (the file ends inside the header of a compacted log: it was cut short); the file was left as it is`,
        );
      }
      // New file, or its creation was cut short before the header was whole.
      if (this.#readOnly) return;
      await this.#file.truncate(0);
      await this.#file.seek(0, Deno.SeekMode.Start);
      await writeAll(this.#file, encodeHeader(this.#header));
      await this.#file.sync();
      await syncDir(this.#realPath);
      this.#fileBytes = HEADER_BYTES;
      return;
    }
    const scan = scanLog(
      bytes,
      repair,
      (frame, version) => this.#apply(frame, 0, version),
    );
    if (scan.failure !== undefined) {
      const { offset, reason } = scan.failure;
      throw new IntegrityError(
        scan.failure.header
          ? `Cannot open '${path}': ${reason}; copy what is intact with repair() or "tether repair --db <file> --out <new>" (the original is left as it is)`
          : `Cannot open '${path}': the log is damaged at byte ${offset} of ${bytes.length} (${reason}); the file was left as it is; copy every intact commit with repair() or "tether repair --db <file> --out <new>", or open with { repair: true } to salvage in place`,
      );
    }
    if (scan.header !== undefined) this.#header = scan.header;
    this.#seq = scan.seq;
    this.#fileBytes = scan.end;
    this.#stats.tornBytes = scan.tornBytes;
    this.#stats.damage = scan.damage;
    this.#stats.repairedRanges = scan.damage.length;
    this.#stats.repairedBytes = scan.damage.reduce((n, d) => n + d.bytes, 0);
    if (scan.tornBytes > 0) {
      this.#log.warn(
        "torn-tail",
        `'${path}' ends in ${scan.tornBytes} bytes of a commit that was being written when a process or machine stopped (never acknowledged)${
          this.#readOnly ? "; left in place (read-only)" : "; cut off"
        }`,
        { path, offset: scan.end, bytes: scan.tornBytes },
      );
    }
    for (const d of scan.damage) {
      this.#log.warn(
        "repair",
        `'${path}' is damaged at byte ${d.offset} (${d.reason}); ${d.bytes} bytes skipped${
          this.#readOnly ? "; the file was not changed" : ""
        }`,
        { path, offset: d.offset, bytes: d.bytes, reason: d.reason },
      );
    }
    if (this.#readOnly) return;
    if (scan.damage.length > 0) {
      const copy = `${this.#realPath}.damaged-${Date.now()}`;
      await Deno.copyFile(this.#realPath, copy);
      this.#stats.damagedCopy = copy;
      await this.#rewrite();
      return;
    }
    if (scan.tornBytes > 0) {
      await this.#file.truncate(scan.end);
      await this.#file.sync();
    }
    await this.#file.seek(scan.end, Deno.SeekMode.Start);
  }

  /** Applies a frame read from the log at `base` to the directory. */
  #apply(frame: Frame, base: number, version: number): void {
    applyFrame(this.#dir, frame, base, version, this.#reader.gen);
  }

  #closedError(action: string): ClosedError {
    return new ClosedError(
      `Cannot ${action}: the file storage '${this.#path}' is closed`,
    );
  }

  #alive = (): void => {
    if (this.#closed) throw this.#closedError("scan");
  };

  /**
   * Reads one key.
   *
   * @param key The key.
   * @returns The entry, or `null`.
   * @throws {ClosedError} After `close()`.
   */
  get(key: Uint8Array): Promise<StorageEntry | null> {
    if (this.#closed) return Promise.reject(this.#closedError("get"));
    try {
      return Promise.resolve(this.#dir.get(key));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Reads several keys.
   *
   * @param keys The keys.
   * @returns An entry or `null` per key.
   * @throws {ClosedError} After `close()`.
   */
  getMany(keys: readonly Uint8Array[]): Promise<(StorageEntry | null)[]> {
    if (this.#closed) return Promise.reject(this.#closedError("get"));
    try {
      return Promise.resolve(keys.map((key) => this.#dir.get(key)));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Visits entries in key order, in pages.
   *
   * @param options Which keys to visit.
   * @returns The entries, in pages.
   * @throws {ClosedError} After `close()`.
   */
  scan(options: ScanOptions): AsyncIterable<readonly StorageEntry[]> {
    return this.#dir.scan(options, this.#alive);
  }

  /**
   * Applies an atomic commit in memory at once and appends it to the log.
   * With strict durability the result carries `durable`, which settles when
   * the commit is on disk; if writing fails, the commit (and every later one
   * not yet written) is taken back and `durable` rejects.
   *
   * @param commit Checks, sets and deletes.
   * @returns `{ ok: false }` when a check fails, else the new versionstamp.
   * @throws {ClosedError} After `close()`.
   * @throws {TypeError} On a read-only storage.
   * @throws {TooLargeError} A commit over the 1 GiB frame limit.
   */
  commit(commit: StorageCommit): Promise<StorageCommitResult> {
    if (this.#closed) return Promise.reject(this.#closedError("commit"));
    if (this.#readOnly) {
      return Promise.reject(
        new TypeError(
          `Cannot write to '${this.#path}': it is open read-only`,
        ),
      );
    }
    if (this.#broken !== undefined) {
      return Promise.reject(
        new TetherError(
          `Cannot write to '${this.#path}': a failed write could not be undone in the file; reopen the database`,
          { cause: this.#broken },
        ),
      );
    }
    const dir = this.#dir;
    if (!dir.check(commit.checks)) return Promise.resolve({ ok: false });
    const sets = commit.sets ?? [];
    let deletes = commit.deletes ?? [];
    // Deleting an absent key changes nothing: it need not reach the log.
    const deleteIds = deletes.map(binaryString);
    if (deleteIds.some((id) => dir.entry(id) === undefined)) {
      deletes = deletes.filter((_, i) =>
        dir.entry(deleteIds[i]!) !== undefined
      );
    }
    const seq = this.#seq + 1;
    const version = this.#header.version;
    let frame: Uint8Array;
    const offsets: number[] = [];
    const split: RecordParts[] = [];
    try {
      frame = encodeFrame(seq, sets, deletes, version, offsets, split);
    } catch (e) {
      return Promise.reject(
        new TooLargeError(`Cannot write to '${this.#path}': ${errorText(e)}`, {
          cause: e,
        }),
      );
    }
    this.#seq = seq;
    const versionstamp = stamp(seq);
    const undo: DirUndo[] = [];
    const entries: KeyEntry[] = [];
    const legacy = version < FILE_FORMAT_VERSION;
    const gen = this.#reader.gen;
    for (let i = 0; i < sets.length; i++) {
      const set = sets[i]!;
      const id = binaryString(set.key);
      const e = new KeyEntry(
        id,
        seq,
        offsets[2 * i]!,
        offsets[2 * i + 1]!,
        legacy ? LEGACY : 0,
        gen,
        frame,
        ...metaArgs(legacy ? recordMeta(set.value) : partsMeta(split[i]!)),
      );
      entries.push(e);
      undo.push({ id, before: dir.put(id, e) });
    }
    for (const id of deleteIds) {
      const before = dir.put(id, undefined);
      if (before !== undefined) undo.push({ id, before });
    }
    this.#stats.commits++;
    this.#commitsSinceCompaction++;
    if (this.#durability !== "strict") {
      this.#queue.push({
        seq,
        frame,
        entries,
        offsets,
        undo: undefined,
        resolve: undefined,
        reject: undefined,
      });
      if (this.#queue.length >= this.#threshold) this.#kick();
      // Whatever else happens, this commit is written (and fsynced) when the
      // timer armed by the oldest unwritten commit fires.
      this.#arm();
      // One `written` promise for every commit of the next flush.
      this.#written ??= Promise.withResolvers<void>();
      return Promise.resolve({
        ok: true,
        versionstamp,
        written: this.#written.promise,
      });
    }
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const durable = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.#queue.push({
      seq,
      frame,
      entries,
      offsets,
      undo,
      resolve,
      reject,
    });
    this.#kick();
    return Promise.resolve({ ok: true, versionstamp, durable });
  }

  /** Starts the flush loop unless it runs. */
  #kick(): void {
    if (this.#flushing !== undefined) return;
    this.#flushing = this.#flushLoop().finally(() => {
      this.#flushing = undefined;
      if (this.#queue.length === 0) return;
      if (this.#durability === "strict") this.#kick();
      else this.#arm();
    });
  }

  /**
   * Batched modes: flush `flushInterval` after the oldest unwritten commit at
   * the latest (an armed timer is never pushed back).
   */
  #arm(): void {
    if (this.#timer !== undefined || this.#closed) return;
    const id = setTimeout(() => {
      this.#timer = undefined;
      if (this.#queue.length < this.#threshold / 4) {
        this.#threshold = Math.max(MIN_THRESHOLD, this.#threshold >> 1);
      }
      this.#kick();
    }, this.#flushInterval) as unknown as number;
    this.#timer = id;
    Deno.unrefTimer(id);
  }

  #withIo<R>(fn: () => Promise<R>): Promise<R> {
    const run = this.#io.then(fn);
    this.#io = run.catch(() => {});
    return run;
  }

  async #flushLoop(): Promise<void> {
    while (this.#queue.length > 0) {
      const ok = await this.#withIo(() => this.#flushOnce());
      if (!ok) {
        if (this.#durability !== "strict") this.#arm();
        return;
      }
    }
    this.#maybeCompact();
  }

  /** Writes (and syncs) every queued commit; `false` when that failed. */
  async #flushOnce(): Promise<boolean> {
    const batch = this.#queue;
    if (batch.length === 0) return true;
    this.#queue = [];
    const written = this.#written;
    this.#written = undefined;
    const bytes = concat(batch.map((q) => q.frame));
    try {
      faults.beforeWrite?.();
      await writeAll(this.#file, bytes);
      if (this.#durability !== "none") {
        await this.#sync(this.#file, "syncData", this.#path);
        this.#stats.syncs++;
      }
    } catch (cause) {
      // Batched modes queue the batch again: its commits are written later.
      if (written !== undefined) {
        // (Set again by commits made while this batch was being written.)
        const later = this.#written as PromiseWithResolvers<void> | undefined;
        if (later === undefined) this.#written = written;
        else void later.promise.then(written.resolve);
      }
      await this.#writeFailed(batch, bytes.length, cause);
      return false;
    }
    // The values are in the file now: point their entries there.
    let base = this.#fileBytes;
    const gen = this.#reader.gen;
    for (const q of batch) {
      const { entries, offsets } = q;
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        e.at = base + offsets[2 * i]!;
        e.gen = gen;
        e.buf = undefined;
      }
      base += q.frame.length;
    }
    this.#fileBytes += bytes.length;
    this.#stats.flushes++;
    const tail = this.#tail;
    if (tail !== undefined) {
      for (const q of batch) if (q.seq > tail.seq) tail.frames.push(q);
    }
    const now = Date.now();
    if (
      this.#durability !== "strict" && batch.length >= this.#threshold &&
      now - this.#lastFlushAt < this.#flushInterval / 4
    ) {
      this.#threshold = Math.min(MAX_THRESHOLD, this.#threshold << 1);
    }
    this.#lastFlushAt = now;
    for (const q of batch) q.resolve?.();
    written?.resolve();
    return true;
  }

  async #writeFailed(
    batch: Queued[],
    length: number,
    cause: unknown,
  ): Promise<void> {
    this.#failures++;
    this.#stats.lastError = errorText(cause);
    // Cut off whatever part of the batch reached the file.
    try {
      await this.#file.truncate(this.#fileBytes);
      await this.#file.seek(this.#fileBytes, Deno.SeekMode.Start);
    } catch (e) {
      this.#broken = e instanceof Error ? e : new Error(String(e));
    }
    if (this.#durability !== "strict") {
      // Already acknowledged: keep them queued and try again later.
      this.#queue = batch.concat(this.#queue);
      return;
    }
    const failed = batch.concat(this.#queue);
    this.#queue = [];
    for (let i = failed.length - 1; i >= 0; i--) {
      this.#dir.revert(failed[i]!.undo!);
    }
    const message =
      `Cannot write ${failed.length} commit(s) (${length} bytes) to '${this.#path}': ${
        errorText(cause)
      }; they were taken back and the database is unchanged`;
    const error = isNoSpace(cause)
      ? new QuotaError(message, { cause })
      : new TetherError(message, { cause });
    for (const q of failed) q.reject!(error);
  }

  /**
   * Read-only storages: loads what the writer committed since open (or the
   * last refresh), and starts over from the file if a compaction replaced
   * it. A commit the writer is still writing is left for the next refresh.
   * A writer's own storage always sees everything: it returns `false`.
   *
   * @returns Whether anything changed.
   * @throws {ClosedError} After `close()`.
   * @throws {IntegrityError} The new part of the log is damaged.
   */
  refresh(): Promise<boolean> {
    if (this.#closed) return Promise.reject(this.#closedError("refresh"));
    if (!this.#readOnly) return Promise.resolve(false);
    return this.#withIo(async () => {
      const path = this.#path;
      const [now, mine] = await Promise.all([
        Deno.stat(path),
        this.#file.stat(),
      ]);
      if (
        (now.ino !== null && mine.ino !== null && now.ino !== mine.ino) ||
        now.size < this.#fileBytes || this.#fileBytes < HEADER_BYTES
      ) {
        const file = await Deno.open(path, { read: true });
        let bytes: Uint8Array;
        try {
          bytes = await readAll(file);
        } catch (e) {
          file.close();
          throw e;
        }
        let reader: Deno.FsFile;
        try {
          reader = await Deno.open(path, { read: true });
        } catch (e) {
          file.close();
          throw e;
        }
        this.#file.close();
        this.#file = file;
        this.#reader.replace(reader);
        this.#dir.clear();
        this.#stats.tornBytes = 0;
        await this.#replay(bytes, this.#salvage);
        return true;
      }
      if (now.size === this.#fileBytes) return false;
      const bytes = new Uint8Array(now.size - this.#fileBytes);
      await this.#file.seek(this.#fileBytes, Deno.SeekMode.Start);
      let got = 0;
      while (got < bytes.length) {
        const n = await this.#file.read(bytes.subarray(got));
        if (n === null) break;
        got += n;
      }
      const fresh = bytes.subarray(0, got);
      let at = 0;
      let changed = false;
      while (at < fresh.length) {
        const read = readFrame(fresh, at, this.#seq, this.#header.version);
        if (!("frame" in read)) {
          if (read.problem === "truncated") break; // still being written
          throw new IntegrityError(
            `Cannot refresh from '${path}': the log is damaged at byte ${
              this.#fileBytes + at
            } (${read.reason})`,
          );
        }
        const { frame } = read;
        this.#apply(frame, this.#fileBytes, this.#header.version);
        this.#seq = frame.seq;
        at = read.end;
        changed = true;
      }
      this.#fileBytes += at;
      return changed;
    });
  }

  /** Writes queued commits now and waits until they are written. */
  async flush(): Promise<void> {
    while (this.#queue.length > 0 || this.#flushing !== undefined) {
      // An attempt already running was not started by this call: wait for
      // it, then try once more before reporting a failure.
      const ours = this.#flushing === undefined;
      this.#kick();
      await this.#flushing;
      if (ours && this.#queue.length > 0 && this.#flushing === undefined) {
        // The last attempt failed; report it rather than spin.
        throw new TetherError(
          `Cannot flush '${this.#path}': ${this.#stats.lastError}`,
        );
      }
    }
  }

  #maybeCompact(): void {
    if (this.#compacting !== undefined || this.#closed) return;
    if (
      this.#fileBytes > this.#compactMinBytes &&
      this.#fileBytes > this.#compactRatio * (this.#dir.live + HEADER_BYTES)
    ) {
      this.compact().catch((e) => {
        this.#stats.lastError = errorText(e);
        this.#log.warn("compaction-failed", errorText(e), {
          path: this.#path,
          quota: e instanceof QuotaError,
        });
      });
    }
  }

  /**
   * Rewrites the log with only the live keys: the new file is written and
   * fsynced beside the old one, renamed over it and the directory fsynced,
   * so a crash at any point leaves one complete log. Writes go on meanwhile.
   * Skipped when nothing was written since the last compaction.
   *
   * @param onProgress Told of the bytes of live records copied, of all of
   *   them (see `Storage.compact`); a call joining a compaction under way
   *   is told of the rest of it.
   * @returns Whether it rewrote the file.
   * @throws {ClosedError} After `close()`.
   * @throws {TypeError} On a read-only storage.
   */
  compact(
    onProgress?: (done: number, total: number) => void,
  ): Promise<boolean> {
    if (this.#closed) return Promise.reject(this.#closedError("compact"));
    if (this.#readOnly) {
      return Promise.reject(
        new TypeError(`Cannot compact '${this.#path}': it is open read-only`),
      );
    }
    if (this.#compacting !== undefined) {
      this.#compactProgress?.add(onProgress);
      return this.#compacting;
    }
    if (this.#commitsSinceCompaction === 0 && this.#stats.compactions > 0) {
      return Promise.resolve(false);
    }
    const progress = new CopyProgress();
    progress.add(onProgress);
    this.#compactProgress = progress;
    this.#compacting = this.#rewrite(progress).then(() => true).finally(() => {
      this.#compacting = undefined;
      this.#compactProgress = undefined;
    });
    return this.#compacting;
  }

  /** Compaction proper (also the last step of a repair). */
  async #rewrite(progress?: CopyProgress): Promise<void> {
    const path = this.#path;
    const realPath = this.#realPath;
    const tmpPath = `${realPath}.compact`;
    const started = Date.now();
    const before = this.#fileBytes;
    const failures = this.#failures;
    const entries: KeyEntry[] = Array.from(this.#dir.entries());
    const seq = this.#seq;
    const commits = this.#stats.commits;
    const oldGen = this.#reader.gen;
    this.#tail = { seq, frames: [] };
    let tmp: Deno.FsFile | undefined;
    let reader: Deno.FsFile | undefined;
    let renamed = false;
    try {
      tmp = await Deno.open(tmpPath, {
        read: true,
        write: true,
        create: true,
        truncate: true,
      });
      const out = tmp;
      // Locked before it becomes the log, so the log is locked throughout.
      await lockReplacement(out, tmpPath);
      faults.compactStep?.("open");
      const oldVersion = this.#header.version;
      const header: FileHeader = {
        ...this.#header,
        version: FILE_FORMAT_VERSION,
        flags: this.#header.flags | FLAG_SNAPSHOT,
        baseSeq: seq,
      };
      const snapshot = new SnapshotWriter(
        encodeHeader(header),
        seq,
        async (bytes) => {
          faults.compactWrite?.(bytes.length);
          await writeAll(out, bytes);
        },
      );
      await copyLive(
        entries,
        (at, len) => this.#reader.read(at, len),
        () => this.#fileBytes,
        oldGen,
        snapshot,
        path,
        progress,
      );
      await snapshot.flush();
      // The bulk of the fsync happens here, while commits are still written
      // to the old file; only the tail's is left for the step that holds
      // the log's writes back.
      await this.#sync(out, "syncData", tmpPath);
      faults.compactStep?.("snapshot");
      reader = await Deno.open(tmpPath, { read: true });
      await this.#withIo(async () => {
        if (this.#failures !== failures) {
          throw new TetherError(
            `Cannot compact '${path}': a write failed while it ran`,
          );
        }
        // The commits written to the old file meanwhile, in the new format.
        const tail = this.#tail!.frames.map((q) => ({
          ...upgradeFrame(q, oldVersion),
          entries: q.entries,
        }));
        this.#tail = undefined;
        const moved: { e: KeyEntry; at: number; len: number }[] = [];
        for (const t of tail) {
          const at = snapshot.size;
          for (let i = 0; i < t.entries.length; i++) {
            moved.push({
              e: t.entries[i]!,
              at: at + t.offsets[2 * i]!,
              len: t.offsets[2 * i + 1]!,
            });
          }
          await snapshot.frame(t.frame, t.entries.length);
        }
        await snapshot.end();
        await snapshot.flush();
        const size = snapshot.size;
        await this.#sync(out, "sync", tmpPath);
        faults.compactStep?.("synced");
        await Deno.rename(tmpPath, realPath);
        // From here the log is the new file: switch to it (its handle is
        // already at its end, and holds the lock) before anything else can
        // fail, so that later commits never go to the old, unlinked file.
        // Closing the old one releases its lock: a writer waiting on it
        // finds that the path names another file now, and waits on that.
        renamed = true;
        // Commits still queued for the log but not in the snapshot (some
        // were made while this awaited): in the new format before they are
        // written to the new file. From the switch below on, commits are
        // encoded in it.
        const later = this.#queue.filter((q) => q.seq > seq);
        const upgraded = oldVersion === FILE_FORMAT_VERSION
          ? []
          : later.map((q) => upgradeFrame(q, oldVersion));
        this.#file.close();
        this.#file = out;
        this.#header = header;
        this.#fileBytes = size;
        this.#reader.replace(reader);
        reader = undefined;
        const gen = this.#reader.gen;
        // Every entry the new file holds points into it.
        for (const p of snapshot.placed) {
          p.entry.at = p.at;
          p.entry.len = p.len;
          p.entry.kind = 0;
          p.entry.gen = gen;
          p.entry.buf = undefined;
        }
        for (const { e, at, len } of moved) {
          e.at = at;
          e.len = len;
          e.kind = 0;
          e.gen = gen;
          e.buf = undefined;
        }
        for (let i = 0; i < upgraded.length; i++) {
          const q = later[i]!;
          const u = upgraded[i]!;
          q.frame = u.frame;
          q.offsets = [...u.offsets];
          for (let j = 0; j < q.entries.length; j++) {
            const e = q.entries[j]!;
            if (e.buf === undefined) continue;
            e.buf = u.frame;
            e.at = u.offsets[2 * j]!;
            e.len = u.offsets[2 * j + 1]!;
            e.kind = 0;
          }
        }
        this.#dir.recount();
        // Commits not yet written that the snapshot holds are now durable.
        if (this.#queue.length > 0 && this.#queue[0]!.seq <= seq) {
          const covered = this.#queue.filter((q) => q.seq <= seq);
          this.#queue = this.#queue.filter((q) => q.seq > seq);
          for (const q of covered) q.resolve?.();
          if (this.#queue.length === 0) {
            this.#written?.resolve();
            this.#written = undefined;
          }
        }
        faults.compactStep?.("renamed");
        await syncDir(realPath);
      });
      this.#stats.compactions++;
      this.#commitsSinceCompaction = this.#stats.commits - commits;
      this.#log.debug(
        "compaction",
        `compacted '${path}' from ${before} to ${this.#fileBytes} bytes in ${
          Date.now() - started
        } ms`,
        {
          path,
          before,
          after: this.#fileBytes,
          keys: entries.length,
          ms: Date.now() - started,
        },
      );
    } catch (e) {
      this.#tail = undefined;
      try {
        reader?.close();
      } catch { /* already closed */ }
      if (!renamed) {
        try {
          tmp?.close();
        } catch { /* already closed */ }
        await Deno.remove(tmpPath).catch(() => {});
      }
      this.#stats.lastError = errorText(e);
      throw compactionError(path, e, renamed);
    }
  }

  /** fsyncs the log (or a compaction's file), warning when it is slow. */
  async #sync(
    file: Deno.FsFile,
    how: "sync" | "syncData",
    name: string,
  ): Promise<void> {
    const started = performance.now();
    await (how === "sync" ? file.sync() : file.syncData());
    const ms = performance.now() - started;
    if (ms >= SLOW_FSYNC_MS) {
      this.#log.warn(
        "slow-fsync",
        `an fsync of '${name}' took ${Math.round(ms)} ms`,
        { path: name, ms: Math.round(ms) },
      );
    }
  }

  /**
   * Counters: sizes, commits, flushes, fsyncs, compactions, and what was
   * recovered or repaired at open.
   *
   * @returns A snapshot.
   */
  stats(): FileStorageStats {
    const s = this.#stats;
    return {
      path: this.#path,
      durability: this.#durability,
      readOnly: this.#readOnly,
      fileBytes: this.#fileBytes,
      liveBytes: this.#dir.live,
      keys: this.#dir.size,
      commits: s.commits,
      queued: this.#queue.length,
      flushes: s.flushes,
      syncs: s.syncs,
      compactions: s.compactions,
      tornBytes: s.tornBytes,
      repairedRanges: s.repairedRanges,
      repairedBytes: s.repairedBytes,
      damage: s.damage,
      damagedCopy: s.damagedCopy,
      writeErrors: this.#failures,
      lastError: s.lastError,
    };
  }

  /**
   * Writes what is queued, waits for a running compaction, closes the file
   * and releases the lock. Idempotent.
   *
   * @returns When closed.
   * @throws {TetherError} When queued commits (batched modes) could not be
   *   written; the file holds every commit written before.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    let failure: unknown;
    try {
      await this.#compacting?.catch(() => {});
      await this.flush();
    } catch (e) {
      failure = e;
    } finally {
      await this.#io;
      this.#file.close();
      this.#reader.replace(undefined);
      if (!this.#readOnly) releaseHeld(this.#realPath);
      this.#dir.clear();
    }
    if (failure !== undefined) throw failure;
  }
}

function isMagicPrefix(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length && i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) return false;
  }
  return true;
}
