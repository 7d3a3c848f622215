/**
 * Reopen-after-every-step harnesses: the conformance suites run unchanged on
 * a database (or storage) that is closed and opened again from its file
 * after every write, so every assertion reads what was persisted.
 */

import type { Database, DatabaseStats } from "../../mod.ts";
import type {
  ScanOptions,
  Storage,
  StorageCapabilities,
  StorageCommit,
  StorageCommitResult,
  StorageEntry,
  StorageLimits,
} from "../../src/storage/contract.ts";

/** The methods after which the database is reopened. */
const WRITES = new Set<PropertyKey>([
  "put",
  "putBatch",
  "delete",
  "deleteBatch",
  "deleteMany",
  "insert",
  "insertMany",
  "update",
  "replace",
  "clear",
  "createIndex",
  "dropIndex",
  "cleanup",
  "compact",
  "unload",
]);

/** Counters that `stats()` reports "since open": summed over reopens. */
interface Counters {
  puts: number;
  gets: number;
  deletes: number;
  queries: number;
  sweeps: number;
  expired: number;
  sweepErrors: number;
}

/**
 * A database stand-in that forwards to the current database and, once a
 * write method has settled (resolved or rejected) and no other call is in
 * flight, closes it and opens it again. Collections it hands out forward to
 * the current database's collection; `stats()` counters run from the first
 * open, as they would without reopening. After the caller's own `close()`
 * it stops reopening.
 *
 * @param first The database to start with.
 * @param reopen Opens the same database again.
 * @returns The stand-in, and the number of reopens so far.
 */
export function reopening(
  first: Database,
  reopen: () => Promise<Database>,
): { db: Database; reopens: () => number } {
  let current = first;
  let count = 0;
  let inflight = 0;
  let dirty = false;
  let closed = false;
  let cycling: Promise<void> | undefined;
  const before: Counters = {
    puts: 0,
    gets: 0,
    deletes: 0,
    queries: 0,
    sweeps: 0,
    expired: 0,
    sweepErrors: 0,
  };
  const cycle = async (): Promise<void> => {
    // After close: a sweep still in flight counts in what it left.
    await current.close();
    const s = current.stats();
    before.puts += s.ops.puts;
    before.gets += s.ops.gets;
    before.deletes += s.ops.deletes;
    before.queries += s.ops.queries;
    before.sweeps += s.sweeps;
    before.expired += s.expired;
    before.sweepErrors += s.sweepErrors;
    current = await reopen();
    count++;
  };
  const settle = async (): Promise<void> => {
    inflight--;
    if (inflight === 0 && dirty && !closed) {
      dirty = false;
      cycling = cycle();
      try {
        await cycling;
      } finally {
        cycling = undefined;
      }
    }
  };
  const stats = (): DatabaseStats => {
    const s = current.stats();
    return {
      ...s,
      ops: {
        puts: s.ops.puts + before.puts,
        gets: s.ops.gets + before.gets,
        deletes: s.ops.deletes + before.deletes,
        queries: s.ops.queries + before.queries,
      },
      sweeps: s.sweeps + before.sweeps,
      expired: s.expired + before.expired,
      sweepErrors: s.sweepErrors + before.sweepErrors,
    };
  };
  const collections = new Map<string, object>();
  const wrap = (target: () => object): object =>
    new Proxy({}, {
      get(_, prop) {
        const obj = target();
        const value = Reflect.get(obj, prop, obj);
        if (typeof value !== "function") return value;
        if (prop === "stats" && obj === current) return stats;
        return (...args: unknown[]) => {
          if (prop === "collection") {
            const made = (current.collection as (...a: unknown[]) => object)(
              ...args,
            );
            const name = String(args[0]);
            if (name === "default") return self;
            let proxy = collections.get(name);
            if (proxy === undefined) {
              proxy = wrap(() =>
                (current.collection as (...a: unknown[]) => object)(...args)
              );
              collections.set(name, proxy);
            }
            void made;
            return proxy;
          }
          if (prop === "close") closed = true;
          const result = (value as (...a: unknown[]) => unknown).apply(
            target(),
            args,
          );
          if (!(result instanceof Promise)) return result;
          inflight++;
          if (WRITES.has(prop)) dirty = true;
          return result.then(
            async (x) => {
              await settle();
              return x;
            },
            async (e) => {
              await settle();
              throw e;
            },
          );
        };
      },
    });
  void cycling;
  const self = wrap(() => current);
  return {
    db: self as Database,
    reopens: () => count,
  };
}

/**
 * A storage stand-in that closes and reopens the real storage after every
 * commit (before the next operation, never during a scan).
 */
export class ReopeningStorage implements Storage {
  #current: Storage;
  readonly #reopen: () => Promise<Storage>;
  #dirty = false;
  #scans = 0;
  #closed = false;
  /** How many times it reopened. */
  reopens = 0;

  /**
   * @param first The storage to start with.
   * @param reopen Opens the same storage again.
   */
  constructor(first: Storage, reopen: () => Promise<Storage>) {
    this.#current = first;
    this.#reopen = reopen;
  }

  /** The current storage's capabilities. */
  get capabilities(): StorageCapabilities {
    return this.#current.capabilities;
  }

  /** The current storage's limits. */
  get limits(): StorageLimits | undefined {
    return this.#current.limits;
  }

  async #fresh(): Promise<Storage> {
    if (this.#dirty && this.#scans === 0 && !this.#closed) {
      this.#dirty = false;
      await this.#current.close();
      this.#current = await this.#reopen();
      this.reopens++;
    }
    return this.#current;
  }

  /** @inheritdoc */
  async get(key: Uint8Array): Promise<StorageEntry | null> {
    return await (await this.#fresh()).get(key);
  }

  /** @inheritdoc */
  async getMany(
    keys: readonly Uint8Array[],
  ): Promise<(StorageEntry | null)[]> {
    return await (await this.#fresh()).getMany(keys);
  }

  /** @inheritdoc */
  async *scan(options: ScanOptions): AsyncIterable<readonly StorageEntry[]> {
    const storage = await this.#fresh();
    this.#scans++;
    try {
      yield* storage.scan(options);
    } finally {
      this.#scans--;
    }
  }

  /** @inheritdoc */
  async commit(commit: StorageCommit): Promise<StorageCommitResult> {
    const result = await (await this.#fresh()).commit(commit);
    if (result.ok) {
      await result.durable;
      this.#dirty = true;
      return { ok: true, versionstamp: result.versionstamp };
    }
    return result;
  }

  /** @inheritdoc */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#current.close();
  }
}
