/**
 * The engine shared by every storage: `Engine` (with its read side in
 * engine_reads.ts) is the façade that
 * `Database`, `Collection` and `Cursor` call, over one
 * {@linkcode EngineCore} (state.ts) that the mechanisms share, one file
 * each:
 *
 * - layout.ts: the key layout (documents, metadata, tombstones);
 * - write.ts, write_build.ts, commit.ts: the write queue, building
 *   records, the full pipeline's atomic commit with index entries;
 * - local_write.ts, local_commit.ts, local_read.ts: the fast path over
 *   the object tier (record_table.ts, ram_index.ts) of a storage only this
 *   process writes (see docs/engine.md);
 * - read.ts: point reads, scans, index and insertion-order scans;
 * - index_build.ts: creating and dropping indexes;
 * - bulk.ts: `clear()` and group deletes;
 * - expiry.ts: the TTL sweeper; tombstones.ts: deletion records;
 * - load.ts: rebuilding bookkeeping from storage;
 * - verify.ts, stats.ts, watch.ts.
 *
 * The engine knows nothing of the storage behind it beyond the
 * {@linkcode Storage} contract. Public classes validate input, then call it.
 *
 * @module
 */

import type { IndexSpec } from "./index_keys.ts";
import type { Storage } from "../storage/contract.ts";
import type { Change } from "../types.ts";
import type { ProgressCallback } from "../progress.ts";
import { EngineCore, type EngineSettings, type WriteOp } from "./state.ts";
import { capMemoryLimit, load, refresh, reloaded, sync } from "./load.ts";
import { transact } from "./write.ts";
import { EngineReads } from "./engine_reads.ts";
import { writeNow, writeOneNow } from "./local_write.ts";
import { groupWrite } from "./put_group.ts";
import { createIndex, dropIndex } from "./index_build.ts";
import { clear } from "./bulk.ts";
import { writeNew } from "./write_new.ts";
import { writeSplit } from "../batch_split.ts";
import {
  cleanup,
  compact,
  poke,
  startTimers,
  sweep,
  SWEEP_BATCH,
} from "./expiry.ts";

export type {
  DeleteOp,
  DocPage,
  EngineSettings,
  PutOp,
  WriteOp,
} from "./state.ts";
export type { VerifyOptions, VerifyReport } from "./verify.ts";
export type { CompactOptions } from "./expiry.ts";
export { yieldToLoop } from "./yield.ts";

/**
 * The shared engine. Internal: reached through `Database` and `Collection`.
 *
 * @example
 * ```ts
 * import { Engine } from "./engine.ts";
 * import { MemoryStorage } from "@tether/db/storage";
 * const engine = await Engine.open(new MemoryStorage(), {
 *   clock: Date, ttlCheckInterval: 10_000, cleanupInterval: 3_600_000,
 *   maxValueBytes: 65_536, memoryLimit: Infinity, maxRetries: 3, retryDelay: 100,
 *   tombstoneRetention: 604_800_000,
 * });
 * await engine.close();
 * ```
 */
export class Engine extends EngineReads {
  readonly #s: EngineCore;

  private constructor(core: EngineCore) {
    super(core);
    this.#s = core;
  }

  /**
   * Opens an engine on a storage: reads what it holds (counts, sizes, TTL
   * schedule) and starts the background timers.
   *
   * @param storage The storage adapter.
   * @param settings Resolved settings.
   * @returns The engine.
   */
  static async open(
    storage: Storage,
    settings: EngineSettings,
  ): Promise<Engine> {
    const core = new EngineCore(storage, settings);
    try {
      await capMemoryLimit(core);
      await load(core);
    } catch (e) {
      await storage.close();
      throw e;
    }
    startTimers(core);
    return new Engine(core);
  }

  /** The storage adapter. */
  get storage(): Storage {
    return this.#s.storage;
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#s.closed;
  }

  /** Whether other processes may write the storage too. */
  get shared(): boolean {
    return this.#s.shared;
  }

  /** The resolved settings (a restore stages its writes with the same). */
  get settings(): EngineSettings {
    return this.#s.settings;
  }

  /**
   * A new auto key.
   *
   * @returns A unique, time-ordered key.
   */
  newKey(): string {
    return this.#s.keys.next();
  }

  /**
   * Applies puts and deletes to one collection in one atomic commit.
   *
   * @param collection Collection name.
   * @param ops The steps; each id at most once.
   * @param action For error messages.
   * @returns Per step, whether a visible item existed before.
   * @throws {TooLargeError} A record is over `maxValueBytes`.
   * @throws {QuotaError} The write would pass `memoryLimit`.
   * @throws {DuplicateKeyError} An id or unique index value is taken.
   * @throws {ConflictError} An expected version does not match, or another
   *   writer won every retry.
   */
  write(
    collection: string,
    ops: readonly WriteOp[],
    action: string,
  ): Promise<boolean[]> {
    const s = this.#s;
    if (s.volatile && !s.closed) {
      // The fast path, when nothing else is queued: done before returning.
      try {
        const existed = writeNow(s, collection, ops, action);
        if (existed !== undefined) {
          poke(s);
          return Promise.resolve(existed);
        }
      } catch (e) {
        return Promise.reject(e);
      }
    }
    // One item, only this process writes: it may commit with others
    // waiting (put_group.ts).
    if (ops.length === 1 && !s.shared) {
      return groupWrite(s, collection, ops[0]!, action);
    }
    return transact(s, collection, action, () => Promise.resolve(ops));
  }

  /**
   * Applies one put or delete: at once when the fast path takes it (see
   * {@linkcode Engine.write}), else through the write queue.
   *
   * @param collection Collection name.
   * @param op The step.
   * @param action For error messages.
   * @returns `undefined` when the step was applied at once, else a promise
   *   settled once it is (as {@linkcode Engine.write}'s).
   * @throws What {@linkcode Engine.write} rejects with, synchronously when
   *   the fast path refuses the step.
   */
  writeOne(
    collection: string,
    op: WriteOp,
    action: string,
  ): Promise<boolean[]> | undefined {
    const s = this.#s;
    if (s.volatile && !s.closed) {
      if (writeOneNow(s, collection, op, action) !== undefined) {
        poke(s);
        return undefined;
      }
    }
    // Only this process writes: single writes waiting together commit as
    // one (put_group.ts).
    if (!s.shared) return groupWrite(s, collection, op, action);
    return transact(s, collection, action, () => Promise.resolve([op]));
  }

  /**
   * Writes puts of items taken as new (`putBatch` with `assumeNew`): on
   * Deno KV, for a collection without indexes, one mutation and no version
   * check per item, in commits of up to about 975 items (write_new.ts);
   * elsewhere as `putBatch` with `atomic: false` does. Not atomic as a whole.
   *
   * @param collection Collection name.
   * @param ops The puts, each id at most once.
   * @param action For error messages.
   * @returns When every item is written.
   */
  async writeNew(
    collection: string,
    ops: readonly WriteOp[],
    action: string,
  ): Promise<void> {
    const split = (rest: readonly WriteOp[]) =>
      writeSplit(this, collection, rest, action);
    if (!this.#s.shared || this.#s.storage.limits === undefined) {
      await split(ops);
      return;
    }
    await writeNew(this.#s, collection, ops, action, split);
  }

  /**
   * Runs `fn` while this engine's writes wait (a backup's point in time).
   * `fn` must not write through the engine.
   *
   * @param fn The work.
   * @returns What `fn` returns.
   */
  exclusive<R>(fn: () => Promise<R>): Promise<R> {
    this.#s.assertOpen("Cannot hold writes");
    return this.#s.enqueue(fn);
  }

  /**
   * How many items one write of a bulk load should carry: what one commit of
   * the storage holds for this collection, or 1,000 without limits.
   *
   * @param collection Collection name.
   * @returns Items per write.
   */
  batchSize(collection: string): number {
    const s = this.#s;
    if (s.storage.limits === undefined) return 1000;
    return Math.max(1, Math.min(40, s.groupSize(s.state(collection))));
  }

  /**
   * Registers a function to run when `close()` is called.
   *
   * @param fn The function.
   */
  onClose(fn: () => void): void {
    this.#s.onClose.push(fn);
  }

  /**
   * Stops the timers, waits for queued writes and closes the storage.
   * Idempotent.
   *
   * @returns When everything is released.
   */
  close(): Promise<void> {
    const s = this.#s;
    if (s.closing !== undefined) return s.closing;
    s.closed = true;
    for (const id of s.timers) clearInterval(id);
    s.timers = [];
    for (const fn of s.onClose.splice(0)) fn();
    s.closing = s.queue.then(() => s.storage.close());
    return s.closing;
  }

  /**
   * Throws a `ClosedError` when closed.
   *
   * @param action What is being attempted.
   */
  assertOpen(action: string): void {
    return this.#s.assertOpen(action);
  }

  /**
   * Runs `build` in the write queue (so nothing else writes meanwhile), then
   * applies the steps it returns in one atomic commit. On a shared storage a
   * lost race runs `build` again, up to `maxRetries` times.
   *
   * @param collection Collection name.
   * @param action For error messages.
   * @param build Reads what it needs and returns the steps; each id at most
   *   once.
   * @returns Per step, whether a visible item existed before.
   */
  transact(
    collection: string,
    action: string,
    build: () => Promise<readonly WriteOp[]>,
    regroup?: (ids: readonly string[]) => Promise<readonly WriteOp[]>,
  ): Promise<boolean[]> {
    return transact(this.#s, collection, action, build, regroup);
  }

  /**
   * On a shared storage, reloads a collection's index definitions when
   * another process changed them (one read when nothing changed).
   *
   * @param collection Collection name.
   * @returns When the definitions are current.
   */
  sync(collection: string): Promise<void> {
    return sync(this.#s, collection);
  }

  /**
   * Creates a secondary index from the collection's current items, in one
   * commit with its definition. An identical existing index is kept.
   *
   * @param collection Collection name.
   * @param spec The index.
   * @param action For error messages.
   * @returns The index's name.
   * @throws {TypeError} When an index of that name exists with other options.
   * @throws {DuplicateKeyError} When a unique index meets a duplicate.
   */
  createIndex(
    collection: string,
    spec: IndexSpec,
    action: string,
  ): Promise<string> {
    return createIndex(this.#s, collection, spec, action);
  }

  /**
   * Drops a secondary index and its entries in one commit.
   *
   * @param collection Collection name.
   * @param name The index's name.
   * @param action For error messages.
   * @returns Whether it existed.
   */
  dropIndex(
    collection: string,
    name: string,
    action: string,
  ): Promise<boolean> {
    return dropIndex(this.#s, collection, name, action);
  }

  /**
   * Deletes every stored document of a collection in one commit.
   *
   * @param collection Collection name.
   * @param action For error messages.
   * @returns How many visible items were removed.
   */
  clear(collection: string, action: string): Promise<number> {
    return clear(this.#s, collection, action);
  }

  /**
   * Starts a bounded background sweep when the earliest expiry has passed.
   * Never awaited by the caller; errors land in `stats().lastError`.
   */
  poke(): void {
    return poke(this.#s);
  }

  /**
   * Removes up to `limit` expired items, earliest first.
   *
   * @param limit Most items to remove.
   * @returns How many were removed.
   */
  sweep(limit: number = SWEEP_BATCH): Promise<number> {
    return sweep(this.#s, limit);
  }

  /**
   * Removes every expired item now.
   *
   * @returns How many were removed.
   */
  cleanup(): Promise<number> {
    return cleanup(this.#s);
  }

  /**
   * Has the storage load other processes' changes (a read-only file
   * database), then rebuilds counts, schedules and index definitions.
   *
   * @returns Whether anything changed.
   */
  refresh(): Promise<boolean> {
    return refresh(this.#s);
  }

  /**
   * Rebuilds counts, sizes, schedules and index definitions from storage
   * after changes written to it directly (a restore applies its staged
   * commit so), then tells watchers of those changes. Call it inside
   * {@linkcode Engine.exclusive}.
   *
   * @param changes The document changes to report (asked only when
   *   someone watches).
   * @returns When the bookkeeping is rebuilt.
   */
  reloaded(changes: () => readonly Change[]): Promise<void> {
    return reloaded(this.#s, changes);
  }

  /**
   * Removes every expired item, then lets the storage drop dead data (the
   * file storage rewrites its log).
   *
   * @param onProgress Told how far the storage's rewrite is.
   * @returns Whether the storage rewrote anything.
   */
  compact(onProgress?: ProgressCallback): Promise<boolean> {
    return compact(this.#s, onProgress);
  }
}
