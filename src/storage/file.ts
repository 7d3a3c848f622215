/**
 * The file storage: every key in an in-memory key directory pointing at its
 * value in a checksummed log file (see FORMAT.md, "File log"), values read
 * with positioned reads, with group commit, torn-tail recovery, repair,
 * compaction and a one-writer lock.
 *
 * This file is the façade and the write path (commits, group commit,
 * batched durability, failed writes taken back) and a reader's refresh,
 * over one `FileCore` (file_core.ts, the shared state); opening and
 * recovery are in file_open.ts, compaction in file_rewrite.ts (its snapshot
 * in file_compact.ts).
 *
 * @module
 */

import {
  checkOptions,
  type FileStorageOptions,
  type FileStorageStats,
} from "./file_options.ts";
import { legacyEntry, type Queued, recordEntry } from "./file_log.ts";
import {
  concat,
  errorText,
  faults,
  fileSource,
  isNoSpace,
  SLOW_WRITE_MS,
  writeAll,
  writeLog,
} from "./file_io.ts";

export type {
  Durability,
  FileStorageOptions,
  FileStorageStats,
} from "./file_options.ts";
export { faults } from "./file_io.ts";
import {
  IntegrityError,
  QuotaError,
  TetherError,
  TooLargeError,
} from "../errors.ts";
import {
  encodeFrame,
  FILE_FORMAT_VERSION,
  HEADER_BYTES,
  readFrame,
} from "./file_format.ts";
import { releaseHeld } from "./file_lock.ts";
import { scanLog } from "./file_scan.ts";
import { encodeHint, HINT_MIN_KEYS, hintable, hintPath } from "./file_hint.ts";
import { type DirUndo, type KeyEntry, stamp } from "./file_keydir.ts";
import type { FileCore } from "./file_core.ts";
import { openCore, replay } from "./file_open.ts";
import { compact, maybeCompact } from "./file_rewrite.ts";
import type { RecordParts } from "./file_record.ts";
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
 * await Deno.remove(path);
 * ```
 */
export class FileStorage implements Storage {
  /** A file has one writer (this process) and no native expiry. */
  readonly capabilities: StorageCapabilities;

  /** The state shared with opening (file_open.ts) and compaction. */
  readonly #s: FileCore;
  /** The flush loop, while it runs. */
  #flushing: Promise<void> | undefined;
  /** Batched modes: the flush timer armed by the oldest unwritten commit. */
  #timer: number | undefined;
  /** Batched modes: queued commits that start a flush (adapts to load). */
  #threshold = 256;
  #lastFlushAt = 0;
  /** A failed write could not be cut off the file: no more writes. */
  #broken: Error | undefined;
  #closing: Promise<void> | undefined;

  private constructor(core: FileCore) {
    this.#s = core;
    this.capabilities = {
      nativeExpiry: false,
      shared: false,
      readOnly: core.readOnly,
      valuesOnDisk: true,
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
   * await Deno.remove(dir, { recursive: true });
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
    return new FileStorage(await openCore(path, options, action));
  }

  #alive = (): void => {
    if (this.#s.closed) throw this.#s.closedError("scan");
  };

  /**
   * Reads one key.
   *
   * @param key The key.
   * @returns The entry, or `null`.
   * @throws {ClosedError} After `close()`.
   */
  get(key: Uint8Array): Promise<StorageEntry | null> {
    if (this.#s.closed) return Promise.reject(this.#s.closedError("get"));
    try {
      return Promise.resolve(this.#s.dir.get(key));
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
    if (this.#s.closed) return Promise.reject(this.#s.closedError("get"));
    try {
      return Promise.resolve(this.#s.dir.getMany(keys));
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
    return this.#s.dir.scan(options, this.#alive);
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
    if (this.#s.closed) return Promise.reject(this.#s.closedError("commit"));
    if (this.#s.readOnly) {
      return Promise.reject(
        new TypeError(
          `Cannot write to '${this.#s.path}': it is open read-only`,
        ),
      );
    }
    if (this.#broken !== undefined) {
      return Promise.reject(
        new TetherError(
          `Cannot write to '${this.#s.path}': a failed write could not be undone in the file; reopen the database`,
          { cause: this.#broken },
        ),
      );
    }
    const dir = this.#s.dir;
    const sets = commit.sets ?? [];
    const ids = sets.map((set) => binaryString(set.key));
    if (!dir.check(commit.checks, sets, ids)) {
      return Promise.resolve({ ok: false });
    }
    let deletes = commit.deletes ?? [];
    // Deleting an absent key changes nothing: it need not reach the log.
    const deleteIds = deletes.map(binaryString);
    if (deleteIds.some((id) => dir.entry(id) === undefined)) {
      deletes = deletes.filter((_, i) =>
        dir.entry(deleteIds[i]!) !== undefined
      );
    }
    const seq = this.#s.seq + 1;
    const version = this.#s.header.version;
    let frame: Uint8Array;
    const offsets: number[] = [];
    const split: RecordParts[] = [];
    try {
      frame = encodeFrame(seq, sets, deletes, version, offsets, split);
    } catch (e) {
      return Promise.reject(
        new TooLargeError(
          `Cannot write to '${this.#s.path}': ${errorText(e)}`,
          {
            cause: e,
          },
        ),
      );
    }
    this.#s.seq = seq;
    const versionstamp = stamp(seq);
    const undo: DirUndo[] = [];
    const entries: KeyEntry[] = [];
    const legacy = version < FILE_FORMAT_VERSION;
    const gen = this.#s.reader.gen;
    for (let i = 0; i < sets.length; i++) {
      const set = sets[i]!;
      const id = ids[i]!;
      const at = offsets[2 * i]!;
      const len = offsets[2 * i + 1]!;
      const e = legacy
        ? legacyEntry(dir, set.value, seq, at, len, gen, true)
        : recordEntry(dir, seq, at, len, gen, true, split[i]!);
      entries.push(e);
      undo.push({ id, before: dir.put(id, e) });
    }
    if (entries.length > 0) dir.hold(seq, frame);
    for (const id of deleteIds) {
      const before = dir.put(id, undefined);
      if (before !== undefined) undo.push({ id, before });
    }
    this.#s.stats.commits++;
    this.#s.commitsSinceCompaction++;
    if (this.#s.durability !== "strict") {
      this.#s.queue.push({
        seq,
        frame,
        entries,
        offsets,
        undo: undefined,
        resolve: undefined,
        reject: undefined,
      });
      if (this.#s.queue.length >= this.#threshold) this.#kick();
      // Whatever else happens, this commit is written (and fsynced) when the
      // timer armed by the oldest unwritten commit fires.
      this.#arm();
      // One `written` promise for every commit of the next flush.
      this.#s.written ??= Promise.withResolvers<void>();
      return Promise.resolve({
        ok: true,
        versionstamp,
        written: this.#s.written.promise,
      });
    }
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const durable = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.#s.queue.push({
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
      if (this.#s.queue.length === 0) return;
      if (this.#s.durability === "strict") this.#kick();
      else this.#arm();
    });
  }

  /**
   * Batched modes: flush `flushInterval` after the oldest unwritten commit at
   * the latest (an armed timer is never pushed back).
   */
  #arm(): void {
    if (this.#timer !== undefined || this.#s.closed) return;
    const id = setTimeout(() => {
      this.#timer = undefined;
      if (this.#s.queue.length < this.#threshold / 4) {
        this.#threshold = Math.max(MIN_THRESHOLD, this.#threshold >> 1);
      }
      this.#kick();
    }, this.#s.flushInterval) as unknown as number;
    this.#timer = id;
    Deno.unrefTimer(id);
  }

  async #flushLoop(): Promise<void> {
    while (this.#s.queue.length > 0) {
      const ok = await this.#s.withIo(() => this.#flushOnce());
      if (!ok) {
        if (this.#s.durability !== "strict") this.#arm();
        return;
      }
    }
    maybeCompact(this.#s);
  }

  /** Writes (and syncs) every queued commit; `false` when that failed. */
  async #flushOnce(): Promise<boolean> {
    const batch = this.#s.queue;
    if (batch.length === 0) return true;
    this.#s.queue = [];
    const written = this.#s.written;
    this.#s.written = undefined;
    const bytes = concat(batch.map((q) => q.frame));
    try {
      faults.beforeWrite?.();
      const held = await writeLog(
        this.#s.file,
        bytes,
        this.#s.durability === "strict",
      );
      if (held >= SLOW_WRITE_MS) {
        this.#s.log.warn(
          "slow-write",
          `a synchronous write of ${bytes.length} bytes to '${this.#s.path}' held the event loop ${
            Math.round(held)
          } ms`,
          { path: this.#s.path, ms: Math.round(held), bytes: bytes.length },
        );
      }
      if (this.#s.durability !== "none") {
        await this.#s.sync(this.#s.file, "syncData", this.#s.path);
        this.#s.stats.syncs++;
      }
    } catch (cause) {
      // Batched modes queue the batch again: its commits are written later.
      if (written !== undefined) {
        // (Set again by commits made while this batch was being written.)
        const later = this.#s.written as PromiseWithResolvers<void> | undefined;
        if (later === undefined) this.#s.written = written;
        else void later.promise.then(written.resolve);
      }
      await this.#writeFailed(batch, bytes.length, cause);
      return false;
    }
    // The values are in the file now: point their entries there.
    let base = this.#s.fileBytes;
    const gen = this.#s.reader.gen;
    for (const q of batch) {
      const { entries, offsets } = q;
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        e.at = base + offsets[2 * i]!;
        e.gen = gen;
        e.settle();
      }
      this.#s.dir.release(q.seq);
      base += q.frame.length;
    }
    this.#s.fileBytes += bytes.length;
    this.#s.stats.flushes++;
    const tail = this.#s.tail;
    if (tail !== undefined) {
      for (const q of batch) if (q.seq > tail.seq) tail.frames.push(q);
    }
    const now = Date.now();
    if (
      this.#s.durability !== "strict" && batch.length >= this.#threshold &&
      now - this.#lastFlushAt < this.#s.flushInterval / 4
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
    this.#s.failures++;
    this.#s.stats.lastError = errorText(cause);
    // Cut off whatever part of the batch reached the file.
    try {
      await this.#s.file.truncate(this.#s.fileBytes);
      await this.#s.file.seek(this.#s.fileBytes, Deno.SeekMode.Start);
    } catch (e) {
      this.#broken = e instanceof Error ? e : new Error(String(e));
    }
    if (this.#s.durability !== "strict") {
      // Already acknowledged: keep them queued and try again later.
      this.#s.queue = batch.concat(this.#s.queue);
      return;
    }
    const failed = batch.concat(this.#s.queue);
    this.#s.queue = [];
    for (let i = failed.length - 1; i >= 0; i--) {
      this.#s.dir.revert(failed[i]!.undo!);
      this.#s.dir.release(failed[i]!.seq);
    }
    const message =
      `Cannot write ${failed.length} commit(s) (${length} bytes) to '${this.#s.path}': ${
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
    if (this.#s.closed) return Promise.reject(this.#s.closedError("refresh"));
    if (!this.#s.readOnly) return Promise.resolve(false);
    return this.#s.withIo(async () => {
      const path = this.#s.path;
      const [now, mine] = await Promise.all([
        Deno.stat(path),
        this.#s.file.stat(),
      ]);
      if (
        (now.ino !== null && mine.ino !== null && now.ino !== mine.ino) ||
        now.size < this.#s.fileBytes || this.#s.fileBytes < HEADER_BYTES
      ) {
        const file = await Deno.open(path, { read: true });
        let size: number;
        try {
          size = (await file.stat()).size;
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
        this.#s.file.close();
        this.#s.file = file;
        this.#s.reader.replace(reader);
        this.#s.dir.clear();
        this.#s.stats.tornBytes = 0;
        await replay(this.#s, fileSource(file, size), this.#s.salvage);
        return true;
      }
      if (now.size === this.#s.fileBytes) return false;
      const bytes = new Uint8Array(now.size - this.#s.fileBytes);
      await this.#s.file.seek(this.#s.fileBytes, Deno.SeekMode.Start);
      let got = 0;
      while (got < bytes.length) {
        const n = await this.#s.file.read(bytes.subarray(got));
        if (n === null) break;
        got += n;
      }
      const fresh = bytes.subarray(0, got);
      let at = 0;
      let changed = false;
      while (at < fresh.length) {
        const read = readFrame(fresh, at, this.#s.seq, this.#s.header.version);
        if (!("frame" in read)) {
          if (read.problem === "truncated") break; // still being written
          throw new IntegrityError(
            `Cannot refresh from '${path}': the log is damaged at byte ${
              this.#s.fileBytes + at
            } (${read.reason})`,
          );
        }
        const { frame } = read;
        this.#s.apply(frame, this.#s.fileBytes, this.#s.header.version);
        this.#s.seq = frame.seq;
        at = read.end;
        changed = true;
      }
      this.#s.fileBytes += at;
      return changed;
    });
  }

  /** Writes queued commits now and waits until they are written. */
  async flush(): Promise<void> {
    while (this.#s.queue.length > 0 || this.#flushing !== undefined) {
      // An attempt already running was not started by this call: wait for
      // it, then try once more before reporting a failure.
      const ours = this.#flushing === undefined;
      this.#kick();
      await this.#flushing;
      if (ours && this.#s.queue.length > 0 && this.#flushing === undefined) {
        // The last attempt failed; report it rather than spin.
        throw new TetherError(
          `Cannot flush '${this.#s.path}': ${this.#s.stats.lastError}`,
        );
      }
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
    return compact(this.#s, onProgress);
  }

  /**
   * Reads the whole log (as far as it is written) and checks every frame's
   * checksums and structure, as an open without a key directory hint does.
   * Runs beside writes (the log is only appended to; a compaction meanwhile
   * leaves this read on the old file); holds the event loop while it reads,
   * as an open does.
   *
   * @returns Where and why the log is damaged, or `undefined`.
   * @throws {ClosedError} After `close()`.
   */
  async checkLog(): Promise<string | undefined> {
    const s = this.#s;
    if (s.closed) throw s.closedError("check the log");
    // The size read must be the opened file's: a compaction that renames
    // its new file in while the file is opened would pair the old log's
    // size with the new file (a snapshot cut short, reported as damage).
    // So: no compaction running or finished between the count and the open.
    let file: Deno.FsFile;
    let size: number;
    for (;;) {
      await s.compacting?.catch(() => {});
      if (s.closed) throw s.closedError("check the log");
      const before = s.stats.compactions;
      file = await Deno.open(s.realPath, { read: true });
      size = s.fileBytes;
      if (s.compacting === undefined && s.stats.compactions === before) break;
      file.close();
    }
    try {
      const scan = scanLog(fileSource(file, size), false, () => {});
      if (scan.failure === undefined) return undefined;
      return `the log '${this.#s.path}' is damaged at byte ${scan.failure.offset} of ${size} (${scan.failure.reason})`;
    } finally {
      file.close();
    }
  }

  /**
   * Counters: sizes, commits, flushes, fsyncs, compactions, and what was
   * recovered or repaired at open.
   *
   * @returns A snapshot.
   */
  stats(): FileStorageStats {
    const s = this.#s.stats;
    return {
      path: this.#s.path,
      durability: this.#s.durability,
      readOnly: this.#s.readOnly,
      fileBytes: this.#s.fileBytes,
      liveBytes: this.#s.dir.live,
      keys: this.#s.dir.size,
      commits: s.commits,
      queued: this.#s.queue.length,
      flushes: s.flushes,
      syncs: s.syncs,
      valueReads: this.#s.reader.reads,
      compactions: s.compactions,
      tornBytes: s.tornBytes,
      repairedRanges: s.repairedRanges,
      repairedBytes: s.repairedBytes,
      damage: s.damage,
      damagedCopy: s.damagedCopy,
      writeErrors: this.#s.failures,
      lastError: s.lastError,
      hintKeys: s.hintKeys,
      unwrittenFrames: this.#s.dir.held,
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

  /**
   * At close: writes the key directory hint (`<log>.hint`, FORMAT.md), so
   * that the next open reads keys and offsets instead of the whole log; or
   * removes an old one when this log is too small for one or cannot have
   * one. A failure to write it is only reported: the log is whole anyway.
   */
  async #hint(): Promise<void> {
    const s = this.#s;
    const path = hintPath(s.realPath);
    const tmp = `${path}.tmp`;
    try {
      if (
        s.dir.size < HINT_MIN_KEYS || s.failures > 0 || s.queue.length > 0 ||
        s.header.version !== FILE_FORMAT_VERSION || !hintable(s.dir)
      ) {
        await Deno.remove(path).catch((e) => {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        });
        return;
      }
      const out = await Deno.open(tmp, {
        write: true,
        create: true,
        truncate: true,
      });
      try {
        await encodeHint(s.dir, {
          header: s.reader.read(0, HEADER_BYTES).slice(),
          covered: s.fileBytes,
          seq: s.seq,
          read: (at, len) => s.reader.read(at, len),
        }, (bytes) => writeAll(out, bytes));
      } finally {
        out.close();
      }
      // Not fsynced: a hint cut short by a crash fails its checksum, and the
      // log is read whole then.
      await Deno.rename(tmp, path);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      s.log.warn(
        "hint-failed",
        `the key directory hint '${path}' could not be written (${
          (e as Error).message
        }); the next open reads the whole log`,
        { path },
      );
    }
  }

  async #close(): Promise<void> {
    this.#s.closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    let failure: unknown;
    try {
      await this.#s.compacting?.catch(() => {});
      await this.flush();
      if (!this.#s.readOnly) await this.#hint();
    } catch (e) {
      failure = e;
    } finally {
      await this.#s.io;
      this.#s.file.close();
      this.#s.reader.replace(undefined);
      if (!this.#s.readOnly) releaseHeld(this.#s.realPath);
      this.#s.dir.clear();
    }
    if (failure !== undefined) throw failure;
  }
}
