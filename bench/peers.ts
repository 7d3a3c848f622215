/**
 * The peers under minimal local types: LokiJS ships none, NeDB does.
 *
 * @module
 */

import Loki from "lokijs";
import Datastore from "@seald-io/nedb";

/** The part of a LokiJS collection the benchmark uses. */
export interface LokiCollection<T extends object> {
  /** Inserts one document or an array (mutates them: adds `$loki`, `meta`). */
  insert(doc: T | T[]): unknown;
  /** Finds by a unique index (a copy with `clone: true`). */
  by(field: string, value: unknown): (T & { $loki: number }) | undefined;
  /** Finds matching documents (live objects, not copies). */
  find(query?: Record<string, unknown>): (T & { $loki: number })[];
  /** Counts matching documents. */
  count(query?: Record<string, unknown>): number;
  /** All documents (live). */
  readonly data: (T & { $loki: number; meta: { created: number } })[];
  /** TTL settings. */
  setTTL(age: number, interval: number): void;
  /** Builds the function the TTL timer runs. */
  ttlDaemonFuncGen(): () => void;
}

/** The part of a LokiJS database the benchmark uses. */
export interface LokiDb {
  /** Adds a collection. */
  addCollection<T extends object>(
    name: string,
    options?: { unique?: string[]; indices?: string[]; clone?: boolean },
  ): LokiCollection<T>;
  /** Closes it. */
  close(): void;
}

/**
 * A new in-memory LokiJS database (no adapter, no autosave).
 *
 * @returns The database.
 */
export function newLoki(): LokiDb {
  const Ctor = Loki as unknown as new (
    name: string,
    options: Record<string, unknown>,
  ) => LokiDb;
  return new Ctor("bench.db", { autosave: false, autoload: false });
}

/** The part of an NeDB datastore the benchmark uses. */
export interface NeDBStore {
  /** Inserts one document or an array (deep-copied). */
  insertAsync<T extends object>(doc: T | T[]): Promise<unknown>;
  /** Finds one (a deep copy). */
  findOneAsync(query: Record<string, unknown>): Promise<unknown>;
  /** Finds all matches (deep copies). */
  findAsync(query: Record<string, unknown>): Promise<unknown[]>;
  /** Counts matches. */
  countAsync(query: Record<string, unknown>): Promise<number>;
  /** Adds an index; `expireAfterSeconds` makes it a TTL index. */
  ensureIndexAsync(
    options: { fieldName: string; expireAfterSeconds?: number },
  ): Promise<void>;
}

/**
 * A new in-memory NeDB datastore.
 *
 * @returns The datastore.
 */
export function newNeDB(): NeDBStore {
  const Ctor = Datastore as unknown as new (
    options: Record<string, unknown>,
  ) => NeDBStore;
  return new Ctor({ inMemoryOnly: true });
}
