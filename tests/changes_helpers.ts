/**
 * Shared by the change feed tests: one way to open, reopen and drop a
 * database on each storage (memory, file, Deno KV), and a reader that
 * collects a feed until it is caught up.
 */

import {
  type Database,
  type DatabaseChangesOptions,
  type FeedChange,
  open,
  type OpenOptions,
} from "../mod.ts";
import { MemoryStorage } from "../src/storage/memory.ts";
import type { Storage } from "../src/storage/contract.ts";
import { FakeClock } from "./conformance/database_suite.ts";

/** One storage under test. */
export interface Place {
  /** `memory`, `file` or `kv`. */
  readonly name: string;
  /** The fake clock every open shares. */
  readonly clock: FakeClock;
  /** Opens the database (again: a restart, from what the storage holds). */
  open(extra?: Partial<OpenOptions>): Promise<Database>;
  /** Removes what it made. */
  drop(): Promise<void>;
}

/**
 * A storage whose `close()` leaves the memory storage below open, so that
 * a database can be "restarted" over the same memory in one process.
 */
export function keepOpen(below: Storage): Storage {
  return new Proxy(below, {
    get(target, prop) {
      if (prop === "close") return () => Promise.resolve();
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The storages the feed runs on. */
export const PLACES = ["memory", "file", "kv"] as const;

/**
 * Makes a place.
 *
 * @param name Which storage.
 * @returns The place.
 */
export async function place(name: typeof PLACES[number]): Promise<Place> {
  const clock = new FakeClock();
  if (name === "memory") {
    const memory = new MemoryStorage();
    const storage = keepOpen(memory);
    return {
      name,
      clock,
      open: (extra) => open({ storage, clock, ...extra }),
      drop: () => memory.close(),
    };
  }
  const dir = await Deno.makeTempDir({ prefix: "tether-feed-" });
  if (name === "file") {
    const path = `${dir}/db.tdb`;
    return {
      name,
      clock,
      open: (extra) => open({ path, clock, ...extra }),
      drop: () => Deno.remove(dir, { recursive: true }),
    };
  }
  const kv = `${dir}/kv.sqlite`;
  return {
    name,
    clock,
    open: (extra) => open({ kv, clock, ...extra }),
    drop: () => Deno.remove(dir, { recursive: true }),
  };
}

/**
 * Reads a feed until it is caught up (`live: false`).
 *
 * @param source A collection or database.
 * @param options Feed options.
 * @returns The changes.
 */
export async function collect<T = unknown>(
  source: {
    changes(options?: DatabaseChangesOptions): AsyncIterable<FeedChange<T>>;
  },
  options: DatabaseChangesOptions = {},
): Promise<FeedChange<T>[]> {
  const out: FeedChange<T>[] = [];
  for await (const change of source.changes({ ...options, live: false })) {
    out.push(change);
  }
  return out;
}

/** `type collection/key` of each change, for short assertions. */
export function brief(changes: readonly FeedChange[]): string[] {
  return changes.map((c) => `${c.type} ${c.collection}/${c.key}`);
}

/**
 * Asserts that positions grow along a feed and are all after `since`.
 *
 * @param changes The changes read.
 * @param since The `since` they were read from.
 */
export function assertGrowing(
  changes: readonly FeedChange[],
  since?: string,
): void {
  let last = since === undefined ? -1 : Number(since);
  for (const c of changes) {
    const n = Number(c.seq);
    if (!(n > last)) {
      throw new Error(`seq ${c.seq} does not follow ${last}`);
    }
    last = n;
  }
}
