/**
 * Option-name checks for the public API: an option name the entry point
 * does not know is a `TypeError` naming it and the nearest known name (a
 * typo is never ignored), and an option that other databases have but this
 * one does not implement (MongoDB's `upsert`, `projection`...) is refused
 * with what to do instead. The known names of every entry point are listed
 * here, once; the compile-time checks below fail when an options type gains
 * a field that its list lacks.
 *
 * @module
 */

import type { BackupOptions, RestoreOptions } from "./backup/backup.ts";
import type { CompactOptions, VerifyOptions } from "./engine/engine.ts";
import type { EncryptionOptions } from "./crypto/codec_storage.ts";
import type { ExportOptions, ImportOptions } from "./backup/ndjson.ts";
import type {
  ChangesOptions,
  CollectionOptions,
  DatabaseChangesOptions,
  FindOptions,
  IndexDeclaration,
  IndexOptions,
  OpenOptions,
  PutBatchOptions,
  PutOptions,
  ReadOptions,
  RekeyOptions,
  UpdateOptions,
  WatchOptions,
} from "./types.ts";
import { describeType } from "./validate.ts";

/** `true` when `K` names every key of `T`; else the missing keys. */
type Lists<T, K extends readonly PropertyKey[]> =
  [Exclude<keyof T, K[number]>] extends [never] ? true
    : { readonly missing: Exclude<keyof T, K[number]> };

/** The options of `open()` that only a file storage (`path`) takes. */
export const FILE_OPTIONS = [
  "durability",
  "lockTimeout",
  "readOnly",
  "repair",
  "flushInterval",
  "compactRatio",
  "compactMinBytes",
] as const satisfies readonly (keyof OpenOptions)[];
const OPEN = [
  "path",
  "storage",
  "kv",
  "prefix",
  "ttlCheckInterval",
  "cleanupInterval",
  "maxValueBytes",
  "memoryLimit",
  "signal",
  "clock",
  "maxRetries",
  "retryDelay",
  "tombstoneRetention",
  "encryption",
  "compression",
  "feed",
  "readonly",
  ...FILE_OPTIONS,
  "logger",
  "logLevel",
] as const satisfies readonly (keyof OpenOptions)[];
const ENCRYPTION = [
  "passphrase",
  "iterations",
  "key",
] as const satisfies readonly (keyof EncryptionOptions)[];
const COMPRESSION = ["minBytes"] as const;
const COLLECTION = [
  "indexes",
] as const satisfies readonly (keyof CollectionOptions)[];
const INDEX_DECLARATION = [
  "fields",
  "unique",
  "sparse",
] as const satisfies readonly (keyof IndexDeclaration)[];
const READ = ["readonly"] as const satisfies readonly (keyof ReadOptions)[];
const PUT = ["ttl", "tags"] as const satisfies readonly (keyof PutOptions)[];
const PUT_BATCH = [
  "ttl",
  "tags",
  "atomic",
  "assumeNew",
  "onlyNew",
  "deletes",
] as const satisfies readonly (keyof PutBatchOptions)[];
const FIND = [
  "sort",
  "fields",
  "limit",
  "skip",
  "signal",
  "after",
  "readonly",
] as const satisfies readonly (keyof FindOptions)[];
const FIND_ONE = [
  "sort",
  "fields",
  "skip",
  "signal",
  "after",
  "readonly",
] as const satisfies readonly (keyof Omit<FindOptions, "limit">)[];
const UPDATE = [
  "expectedVersion",
] as const satisfies readonly (keyof UpdateOptions)[];
const WATCH = ["signal"] as const satisfies readonly (keyof WatchOptions)[];
const CHANGES = [
  "since",
  "limit",
  "signal",
  "live",
  "expiries",
] as const satisfies readonly (keyof ChangesOptions)[];
const DATABASE_CHANGES = [
  ...CHANGES,
  "collections",
] as const satisfies readonly (keyof DatabaseChangesOptions)[];
const INDEX = [
  "unique",
  "sparse",
] as const satisfies readonly (keyof IndexOptions)[];
const EXPORT = [
  "collections",
] as const satisfies readonly (keyof ExportOptions)[];
const IMPORT = ["mode"] as const satisfies readonly (keyof ImportOptions)[];
const BACKUP = [
  "collections",
  "since",
  "encryption",
  "onProgress",
] as const satisfies readonly (keyof BackupOptions)[];
const RESTORE = [
  "mode",
  "encryption",
] as const satisfies readonly (keyof RestoreOptions)[];
const VERIFY = [
  "onProgress",
] as const satisfies readonly (keyof VerifyOptions)[];
const COMPACT = [
  "onProgress",
] as const satisfies readonly (keyof CompactOptions)[];
const REKEY = [
  "onProgress",
] as const satisfies readonly (keyof RekeyOptions)[];

// Compile-time: each list names every field of its options type.
const _lists: [
  Lists<OpenOptions, typeof OPEN>,
  Lists<EncryptionOptions, typeof ENCRYPTION>,
  Lists<
    Exclude<OpenOptions["compression"], boolean | undefined>,
    typeof COMPRESSION
  >,
  Lists<CollectionOptions, typeof COLLECTION>,
  Lists<IndexDeclaration, typeof INDEX_DECLARATION>,
  Lists<ReadOptions, typeof READ>,
  Lists<PutOptions, typeof PUT>,
  Lists<PutBatchOptions, typeof PUT_BATCH>,
  Lists<FindOptions, typeof FIND>,
  Lists<Omit<FindOptions, "limit">, typeof FIND_ONE>,
  Lists<UpdateOptions, typeof UPDATE>,
  Lists<WatchOptions, typeof WATCH>,
  Lists<ChangesOptions, typeof CHANGES>,
  Lists<DatabaseChangesOptions, typeof DATABASE_CHANGES>,
  Lists<IndexOptions, typeof INDEX>,
  Lists<ExportOptions, typeof EXPORT>,
  Lists<ImportOptions, typeof IMPORT>,
  Lists<BackupOptions, typeof BACKUP>,
  Lists<RestoreOptions, typeof RESTORE>,
  Lists<VerifyOptions, typeof VERIFY>,
  Lists<CompactOptions, typeof COMPACT>,
  Lists<RekeyOptions, typeof REKEY>,
] = [
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
];

/** Options other databases have that are not implemented, and what to do. */
const FIND_REFUSED: Readonly<Record<string, string>> = {
  projection: "use 'fields' for a projection",
  hint: "indexes are chosen by the planner",
  collation: "collations are not supported",
  batchSize: "use cursor.page(size) to read in pages",
  maxTimeMS: "use 'signal' with AbortSignal.timeout(ms)",
};
const UPDATE_REFUSED: Readonly<Record<string, string>> = {
  upsert: "use updateOne() or updateMany() with { upsert: true }",
  multi: "update changes every matching document; use $limit in the filter",
  arrayFilters: "use updateOne() or updateMany() with arrayFilters",
  collation: "collations are not supported",
  hint: "indexes are chosen by the planner",
};
const REPLACE_REFUSED: Readonly<Record<string, string>> = {
  upsert: "use replaceOne() with { upsert: true }",
};

const UPDATE_ONE_REFUSED: Readonly<Record<string, string>> = {
  collation: "collations are not supported",
  hint: "indexes are chosen by the planner",
  writeConcern: "every write is durable when it returns",
  bypassDocumentValidation: "there is no document validation to bypass",
};

/** One entry point's option names. */
export interface OptionSet {
  /** How the entry point is named in messages, e.g. `open()`. */
  readonly entry: string;
  /** The option names it takes. */
  readonly known: readonly string[];
  /** Names it refuses, with what to do instead. */
  readonly refused?: Readonly<Record<string, string>>;
}

/**
 * The option names of every public entry point.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OPTIONS } from "./options.ts";
 * assert(OPTIONS.open.known.includes("path"));
 * ```
 */
export const OPTIONS: {
  readonly [name: string]: OptionSet;
  readonly open: OptionSet;
  readonly encryption: OptionSet;
  readonly compression: OptionSet;
  readonly collection: OptionSet;
  readonly indexDeclaration: OptionSet;
  readonly get: OptionSet;
  readonly put: OptionSet;
  readonly putBatch: OptionSet;
  readonly insert: OptionSet;
  readonly find: OptionSet;
  readonly findOne: OptionSet;
  readonly update: OptionSet;
  readonly replace: OptionSet;
  readonly watch: OptionSet;
  readonly changes: OptionSet;
  readonly databaseChanges: OptionSet;
  readonly createIndex: OptionSet;
  readonly export: OptionSet;
  readonly import: OptionSet;
  readonly backup: OptionSet;
  readonly restore: OptionSet;
  readonly verify: OptionSet;
  readonly compact: OptionSet;
  readonly rekey: OptionSet;
} = {
  open: { entry: "open()", known: OPEN },
  encryption: { entry: "encryption", known: ENCRYPTION },
  compression: { entry: "compression", known: COMPRESSION },
  collection: { entry: "collection()", known: COLLECTION },
  indexDeclaration: { entry: "an index declaration", known: INDEX_DECLARATION },
  get: { entry: "get()", known: READ },
  put: { entry: "put()", known: PUT },
  putBatch: { entry: "putBatch()", known: PUT_BATCH },
  insert: { entry: "insert()", known: PUT },
  find: { entry: "find()", known: FIND, refused: FIND_REFUSED },
  findOne: {
    entry: "findOne()",
    known: FIND_ONE,
    refused: { ...FIND_REFUSED, limit: "findOne returns one document" },
  },
  update: { entry: "update()", known: UPDATE, refused: UPDATE_REFUSED },
  replace: { entry: "replace()", known: UPDATE, refused: REPLACE_REFUSED },
  watch: { entry: "watch()", known: WATCH },
  changes: { entry: "changes()", known: CHANGES },
  databaseChanges: { entry: "changes()", known: DATABASE_CHANGES },
  createIndex: { entry: "createIndex()", known: INDEX },
  export: { entry: "export()", known: EXPORT },
  import: { entry: "import()", known: IMPORT },
  backup: { entry: "backup()", known: BACKUP },
  restore: { entry: "restore()", known: RESTORE },
  verify: { entry: "verify()", known: VERIFY },
  compact: { entry: "compact()", known: COMPACT },
  rekey: { entry: "rekey()", known: REKEY },
  updateOne: {
    entry: "updateOne()",
    known: ["upsert", "arrayFilters", "expectedVersion"],
    refused: UPDATE_ONE_REFUSED,
  },
  updateMany: {
    entry: "updateMany()",
    known: ["upsert", "arrayFilters", "expectedVersion"],
    refused: UPDATE_ONE_REFUSED,
  },
  replaceOne: {
    entry: "replaceOne()",
    known: ["upsert", "expectedVersion"],
    refused: UPDATE_ONE_REFUSED,
  },
  findOneAndUpdate: {
    entry: "findOneAndUpdate()",
    known: ["upsert", "arrayFilters", "returnDocument"],
    refused: {
      ...UPDATE_ONE_REFUSED,
      returnOriginal: "use returnDocument: 'before' or 'after'",
      projection: "project the returned document yourself",
      sort: "the first matching document in key order is updated",
    },
  },
};

/**
 * The edit distance between two strings (insertions, deletions,
 * substitutions), case-insensitive.
 *
 * @param a A string.
 * @param b Another.
 * @returns The Levenshtein distance.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { editDistance } from "./options.ts";
 * assert.equal(editDistance("patth", "path"), 1);
 * ```
 */
export function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const row = [i];
    for (let j = 1; j <= y.length; j++) {
      row[j] = Math.min(
        prev[j]! + 1,
        row[j - 1]! + 1,
        prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[y.length]!;
}

/**
 * The known name nearest to `name` (Levenshtein distance), when it is near
 * enough to be a typo, or else the first known name it is the start of.
 *
 * @param name The unknown name.
 * @param known The known names.
 * @returns The nearest, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nearestName } from "./options.ts";
 * assert.equal(nearestName("patth", ["path", "kv"]), "path");
 * assert.equal(nearestName("zzzzzz", ["path", "kv"]), undefined);
 * ```
 */
export function nearestName(
  name: string,
  known: readonly string[],
): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  const room = Math.max(2, Math.floor(name.length / 3));
  if (bestDistance <= room) return best;
  // A shortened name (`encrypt` for `encryption`).
  const lower = name.toLowerCase();
  return lower.length < 3
    ? undefined
    : known.find((k) => k.toLowerCase().startsWith(lower));
}

/**
 * Checks an options argument: `undefined` or an object whose own
 * property names are all known to the entry point. A refused name (an
 * option other databases have but this one does not implement) is refused
 * unless its value is `undefined` or `false`.
 *
 * @param options The argument.
 * @param set The entry point's names, from {@linkcode OPTIONS}.
 * @param action What is being attempted, e.g. `"Cannot open the database"`.
 * @throws {TypeError} When the options are not an object, or name an
 *   option the entry point does not take.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkOptions, OPTIONS } from "./options.ts";
 * checkOptions({ path: "a.tdb" }, OPTIONS.open, "Cannot open the database");
 * assert.throws(
 *   () => checkOptions({ patth: "a.tdb" }, OPTIONS.open, "Cannot open the database"),
 *   {
 *     name: "TypeError",
 *     message: "Cannot open the database: unknown option 'patth' of open(); did you mean 'path'?",
 *   },
 * );
 * ```
 */
export function checkOptions(
  options: unknown,
  set: OptionSet,
  action: string,
): void {
  if (options === undefined) return;
  if (
    typeof options !== "object" || options === null || Array.isArray(options)
  ) {
    throw new TypeError(
      `${action}: the options of ${set.entry} must be an object, got ${
        describeType(options)
      }`,
    );
  }
  for (const name of Object.keys(options)) {
    if (set.known.includes(name)) continue;
    const refused =
      set.refused !== undefined && Object.hasOwn(set.refused, name)
        ? set.refused[name]
        : undefined;
    if (refused !== undefined) {
      const value = (options as Record<string, unknown>)[name];
      if (value === undefined || value === false) continue;
      throw new TypeError(
        `${action}: option '${name}' of ${set.entry} is not implemented: ${refused}`,
      );
    }
    const near = nearestName(name, set.known);
    throw new TypeError(
      `${action}: unknown option '${name}' of ${set.entry}; ${
        near === undefined
          ? `the options are ${set.known.map((k) => `'${k}'`).join(", ")}`
          : `did you mean '${near}'?`
      }`,
    );
  }
  // Every method that takes a signal: an abort signal, or nothing.
  const signal = (options as { signal?: unknown }).signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(
      `${action}: signal must be an AbortSignal, got ${describeType(signal)}`,
    );
  }
}
