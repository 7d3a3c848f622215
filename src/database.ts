/**
 * `open()` and the `Database` class.
 *
 * @module
 */

import { resolveLog } from "./logger.ts";
import { checkOptions, OPTIONS } from "./options.ts";
import { checkChanges } from "./engine/feed.ts";
import { Collection } from "./collection.ts";
import { indexSpecs } from "./collection/indexes.ts";
import type { CollectionOptions } from "./types.ts";
export type { CollectionOptions } from "./types.ts";

import {
  type CompactOptions,
  Engine,
  type EngineSettings,
  type VerifyOptions,
  type VerifyReport,
} from "./engine/engine.ts";
import { checkProgress } from "./progress.ts";
import {
  CodecStorage,
  type EncryptionOptions,
} from "./crypto/codec_storage.ts";
import {
  type BackupOptions,
  type BackupResult,
  type BackupSource,
  type BackupTarget,
  restoreBackup,
  type RestoreOptions,
  writeBackup,
} from "./backup/backup.ts";
import {
  exportNdjson,
  type ExportOptions,
  type ExportTarget,
  importNdjson,
  type ImportOptions,
  type ImportSource,
  type TransferResult,
} from "./backup/ndjson.ts";
import { openStorage, resolveMemoryLimit } from "./open_storage.ts";
import { minBytesOf } from "./crypto/codec_options.ts";
import { checkEnd } from "./backup/target_folder.ts";
import { checkEncryption } from "./crypto/codec_wrap.ts";
import type { Storage } from "./storage/contract.ts";
import type {
  DatabaseChangesOptions,
  DatabaseStats,
  FeedChange,
  OpenOptions,
  RekeyOptions,
} from "./types.ts";
import {
  checkCount,
  checkFlag,
  checkInterval,
  checkReadonly,
  checkSize,
  describeType,
} from "./validate.ts";

/** The name of the collection behind the database-level API. */
export const DEFAULT_COLLECTION = "default";

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

let create: <T>(engine: Engine) => Database<T>;

/**
 * An open database. It is also its default collection: `put`, `get`,
 * `query`, `find` and the rest work on the collection named `"default"`.
 *
 * Close it with `close()` or `await using`; closing stops its timers and
 * waits for queued writes.
 *
 * @typeParam T The default collection's values' type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * await db.put("user1", { name: "John", age: 30 }, { ttl: 3_600_000, tags: ["user"] });
 * assert((await db.query({ tags: "user" })).length === 1);
 * ```
 */
export class Database<T = unknown> extends Collection<T> {
  readonly #engine: Engine;
  readonly #collections = new Map<string, Collection<unknown>>();

  static {
    create = <T>(engine: Engine) => new Database<T>(engine);
  }

  private constructor(engine: Engine) {
    super(engine, DEFAULT_COLLECTION);
    this.#engine = engine;
    this.#collections.set(DEFAULT_COLLECTION, this as Collection<unknown>);
  }

  /**
   * The database's durable change feed: as
   * {@linkcode Collection.changes}, over every collection (or the ones in
   * `collections`), in one order of positions. (`db.collection("default")`
   * is the database, so its feed is this one.)
   *
   * @param options As {@linkcode Collection.changes}, plus `collections`.
   * @returns The changes.
   * @throws {TypeError} When an option has the wrong type or is unknown,
   *   or `collections` holds something that is not a collection name.
   * @throws {RangeError} When `limit` is not a whole number >= 1 or `since`
   *   is not a position of this feed.
   * @throws {FeedGapError} (from the first `next()`) When changes after
   *   `since` may be gone; resync from the start.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.collection("a").put("x", 1);
   * await db.collection("b").put("y", 2);
   * const all = await Array.fromAsync(db.changes({ live: false }));
   * assert.deepEqual(all.map((c) => c.collection), ["a", "b"]);
   * const onlyB = await Array.fromAsync(
   *   db.changes({ collections: ["b"], live: false }),
   * );
   * assert.equal(onlyB.length, 1);
   * ```
   */
  override changes(
    options: DatabaseChangesOptions = {},
  ): AsyncIterable<FeedChange<T>> {
    const action = "Cannot read the changes of the database";
    this.#engine.assertOpen(action);
    checkOptions(options, OPTIONS.databaseChanges, action);
    const request = checkChanges(options, action, options.collections);
    return this.#engine.durableChanges<T>(request);
  }

  /**
   * A named collection (created on first write). The same name always gives
   * the same object; `"default"` is the database itself.
   *
   * @typeParam U The collection's values' type.
   * @param name 1 to 128 characters: letters, digits, `_`, `-` and `.`, not
   *   starting with `-` or `.`.
   * @param options Indexes to declare (applied on the first call with a
   *   name; later calls return the same collection).
   * @returns The collection.
   * @throws {TypeError} When the name is not a string or has other characters.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const readings = db.collection<{ temp: number }>("readings");
   * await readings.put({ temp: 21.5 }, { ttl: 60_000 });
   * assert(await readings.count() === 1);
   * ```
   */
  collection<U = unknown>(
    name: string,
    options: CollectionOptions = {},
  ): Collection<U> {
    const action = "Cannot open a collection";
    this.#engine.assertOpen(action);
    if (typeof name !== "string" || !NAME.test(name)) {
      throw new TypeError(
        `${action}: the name must be 1-128 letters, digits, '_', '-' or '.', not starting with '-' or '.', got ${
          typeof name === "string" ? `'${name}'` : describeType(name)
        }`,
      );
    }
    checkOptions(options, OPTIONS.collection, action);
    const { indexes = [] } = options ?? {};
    if (!Array.isArray(indexes)) {
      throw new TypeError(
        `${action}: indexes must be an array of index declarations, got ${
          describeType(indexes)
        }`,
      );
    }
    for (const declaration of indexes) {
      if (typeof declaration !== "object" || declaration === null) {
        throw new TypeError(
          `${action}: an index declaration must be an object { fields, unique?, sparse? }, got ${
            describeType(declaration)
          }`,
        );
      }
      checkOptions(declaration, OPTIONS.indexDeclaration, action);
    }
    // Checked on every call, though applied on the first only: a later
    // call with a bad declaration is a mistake, not a no-op.
    indexSpecs(indexes, action);
    let collection = this.#collections.get(name);
    if (collection === undefined) {
      collection = new Collection<unknown>(
        this.#engine,
        name,
        indexes,
      );
      this.#collections.set(name, collection);
    }
    return collection as Collection<U>;
  }

  /**
   * Removes every expired item now (the sweeper also does it in the
   * background). Reads never show expired items either way.
   *
   * @returns How many items were removed.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * let now = 0;
   * await using db = await open({ clock: { now: () => now } });
   * await db.put("k", 1, { ttl: 10 });
   * now = 10;
   * assert(await db.cleanup() === 1);
   * ```
   */
  async cleanup(): Promise<number> {
    return await this.#engine.cleanup();
  }

  /**
   * Removes every expired item, then has the storage drop dead data: the
   * file storage rewrites its log with only live items (beside the old one,
   * renamed over it once complete, so a crash at any point loses nothing).
   * The file storage also compacts on its own when the log grows past
   * `compactRatio` times the live data, and at every `cleanupInterval`.
   * On memory storage it only removes expired items.
   *
   * @param options `onProgress(done, total)`: told how far the rewrite is
   *   (bytes of live records copied, of all of them), ending with
   *   `done === total`.
   * @returns Whether the storage rewrote anything (`false` when there was
   *   nothing to drop, or on memory storage).
   * @throws {ClosedError} After `close()`.
   * @throws {TypeError} On a database opened `readOnly`, or when an option
   *   is unknown or `onProgress` is not a function.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * const dir = await Deno.makeTempDir();
   * {
   *   await using db = await open({ path: `${dir}/app.tdb` });
   *   for (let i = 0; i < 100; i++) await db.put("counter", i);
   *   const before = db.stats().storageStats?.fileBytes as number;
   *   assert(await db.compact());
   *   assert((db.stats().storageStats?.fileBytes as number) < before);
   * }
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async compact(options: CompactOptions = {}): Promise<boolean> {
    const action = "Cannot compact";
    this.#engine.assertOpen(action);
    checkOptions(options, OPTIONS.compact, action);
    return await this.#engine.compact(
      checkProgress(options.onProgress, action),
    );
  }

  /**
   * Writes every live document as NDJSON, one per line, with its
   * collection (`col`), key (`id`), value (`v`, dates as ISO strings listed
   * in `d`), times (`c`, `u`), version (`n`), tags (`t`) and expiry (`x`).
   *
   * @param target A file path (created or truncated) or a `WritableStream`
   *   (closed at the end).
   * @param options `collections`: only these.
   * @returns How many documents were written.
   * @throws {TypeError} When a collection name is invalid.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.collection("r").insert({ _id: "a", t: 1 });
   * const chunks: Uint8Array[] = [];
   * await db.export(new WritableStream({ write: (c) => void chunks.push(c) }));
   * const line = JSON.parse(new TextDecoder().decode(chunks[0]));
   * assert.deepEqual([line.col, line.id, line.v], ["r", "a", { _id: "a", t: 1 }]);
   * ```
   */
  async export(
    target: ExportTarget,
    options: ExportOptions = {},
  ): Promise<TransferResult> {
    this.#engine.assertOpen("Cannot export");
    checkEnd(target, false, "Cannot export");
    checkOptions(options, OPTIONS.export, "Cannot export");
    return await exportNdjson(this.#engine, target, options);
  }

  /**
   * Stores the documents of NDJSON written by `export` (or by another tool
   * in the same shape), with their keys, metadata and TTLs. Every line is
   * checked first: a malformed one is a `TypeError` naming its number and
   * nothing is stored. Lines whose item has expired are skipped.
   *
   * @param source A file path or a `ReadableStream` (a stream's lines are
   *   kept in memory while they are checked, and past 16 Mi characters
   *   spilled to a temporary file in the system's temporary folder,
   *   removed at the end; a file is read twice instead).
   * @param options `mode`: `"merge"` (default) or `"replace"` (each
   *   collection in the input is emptied first).
   * @returns How many documents were stored and how many had expired.
   * @throws {TypeError} When a line is malformed (nothing is stored).
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * const text = '{"col":"r","id":"a","v":{"t":1},"c":1,"u":2,"n":3}\n';
   * const result = await db.import(new Blob([text]).stream());
   * assert.equal(result.documents, 1);
   * assert.equal((await db.collection("r").getEntry("a"))?.version, 3);
   * ```
   */
  async import(
    source: ImportSource,
    options: ImportOptions = {},
  ): Promise<TransferResult> {
    this.#engine.assertOpen("Cannot import");
    checkEnd(source, true, "Cannot import");
    checkOptions(options, OPTIONS.import, "Cannot import");
    return await importNdjson(this.#engine, source, options);
  }

  /**
   * The names of the collections that hold documents (whether opened in
   * this process or not).
   *
   * @returns The names, sorted.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.collection("b").insert({ n: 1 });
   * await db.put("k", 1);
   * assert.deepEqual(await db.collections(), ["b", "default"]);
   * ```
   */
  async collections(): Promise<string[]> {
    this.#engine.assertOpen("Cannot list collections");
    return await this.#engine.collectionNames();
  }

  /**
   * Reads everything stored and reports what fails verification: values
   * failing their MAC or checksum (encrypted or compressed databases),
   * records that do not decode, index entries pointing at no document,
   * live documents missing an index entry or whose unique index entry
   * names another document. It does not stop at the first problem.
   *
   * @param options `onProgress(done, total)`: told how many stored values
   *   are checked, of about how many, ending with `done === total`.
   * @returns How many stored values were checked, and the problems.
   * @throws {ClosedError} After `close()`.
   * @throws {TypeError} When an option is unknown or `onProgress` is not a
   *   function.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.put("k", 1);
   * assert.deepEqual((await db.verify()).problems, []);
   * ```
   */
  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    const action = "Cannot verify";
    this.#engine.assertOpen(action);
    checkOptions(options, OPTIONS.verify, action);
    return await this.#engine.verify(checkProgress(options.onProgress, action));
  }

  /**
   * Writes a backup of every live document: a point-in-time copy (this
   * database's writes wait while it is taken), streamed, compressed, with a
   * checksum chain (HMAC under the backup's secret when encrypted), and
   * encrypted when the database is (under the same
   * secret) or when `encryption` gives a secret of its own. Restores into
   * any storage. See FORMAT.md, "Backup".
   *
   * @param target A file path (created or truncated) or a `WritableStream`
   *   (closed at the end).
   * @param options `collections`: only these; `encryption`: the backup's own
   *   secret.
   * @returns How many documents and bytes were written.
   * @throws {ClosedError} After `close()`.
   * @throws {TypeError} When an option is unknown or malformed (`onProgress`
   *   not a function).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.collection("r").insert({ _id: "a", t: 1 });
   * const chunks: Uint8Array[] = [];
   * const done = await db.backup(new WritableStream({ write: (c) => void chunks.push(c) }));
   * assert.equal(done.documents, 1);
   * await using copy = await open();
   * await copy.restore(new Blob(chunks as Uint8Array<ArrayBuffer>[]).stream());
   * assert.deepEqual(await copy.collection("r").get("a"), { _id: "a", t: 1 });
   * ```
   */
  async backup(
    target: BackupTarget,
    options: BackupOptions = {},
  ): Promise<BackupResult> {
    this.#engine.assertOpen("Cannot back up");
    checkEnd(target, false, "Cannot back up");
    checkOptions(options, OPTIONS.backup, "Cannot back up");
    checkEncryptionOptions(options?.encryption, "Cannot back up");
    checkProgress(options?.onProgress, "Cannot back up");
    return await writeBackup(this.#engine, target, options);
  }

  /**
   * Restores a backup: reads it once, verifying all of it (format, header,
   * checksum, MACs, every document) while staging it in memory, then writes
   * it as one commit, so a damaged, truncated or forged backup is an error
   * and the database is exactly as before, and a crash leaves the old or the
   * restored database. With `mode: "replace"` (default) the database becomes
   * the backup's documents with their metadata and TTLs (`"merge"` only
   * overwrites the same keys).
   *
   * @param source A file path or a `ReadableStream`, read once.
   * @param options `mode`; `encryption`: the backup's secret, when this
   *   database was not opened with it.
   * @returns How many documents were stored, and how many had expired since.
   * @throws {IntegrityError} When the backup fails verification (nothing
   *   changed).
   * @throws {WrongKeyError} When it is encrypted and cannot be opened.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { IntegrityError, open } from "@tether/db";
   * await using db = await open();
   * await db.put("k", 1);
   * const bad = new Blob([new TextEncoder().encode("TETHERBK....")]).stream();
   * await assert.rejects(db.restore(bad), IntegrityError);
   * assert.equal(await db.get("k"), 1);
   * ```
   */
  async restore(
    source: BackupSource,
    options: RestoreOptions = {},
  ): Promise<TransferResult> {
    this.#engine.assertOpen("Cannot restore");
    checkEnd(source, true, "Cannot restore");
    checkOptions(options, OPTIONS.restore, "Cannot restore");
    checkEncryptionOptions(options?.encryption, "Cannot restore");
    return await restoreBackup(this.#engine, source, options);
  }

  /**
   * Re-encrypts every stored value under a new passphrase or key (and new
   * data keys). Each step is atomic: if it is interrupted, the database
   * opens with the old secret or the new one, and calling `rekey` again
   * finishes the job. Writes may go on meanwhile, and every one acknowledged
   * before, during or after it is kept. At the end the old secret is
   * revoked: its key wrap is dropped and a file is compacted, so the old
   * secret opens nothing of it (backups made before keep their own secret).
   * On Deno KV, other processes must reopen the database afterwards.
   *
   * @param secret `{ passphrase, iterations? }` or `{ key }`.
   * @param options `onProgress(done, total)`: told how many values are
   *   re-encrypted, of how many, ending with `done === total`.
   * @returns How many stored values were re-encrypted.
   * @throws {TypeError} When the database is not encrypted, the secret is
   *   malformed, an option is unknown or `onProgress` is not a function.
   * @throws {RangeError} When `iterations` is not from 1,000 to 5,000,000.
   * @throws {ClosedError} After `close()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open({
   *   encryption: { passphrase: "old secret", iterations: 1000 },
   * });
   * await db.put("k", { a: 1 });
   * assert.equal(await db.rekey({ passphrase: "new secret", iterations: 1000 }), 1);
   * assert.deepEqual(await db.get("k"), { a: 1 });
   * ```
   */
  async rekey(
    secret: EncryptionOptions,
    options: RekeyOptions = {},
  ): Promise<number> {
    const action = "Cannot rekey the database";
    this.#engine.assertOpen(action);
    checkOptions(options, OPTIONS.rekey, action);
    checkEncryptionOptions(secret, action);
    const onProgress = checkProgress(options.onProgress, action);
    const storage = this.#engine.storage;
    if (!(storage instanceof CodecStorage) || !storage.encrypted) {
      throw new TypeError(`${action}: it is not encrypted`);
    }
    return await storage.rekey(secret, onProgress);
  }

  /**
   * For a database opened `readOnly` on a file another process writes:
   * loads the commits made since it was opened (or last refreshed). A
   * read-only database otherwise shows the file as it was when opened.
   * Elsewhere it does nothing and returns `false`.
   *
   * @returns Whether anything changed.
   * @throws {ClosedError} After `close()`.
   * @throws {IntegrityError} The new part of the file is damaged.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * const dir = await Deno.makeTempDir();
   * {
   *   await using writer = await open({ path: `${dir}/app.tdb` });
   *   await using reader = await open({ path: `${dir}/app.tdb`, readOnly: true });
   *   await writer.put("k", 1);
   *   assert.equal(await reader.get("k"), null);
   *   assert(await reader.refresh());
   *   assert.equal(await reader.get("k"), 1);
   * }
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async refresh(): Promise<boolean> {
    return await this.#engine.refresh();
  }

  /**
   * Counters and sizes: visible items, TTL items, bytes, operation counts,
   * sweeps.
   *
   * @returns A snapshot.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * await using db = await open();
   * await db.put("k", 1);
   * assert(db.stats().items === 1 && db.stats().ops.puts === 1);
   * ```
   */
  stats(): DatabaseStats {
    return this.#engine.stats();
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#engine.closed;
  }

  /**
   * Stops background work, waits for queued writes and releases the storage.
   * Idempotent; every later call rejects with a `ClosedError`.
   *
   * @returns When the database is closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { open } from "@tether/db";
   * const db = await open();
   * await db.close();
   * await db.close();
   * assert(db.closed);
   * ```
   */
  close(): Promise<void> {
    return this.#engine.close();
  }

  /**
   * Closes the database at the end of an `await using` block.
   *
   * @returns When the database is closed.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Refuses names an `encryption` option does not take. */
function checkEncryptionOptions(encryption: unknown, action: string): void {
  if (encryption === undefined) return;
  if (typeof encryption === "object" && encryption !== null) {
    checkOptions(encryption, OPTIONS.encryption, action);
  }
  // `null`, a number, a string: a mistake, not "no secret".
  checkEncryption(encryption as EncryptionOptions, action);
}

/** Refuses option names `open()` does not know, at every level. */
function checkOpenOptions(options: OpenOptions): void {
  const action = "Cannot open the database";
  checkOptions(options, OPTIONS.open, action);
  const { encryption, compression } = options;
  checkEncryptionOptions(encryption, action);
  if (typeof compression === "object" && compression !== null) {
    checkOptions(compression, OPTIONS.compression, action);
  }
}

/**
 * Opens a database. With no options it is in memory, with a TTL sweep every
 * 10 s and no memory limit.
 *
 * @typeParam T The default collection's values' type.
 * @param options Storage, TTL intervals, limits, clock and abort signal.
 * @returns The open database.
 * @throws {RangeError} When an option is out of range.
 * @throws {TypeError} When an option has the wrong type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open({ ttlCheckInterval: 5_000 });
 * const key = await db.put({ temp: 21.5 }, { ttl: 60_000, tags: ["sensor"] });
 * assert(await db.get(key) !== null);
 * ```
 */
export async function open<T = unknown>(
  options: OpenOptions = {},
): Promise<Database<T>> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot open the database: options must be an object, got ${
        describeType(options)
      }`,
    );
  }
  checkOpenOptions(options);
  const { signal } = options;
  signal?.throwIfAborted();
  const given = options.clock ?? Date;
  if (typeof given?.now !== "function") {
    throw new TypeError(
      "Cannot open the database: clock must have a now() method",
    );
  }
  const clock = given === Date ? Date : checkedClock(given);
  clock.now(); // a clock that gives no time fails here, not in a write
  const log = resolveLog(options.logger, options.logLevel);
  const settings: EngineSettings = {
    log,
    clock,
    ttlCheckInterval: checkInterval(
      options.ttlCheckInterval,
      "ttlCheckInterval",
      10_000,
    ),
    cleanupInterval: checkInterval(
      options.cleanupInterval,
      "cleanupInterval",
      3_600_000,
    ),
    maxValueBytes: checkSize(
      options.maxValueBytes,
      "maxValueBytes",
      65_536,
    ),
    memoryLimit: resolveMemoryLimit(options.memoryLimit),
    maxRetries: checkCount(
      options.maxRetries,
      "maxRetries",
      "Cannot open the database",
      3,
    ),
    retryDelay: checkCount(
      options.retryDelay,
      "retryDelay",
      "Cannot open the database",
      100,
    ),
    feed: checkFlag(options.feed, "feed", "Cannot open the database") === true,
    readonly: checkReadonly(options.readonly, "Cannot open the database") ===
      true,
    tombstoneRetention: checkInterval(
      options.tombstoneRetention,
      "tombstoneRetention",
      604_800_000,
    ),
  };
  // Checked before the storage is opened: a refused open creates nothing.
  if (options.encryption !== undefined) {
    checkEncryption(options.encryption, "Cannot open the database");
  }
  minBytesOf(options.compression, "Cannot open the database");
  const inner = await openStorage(
    options.clock === undefined ? options : { ...options, clock },
  );
  let storage: Storage;
  try {
    storage = await CodecStorage.open(inner, {
      encryption: options.encryption,
      compression: options.compression,
      logger: options.logger,
      logLevel: options.logLevel,
    });
  } catch (e) {
    await inner.close();
    throw e;
  }
  const engine = await Engine.open(storage, settings);
  const db = create<T>(engine);
  if (signal !== undefined) {
    const onAbort = () => void db.close();
    signal.addEventListener("abort", onAbort, { once: true });
    engine.onClose(() => signal.removeEventListener("abort", onAbort));
  }
  return db;
}

/**
 * A clock whose every reading is checked: a time that is not a finite
 * number (NaN, Infinity, a string) would be written into records, TTLs and
 * keys, so it is a `TypeError` before anything uses it.
 *
 * @param clock The caller's clock.
 * @returns The checked clock.
 */
function checkedClock(clock: { now(): number }): { now(): number } {
  return {
    now(): number {
      const t = clock.now();
      if (typeof t !== "number" || !Number.isFinite(t)) {
        throw new TypeError(
          `Cannot read the time: the clock's now() gave ${
            typeof t === "number" ? t : typeof t
          }, not a finite number of epoch milliseconds`,
        );
      }
      return t;
    },
  };
}
