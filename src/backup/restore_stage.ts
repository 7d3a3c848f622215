/**
 * Staging for restore: a restore runs the ordinary engine (clear, index
 * definitions, loads with their metadata) over an overlay of the database's
 * storage that keeps every write in memory, then hands what it staged to the
 * storage as ONE commit. A restore that fails, or a process killed while it
 * runs, changes nothing; a storage that writes a commit atomically (memory,
 * the file storage's one log frame) holds either the old database or the
 * restored one afterwards.
 *
 * @module
 */

import { binaryString, compareBytes } from "../bytes.ts";
import { decodeKey } from "../key_codec.ts";
import { Engine } from "../engine/engine.ts";
import { ClosedError, ConflictError, TooLargeError } from "../errors.ts";
import { KeyTable } from "../engine/key_table.ts";
import type { StoredRecord } from "../value_codec.ts";
import type {
  ScanOptions,
  Storage,
  StorageCapabilities,
  StorageCheck,
  StorageCommit,
  StorageCommitResult,
  StorageEntry,
  StorageSet,
} from "../storage/contract.ts";
import type { Change } from "../types.ts";

/**
 * The most a restore stages (keys and values written, keys deleted): the
 * file storage's largest commit (one log frame of 1 GiB).
 */
export const MAX_STAGED_BYTES: number = 1 << 30;

/** Marks a staged deletion in the overlay's table. */
const DELETED: unique symbol = Symbol("deleted");
const NOTHING = new Uint8Array(0);
const PAGE = 256;

/** What the overlay staged, as one commit. */
export interface StagedCommit {
  /** Keys written, with their memos and expiry hints. */
  readonly sets: readonly StorageSet[];
  /** Keys deleted. */
  readonly deletes: readonly Uint8Array[];
  /**
   * Versions of the underlying storage that staged commits relied on (the
   * first seen per key): a shared storage checks them again when the staged
   * commit is applied.
   */
  readonly checks: readonly StorageCheck[];
  /** Bytes staged (keys and values). */
  readonly bytes: number;
}

/**
 * A storage that reads through to another and keeps its own writes in
 * memory, never touching the one below. Scans merge both in key order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryStorage } from "@tether/db/storage";
 * import { OverlayStorage } from "./restore_stage.ts";
 * const below = new MemoryStorage();
 * const key = new Uint8Array([1]);
 * await below.commit({ sets: [{ key, value: new Uint8Array([1]) }] });
 * const overlay = new OverlayStorage(below);
 * await overlay.commit({ deletes: [key] });
 * assert.equal(await overlay.get(key), null);
 * assert.notEqual(await below.get(key), null);
 * assert.equal(overlay.staged().deletes.length, 1);
 * ```
 */
export class OverlayStorage implements Storage {
  readonly #below: Storage;
  readonly #table = new KeyTable();
  /** Expiry hints of staged sets, by key (binary string). */
  readonly #expiry = new Map<string, number>();
  /** Versions of the storage below that checks relied on, by key. */
  readonly #checks = new Map<string, StorageCheck>();
  readonly #limit: number;
  #version = 0;
  #bytes = 0;
  #closed = false;

  /**
   * @param below The storage read through.
   * @param limit The most bytes to stage (a `TooLargeError` beyond).
   */
  constructor(below: Storage, limit: number = MAX_STAGED_BYTES) {
    this.#below = below;
    this.#limit = limit;
    this.blind = below.blind;
  }

  /** The storage below's capabilities (it is shared if that one is). */
  get capabilities(): StorageCapabilities {
    const { nativeExpiry, shared } = this.#below.capabilities;
    return { nativeExpiry, shared };
  }

  /** No limits: everything staged goes into one commit. */
  readonly limits: undefined = undefined;

  /** The storage below's keyed digests (blind indexes), if any. */
  readonly blind: Storage["blind"];

  #alive(action: string): void {
    if (this.#closed) {
      throw new ClosedError(`Cannot ${action}: the restore has ended`);
    }
  }

  #staged(slot: StorageEntry): StorageEntry | null {
    return slot.memo === DELETED ? null : slot;
  }

  /**
   * Reads one key: as staged, else from below.
   *
   * @param key The key.
   * @returns The entry, or `null`.
   */
  async get(key: Uint8Array): Promise<StorageEntry | null> {
    this.#alive("get");
    const slot = this.#table.get(key);
    if (slot !== undefined) return this.#staged(slot);
    return await this.#below.get(key);
  }

  /**
   * Reads several keys.
   *
   * @param keys The keys.
   * @returns An entry or `null` per key.
   */
  async getMany(
    keys: readonly Uint8Array[],
  ): Promise<(StorageEntry | null)[]> {
    this.#alive("get");
    const out: (StorageEntry | null)[] = [];
    const missing: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const slot = this.#table.get(keys[i]!);
      if (slot === undefined) missing.push(i);
      out.push(slot === undefined ? null : this.#staged(slot));
    }
    if (missing.length > 0) {
      const found = await this.#below.getMany(missing.map((i) => keys[i]!));
      for (let j = 0; j < missing.length; j++) {
        out[missing[j]!] = found[j] ?? null;
      }
    }
    return out;
  }

  /**
   * Visits entries in key order: the staged ones merged with those below
   * (a staged write or deletion hides the key below).
   *
   * @param options Which keys.
   * @returns The pages.
   */
  async *scan(options: ScanOptions): AsyncIterable<readonly StorageEntry[]> {
    this.#alive("scan");
    const { limit, ...range } = options;
    const staged = this.#table.scan(range, () => this.#alive("scan"));
    if (this.#table.size === 0) {
      // Nothing staged (yet): the pages below as they are.
      let left = limit ?? Infinity;
      for await (const page of this.#below.scan(options)) {
        this.#alive("scan");
        yield page.length <= left ? page : page.slice(0, left);
        left -= page.length;
        if (left <= 0) return;
      }
      return;
    }
    const sign = options.reverse === true ? -1 : 1;
    const a = new Pages(staged);
    const b = new Pages(this.#below.scan(range));
    let left = limit ?? Infinity;
    let page: StorageEntry[] = [];
    try {
      while (left > 0) {
        const x = await a.peek();
        const y = await b.peek();
        if (x === undefined && y === undefined) break;
        let entry: StorageEntry | null;
        if (y === undefined) {
          entry = this.#staged(x!);
          a.skip();
        } else if (x === undefined) {
          entry = y;
          b.skip();
        } else {
          const order = sign * compareBytes(x.key, y.key);
          if (order <= 0) {
            entry = this.#staged(x);
            a.skip();
            if (order === 0) b.skip();
          } else {
            entry = y;
            b.skip();
          }
        }
        if (entry === null) continue;
        page.push(entry);
        left--;
        if (page.length >= PAGE) {
          yield page;
          page = [];
        }
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    if (page.length > 0) yield page;
  }

  async #current(key: Uint8Array): Promise<string | null> {
    const slot = this.#table.get(key);
    if (slot !== undefined) {
      return slot.memo === DELETED ? null : slot.versionstamp;
    }
    const found = (await this.#below.get(key))?.versionstamp ?? null;
    const id = binaryString(key);
    if (!this.#checks.has(id)) {
      this.#checks.set(id, { key, versionstamp: found });
    }
    return found;
  }

  /**
   * Stages a commit (checked against the staged view).
   *
   * @param commit Checks, sets and deletes.
   * @returns `{ ok: false }` when a check fails.
   * @throws {TooLargeError} When the restore would stage more than its limit.
   */
  async commit(commit: StorageCommit): Promise<StorageCommitResult> {
    this.#alive("commit");
    for (const check of commit.checks ?? []) {
      if ((await this.#current(check.key)) !== check.versionstamp) {
        return { ok: false };
      }
    }
    const sets = commit.sets ?? [];
    const deletes = commit.deletes ?? [];
    let delta = 0;
    for (const set of sets) {
      const before = this.#table.get(set.key);
      delta += set.key.length + set.value.length -
        (before === undefined ? 0 : before.key.length + before.value.length);
    }
    for (const key of deletes) {
      const before = this.#table.get(key);
      delta += key.length -
        (before === undefined ? 0 : before.key.length + before.value.length);
    }
    if (this.#bytes + delta > this.#limit) {
      throw new TooLargeError(
        `Cannot restore: a restore is applied as one commit, and this one passes ${this.#limit} bytes`,
      );
    }
    this.#bytes += delta;
    const versionstamp = `staged-${String(++this.#version).padStart(16, "0")}`;
    this.#table.apply(sets, [], versionstamp);
    this.#table.apply(
      deletes.map((key) => ({ key, value: NOTHING, memo: DELETED })),
      [],
      versionstamp,
    );
    for (const set of sets) {
      if (set.expireAt !== undefined) {
        this.#expiry.set(binaryString(set.key), set.expireAt);
      } else if (this.#expiry.size > 0) {
        this.#expiry.delete(binaryString(set.key));
      }
    }
    if (this.#expiry.size > 0) {
      for (const key of deletes) this.#expiry.delete(binaryString(key));
    }
    return { ok: true, versionstamp };
  }

  /**
   * Everything staged, as one commit.
   *
   * @returns The sets, deletes and checks.
   */
  staged(): StagedCommit {
    const sets: StorageSet[] = [];
    const deletes: Uint8Array[] = [];
    for (const slot of this.#table.slots()) {
      if (slot.memo === DELETED) {
        deletes.push(slot.key);
        continue;
      }
      const expireAt = this.#expiry.size === 0
        ? undefined
        : this.#expiry.get(binaryString(slot.key));
      const set: StorageSet = slot.memo === undefined
        ? { key: slot.key, value: slot.value }
        : { key: slot.key, value: slot.value, memo: slot.memo };
      sets.push(expireAt === undefined ? set : { ...set, expireAt });
    }
    return {
      sets,
      deletes,
      checks: [...this.#checks.values()],
      bytes: this.#bytes,
    };
  }

  /**
   * Stops reads and writes (what was staged stays, for `staged`); the
   * storage below stays open. Idempotent.
   */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /** Closes, and drops what was staged. */
  discard(): void {
    this.#closed = true;
    this.#table.clear();
    this.#expiry.clear();
    this.#checks.clear();
  }
}

/** Entries of a paged scan, one at a time (an await per page, not per entry). */
class Pages {
  readonly #pages: AsyncIterator<readonly StorageEntry[]>;
  #page: readonly StorageEntry[] = [];
  #at = 0;
  #done = false;

  constructor(pages: AsyncIterable<readonly StorageEntry[]>) {
    this.#pages = pages[Symbol.asyncIterator]();
  }

  /** The current entry; `undefined` at the end. */
  async peek(): Promise<StorageEntry | undefined> {
    while (this.#at >= this.#page.length) {
      if (this.#done) return undefined;
      const next = await this.#pages.next();
      if (next.done === true) {
        this.#done = true;
        return undefined;
      }
      this.#page = next.value;
      this.#at = 0;
    }
    return this.#page[this.#at];
  }

  /** Moves past the current entry (after a `peek` that found one). */
  skip(): void {
    this.#at++;
  }

  async close(): Promise<void> {
    if (!this.#done) await this.#pages.return?.();
  }
}

/**
 * A restore in progress: an engine over an overlay of the target engine's
 * storage, with the target's settings (limits, clock) and no timers.
 */
export class Stage {
  readonly #target: Engine;
  readonly #overlay: OverlayStorage;
  /** The engine that the restore writes through. */
  readonly engine: Engine;

  private constructor(target: Engine, overlay: OverlayStorage, engine: Engine) {
    this.#target = target;
    this.#overlay = overlay;
    this.engine = engine;
  }

  /**
   * Opens a stage over an engine's storage. Call it (and `apply`) inside
   * the target's `exclusive`, so that nothing writes below meanwhile.
   *
   * @param target The engine restored into.
   * @returns The stage.
   */
  static async open(target: Engine): Promise<Stage> {
    const overlay = new OverlayStorage(target.storage);
    const { log: _log, ...settings } = target.settings;
    const engine = await Engine.open(overlay, {
      ...settings,
      ttlCheckInterval: Infinity,
      cleanupInterval: Infinity,
    });
    return new Stage(target, overlay, engine);
  }

  /**
   * Writes what was staged into the target's storage, as one commit when the
   * storage can hold it (always for memory and file storages), then has the
   * target rebuild its bookkeeping (counts, TTL schedule, index definitions)
   * from the storage and tell watchers.
   *
   * @param action For error messages.
   * @returns How many commits it took (1 unless the storage limits them).
   * @throws {ConflictError} When another process changed what the restore
   *   read (shared storage; nothing was written).
   */
  async apply(action: string): Promise<number> {
    await this.engine.close(); // its queued work is done
    const { sets, deletes, checks } = this.#overlay.staged();
    const storage = this.#target.storage;
    const limits = storage.limits;
    const shared = storage.capabilities.shared;
    const fits = limits === undefined ||
      (sets.length + deletes.length <= limits.maxMutations &&
        (!shared || checks.length <= limits.maxChecks));
    let commits = 0;
    try {
      let whole = fits;
      if (fits) {
        try {
          await commitOnce(storage, {
            checks: shared ? checks : [],
            sets,
            deletes,
          }, action);
          commits = 1;
        } catch (e) {
          // Too large in bytes for one commit (Deno KV's 800 KiB): in steps.
          if (!(e instanceof TooLargeError) || limits === undefined) throw e;
          whole = false;
        }
      }
      if (!whole) {
        const size = limits!.maxMutations;
        // Writes first, then deletions: a crash in between leaves a mix of
        // both, never an empty database.
        commits += await inGroups(
          sets,
          size,
          (group) => commitOnce(storage, { sets: group }, action),
        );
        commits += await inGroups(
          deletes,
          size,
          (group) => commitOnce(storage, { deletes: group }, action),
        );
      }
    } finally {
      await this.#target.reloaded(() => changesOf(sets, deletes));
    }
    return commits;
  }

  /** Ends the stage, dropping what it staged. Idempotent. */
  async close(): Promise<void> {
    await this.engine.close();
    this.#overlay.discard();
  }
}

async function commitOnce(
  storage: Storage,
  commit: StorageCommit,
  action: string,
): Promise<void> {
  const result = await storage.commit(commit);
  if (!result.ok) {
    throw new ConflictError(
      `${action}: another process changed the database while the backup was read; nothing was restored`,
    );
  }
  await result.durable;
}

async function inGroups<I>(
  items: readonly I[],
  size: number,
  fn: (group: I[]) => Promise<void>,
): Promise<number> {
  let commits = 0;
  for (let i = 0; i < items.length;) {
    const n = Math.min(size, items.length - i);
    try {
      await fn(items.slice(i, i + n));
      commits++;
      i += n;
    } catch (e) {
      if (!(e instanceof TooLargeError) || n === 1) throw e;
      size = Math.max(1, n >> 1);
    }
  }
  return commits;
}

/** The document changes of a staged commit, for watchers. */
function changesOf(
  sets: readonly StorageSet[],
  deletes: readonly Uint8Array[],
): Change[] {
  const out: Change[] = [];
  const docOf = (key: Uint8Array) => {
    const parts = decodeKey(key);
    return parts[0] === "d" && parts.length === 3
      ? { collection: parts[1] as string, key: parts[2] as string }
      : undefined;
  };
  for (const key of deletes) {
    const doc = docOf(key);
    if (doc !== undefined) out.push({ type: "delete", ...doc });
  }
  for (const set of sets) {
    const doc = docOf(set.key);
    const version = (set.memo as StoredRecord | undefined)?.version;
    if (doc === undefined) continue;
    out.push(
      version === undefined
        ? { type: "put", ...doc }
        : { type: "put", ...doc, version },
    );
  }
  return out;
}
