/**
 * Importing documents like `mongoimport`: JSON lines of bare documents (or
 * our own NDJSON envelope, recognised by its first line), a JSON array, or
 * CSV, into a collection, in one of four modes, with bounded memory.
 *
 * It reads its input twice, streaming both times: a first pass checks
 * every record (it parses, it is an object with a usable key, and for
 * `insert` its key is neither taken nor repeated), so that a bad record
 * imports nothing, naming its line; the second pass writes, in batches.
 * A stream (stdin) is first copied to a temporary file to be read twice.
 * Memory holds one batch, plus the keys seen (for `insert` only) and the
 * numbers of the bad lines skipped (with `skipBad`).
 *
 * What the first pass cannot see: a unique index refusing a document
 * (`DuplicateKeyError`) or a document over `maxValueBytes`
 * (`TooLargeError`) stops the second pass at that batch, the batches before
 * it stored; the error says how many.
 *
 * @module
 */

import type { Database } from "../database.ts";
import type { Collection } from "../collection.ts";
import { TooLargeError } from "../errors.ts";
import { checkKey } from "../validate.ts";
import {
  type DocumentFormat,
  type RawRecord,
  records,
} from "./import_formats.ts";
import { type Line, parseLine } from "./ndjson.ts";

/**
 * How documents meet those already stored under their keys:
 * - `insert`: a key already stored (or twice in the input) is a bad record;
 * - `upsert`: the document replaces what is stored, or is added;
 * - `merge`: its fields are merged into the stored document (shallow: a
 *   top-level field replaces the stored one), or it is added;
 * - `replace`: only documents whose key is stored replace them; the others
 *   are skipped (counted).
 */
export type ImportMode = "insert" | "upsert" | "merge" | "replace";

/** Options of {@linkcode importDocuments}. */
export interface DocumentImportOptions {
  /** The input's format (default `"ndjson"`). */
  readonly format?: DocumentFormat;
  /**
   * The collection bare documents go into (required for them). For our
   * NDJSON envelope, whose lines carry their collection, only the lines of
   * this collection are imported.
   */
  readonly collection?: string;
  /**
   * The collection bare documents go into when `collection` is not given
   * (the CLI passes the file's name); the envelope ignores it.
   */
  readonly defaultCollection?: string;
  /** The field holding a bare document's key (default `"_id"`). */
  readonly idField?: string;
  /** See {@linkcode ImportMode} (default `"upsert"`). */
  readonly mode?: ImportMode;
  /** Skip bad records (counted, their lines listed) instead of failing. */
  readonly skipBad?: boolean;
  /** Empty each collection imported into before writing. */
  readonly drop?: boolean;
  /** Documents per write (default 500). */
  readonly batchSize?: number;
  /** Where a stream is staged to be read twice (default: the temp dir). */
  readonly stageDir?: string;
  /** Called as input is read: bytes done of bytes in all (both passes). */
  readonly onProgress?: (done: number, total: number | undefined) => void;
}

/** What an import did. */
export interface DocumentImportResult {
  /** The format read: `"envelope"` for our NDJSON envelope. */
  readonly format: DocumentFormat | "envelope";
  /** Records read (good and bad). */
  readonly records: number;
  /** Documents stored (inserted, replaced or merged). */
  readonly documents: number;
  /** `replace`: documents skipped because their key is not stored. */
  readonly skipped: number;
  /** Envelope lines whose item had expired (not stored). */
  readonly expired: number;
  /** Envelope deletion lines applied. */
  readonly deleted: number;
  /** Index definitions created (envelope). */
  readonly indexes: number;
  /** Bad records skipped (`skipBad`). */
  readonly bad: number;
  /** The first 100 bad records: line and problem. */
  readonly problems: readonly { line: number; problem: string }[];
}

const MAX_PROBLEMS = 100;
const action = "Cannot import";

/** A record that is not good to import. */
export class BadRecordError extends TypeError {
  /** The bad records found (the first 100). */
  readonly problems: readonly { line: number; problem: string }[];
  /** How many there are. */
  readonly count: number;
  /**
   * @param problems The first ones.
   * @param count How many.
   */
  constructor(
    problems: readonly { line: number; problem: string }[],
    count: number,
  ) {
    const first = problems[0]!;
    super(
      `${action}: line ${first.line}: ${first.problem}${
        count > 1 ? ` (and ${count - 1} more bad records)` : ""
      }; nothing was imported (--skip-bad skips them)`,
    );
    this.problems = problems;
    this.count = count;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null &&
    !Array.isArray(value) && !(value instanceof Date);
}

/**
 * Whether an NDJSON line is our envelope (its first record decides): an
 * object with a string `col` and an `id` or an `index`.
 */
function isEnvelope(value: unknown): boolean {
  return isPlainObject(value) && typeof value.col === "string" &&
    ("id" in value || "index" in value);
}

/** A checked bare document: its key (none: a new one) and value. */
interface Bare {
  readonly key: string | undefined;
  readonly value: Record<string, unknown>;
}

function bareOf(
  record: RawRecord,
  idField: string,
  mode: ImportMode,
): Bare {
  const value = record.value;
  if (!isPlainObject(value)) {
    throw new TypeError("it is not a JSON object (a document)");
  }
  let id = value[idField];
  if (typeof id === "number" && Number.isFinite(id)) {
    id = String(id);
    if (idField === "_id") value._id = id;
  }
  if (id === undefined || id === null) {
    if (mode === "merge" || mode === "replace") {
      throw new TypeError(
        `it has no '${idField}': --mode ${mode} needs the key of each document`,
      );
    }
    if (idField === "_id") delete value._id;
    return { key: undefined, value };
  }
  if (typeof id !== "string") {
    throw new TypeError(
      `its '${idField}' must be a string or a number, got ${
        Array.isArray(id) ? "an array" : typeof id
      }`,
    );
  }
  checkKey(id, `its '${idField}'`);
  if (idField !== "_id" && "_id" in value && value._id !== id) {
    throw new TypeError(
      `its _id differs from its '${idField}' (the key it is stored under)`,
    );
  }
  return { key: id, value };
}

/**
 * Copies a stream to a temporary file, to be read twice.
 *
 * @param stream The bytes.
 * @param dir Where (default: the temp dir).
 * @returns The file's path and size.
 */
export async function stage(
  stream: ReadableStream<Uint8Array>,
  dir?: string,
): Promise<{ path: string; size: number }> {
  const path = await Deno.makeTempFile({
    prefix: "tether-import-",
    ...(dir === undefined ? {} : { dir }),
  });
  let size = 0;
  try {
    using file = await Deno.open(path, { write: true });
    for await (const chunk of stream) {
      for (let at = 0; at < chunk.length;) {
        at += await file.write(chunk.subarray(at));
      }
      size += chunk.length;
    }
  } catch (e) {
    await Deno.remove(path).catch(() => {});
    throw e;
  }
  return { path, size };
}

/**
 * Imports documents from a file or a stream into the database.
 *
 * @param db The database.
 * @param source A path, or a stream (staged to a temporary file first).
 * @param options Format, collection, key field, mode, skipping bad records.
 * @returns What was imported.
 * @throws {BadRecordError} (a `TypeError`) When a record is bad and
 *   `skipBad` is not set; nothing is imported.
 * @throws {TypeError} When an option is wrong, or the input's structure is
 *   broken past recovery (nothing is imported).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * import { importDocuments } from "./import_documents.ts";
 * await using db = await open();
 * const input = new Blob(['{"_id":"a","n":1}\n{"_id":"b","n":2}\n']).stream();
 * const result = await importDocuments(db, input, { collection: "c" });
 * assert.equal(result.documents, 2);
 * assert.deepEqual(await db.collection("c").get("b"), { _id: "b", n: 2 });
 * ```
 */
export async function importDocuments(
  db: Database,
  source: string | ReadableStream<Uint8Array>,
  options: DocumentImportOptions = {},
): Promise<DocumentImportResult> {
  const format = options.format ?? "ndjson";
  if (format !== "ndjson" && format !== "json" && format !== "csv") {
    throw new TypeError(`${action}: format must be ndjson, json or csv`);
  }
  const mode = options.mode ?? "upsert";
  if (!["insert", "upsert", "merge", "replace"].includes(mode)) {
    throw new TypeError(
      `${action}: mode must be insert, upsert, merge or replace`,
    );
  }
  const idField = options.idField ?? "_id";
  if (typeof idField !== "string" || idField.length === 0) {
    throw new TypeError(`${action}: the id field must be a field name`);
  }
  // Deno KV's atomic writes are small: start there (putAll splits more).
  const batchSize = options.batchSize ??
    (db.stats().storage === "KvStorage" ? 40 : 500);
  const target = options.collection === undefined
    ? undefined
    : db.collection(options.collection); // checks the name
  const fallback = options.defaultCollection === undefined
    ? undefined
    : db.collection(options.defaultCollection);
  let staged: { path: string; size: number } | undefined;
  if (typeof source !== "string") {
    staged = await stage(source, options.stageDir);
  }
  const path = staged?.path ?? source as string;
  try {
    const size = staged?.size ?? (await Deno.stat(path)).size;
    let read = 0;
    const open = async () => {
      const file = await Deno.open(path, { read: true });
      return file.readable.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            read += chunk.length;
            options.onProgress?.(read, 2 * size);
            controller.enqueue(chunk);
          },
        }),
      );
    };
    const check = await firstPass(db, await open(), {
      format,
      mode,
      idField,
      target,
      fallback,
    });
    const into = target ?? fallback;
    if (check.bad > 0 && options.skipBad !== true) {
      throw new BadRecordError(check.problems, check.bad);
    }
    if (check.envelope === false && into === undefined && check.records > 0) {
      throw new TypeError(
        `${action}: give the collection the documents go into`,
      );
    }
    read = size;
    if (options.drop === true) {
      for (const name of check.collections) {
        await db.collection(name).clear();
      }
    }
    const writer = new Writer(db, mode, batchSize);
    for await (
      const record of records(await open(), check.envelope ? "ndjson" : format)
    ) {
      if (check.badLines.has(record.line)) continue;
      if (check.envelope) {
        const line = parseLine(record.text!, record.line);
        if (line === undefined) continue;
        if (target !== undefined && line.collection !== target.name) continue;
        await writer.envelope(line, record.text!);
      } else {
        const bare = bareOf(record, idField, mode);
        await writer.bare(into!, bare);
      }
    }
    const written = await writer.finish();
    return {
      format: check.envelope ? "envelope" : format,
      records: check.records,
      bad: check.bad,
      problems: check.problems,
      ...written,
    };
  } finally {
    if (staged !== undefined) await Deno.remove(staged.path).catch(() => {});
  }
}

interface Check {
  envelope: boolean;
  records: number;
  bad: number;
  problems: { line: number; problem: string }[];
  badLines: Set<number>;
  collections: Set<string>;
}

async function firstPass(
  db: Database,
  input: ReadableStream<Uint8Array>,
  how: {
    format: DocumentFormat;
    mode: ImportMode;
    idField: string;
    target: Collection<unknown> | undefined;
    fallback: Collection<unknown> | undefined;
  },
): Promise<Check> {
  const check: Check = {
    envelope: false,
    records: 0,
    bad: 0,
    problems: [],
    badLines: new Set(),
    collections: new Set(),
  };
  let decided = how.format !== "ndjson";
  /** insert: the line of each key seen, per collection. */
  const seen = new Map<string, Map<string, number>>();
  const fail = (line: number, problem: string) => {
    check.bad++;
    check.badLines.add(line);
    if (check.problems.length < MAX_PROBLEMS) {
      check.problems.push({ line, problem });
    }
  };
  for await (const record of records(input, how.format)) {
    check.records++;
    if (record.error !== undefined) {
      fail(record.line, record.error);
      continue;
    }
    if (!decided) {
      check.envelope = isEnvelope(record.value);
      decided = true;
    }
    if (!check.envelope && (how.target ?? how.fallback) === undefined) {
      throw new TypeError(
        `${action}: give the collection the documents go into`,
      );
    }
    let collection: string;
    let key: string | undefined;
    try {
      if (check.envelope) {
        const line: Line | undefined = parseLine(record.text!, record.line);
        if (line === undefined) continue;
        if (how.target !== undefined && line.collection !== how.target.name) {
          continue;
        }
        db.collection(line.collection); // checks the name
        check.collections.add(line.collection);
        if (line.index !== undefined) continue;
        collection = line.collection;
        key = line.record === undefined ? undefined : line.id; // a deletion
      } else {
        collection = (how.target ?? how.fallback)!.name;
        check.collections.add(collection);
        key = bareOf(record, how.idField, how.mode).key;
      }
    } catch (e) {
      const message = (e as Error).message.replace(
        /^Cannot import line \d+: /,
        "",
      );
      fail(record.line, message);
      continue;
    }
    if (how.mode === "insert" && key !== undefined) {
      let keys = seen.get(collection);
      if (keys === undefined) seen.set(collection, keys = new Map());
      const earlier = keys.get(key);
      if (earlier !== undefined) {
        fail(
          record.line,
          `the key '${key}' is also on line ${earlier} (--mode insert)`,
        );
        continue;
      }
      keys.set(key, record.line);
      if (await db.collection(collection).has(key)) {
        fail(
          record.line,
          `'${key}' already exists in '${collection}' (--mode insert; upsert or merge overwrite)`,
        );
      }
    }
  }
  return check;
}

/**
 * Stores a batch in one atomic write; when the storage refuses a write that
 * large (`TooLargeError`: Deno KV's limits on one atomic write), nothing
 * was written, so it is split in halves, down to one document (whose own
 * `TooLargeError` is then the document's).
 */
async function putAll(
  collection: Collection<unknown>,
  items: readonly (readonly [string, unknown])[] | readonly unknown[],
  keyed: boolean,
): Promise<void> {
  try {
    if (keyed) {
      await collection.putBatch(
        new Map(items as readonly (readonly [string, unknown])[]),
      );
    } else {
      await collection.putBatch(items as unknown[]);
    }
  } catch (e) {
    if (!(e instanceof TooLargeError) || items.length <= 1) throw e;
    const half = items.length >> 1;
    await putAll(collection, items.slice(0, half), keyed);
    await putAll(collection, items.slice(half), keyed);
  }
}

/** The counts a writer keeps. */
interface Written {
  documents: number;
  skipped: number;
  expired: number;
  deleted: number;
  indexes: number;
}

/** Writes checked records in batches, in the import's mode. */
class Writer {
  readonly #db: Database;
  readonly #mode: ImportMode;
  readonly #batchSize: number;
  /** Bare documents of the current batch. */
  #collection: Collection<unknown> | undefined;
  #keyed = new Map<string, unknown>();
  #fresh: unknown[] = [];
  /** Envelope lines of the current batch (upsert, insert). */
  #lines = "";
  #lineCount = 0;
  readonly #counts: Written = {
    documents: 0,
    skipped: 0,
    expired: 0,
    deleted: 0,
    indexes: 0,
  };

  constructor(db: Database, mode: ImportMode, batchSize: number) {
    this.#db = db;
    this.#mode = mode;
    this.#batchSize = batchSize;
  }

  async bare(collection: Collection<unknown>, doc: Bare): Promise<void> {
    if (this.#collection !== collection) {
      await this.#flushBare();
      this.#collection = collection;
    }
    if (doc.key === undefined) {
      this.#fresh.push(doc.value);
    } else if (this.#mode === "upsert" || this.#mode === "insert") {
      this.#keyed.set(doc.key, doc.value);
    } else {
      const pending = this.#keyed.get(doc.key);
      const stored = pending !== undefined
        ? pending
        : await collection.get(doc.key);
      if (stored === null) {
        if (this.#mode === "replace") {
          this.#counts.skipped++;
          return;
        }
        this.#keyed.set(doc.key, doc.value);
      } else {
        this.#keyed.set(
          doc.key,
          this.#mode === "merge" && isPlainObject(stored)
            ? { ...stored, ...doc.value }
            : doc.value,
        );
      }
    }
    if (this.#keyed.size + this.#fresh.length >= this.#batchSize) {
      await this.#flushBare();
    }
  }

  async #flushBare(): Promise<void> {
    const collection = this.#collection;
    if (collection === undefined) return;
    const keyed = this.#keyed;
    const fresh = this.#fresh;
    this.#keyed = new Map();
    this.#fresh = [];
    try {
      if (keyed.size > 0) await putAll(collection, [...keyed], true);
      if (fresh.length > 0) await putAll(collection, fresh, false);
    } catch (e) {
      throw this.#stopped(e);
    }
    this.#counts.documents += keyed.size + fresh.length;
  }

  #stopped(e: unknown): Error {
    if (!(e instanceof Error)) return new Error(String(e));
    e.message =
      `${e.message} (the import stopped there: ${this.#counts.documents} documents were stored before)`;
    return e;
  }

  async envelope(line: Line, text: string): Promise<void> {
    await this.#flushBare();
    if (this.#mode === "upsert" || this.#mode === "insert") {
      // With their metadata (times, version, tags, expiry), through the
      // envelope import, a batch at a time.
      this.#lines += text + "\n";
      if (line.index !== undefined) this.#counts.indexes++;
      if (++this.#lineCount >= this.#batchSize) await this.#flushLines();
      return;
    }
    // merge and replace: through the public API (the database keeps its
    // own times and versions).
    const collection = this.#db.collection(line.collection);
    if (line.index !== undefined) {
      await collection.createIndex(line.index.fields, {
        unique: line.index.unique,
        sparse: line.index.sparse,
      });
      this.#counts.indexes++;
      return;
    }
    const record = line.record;
    if (record === undefined) return; // deletions are for upsert
    const stored = await collection.get(line.id);
    if (stored === null && this.#mode === "replace") {
      this.#counts.skipped++;
      return;
    }
    const now = Date.now();
    if (record.expiresAt !== undefined && record.expiresAt <= now) {
      this.#counts.expired++;
      return;
    }
    const value = this.#mode === "merge" && isPlainObject(stored) &&
        isPlainObject(record.value)
      ? { ...stored, ...record.value }
      : record.value;
    try {
      await collection.put(line.id, value, {
        ...(record.expiresAt === undefined
          ? {}
          : { ttl: Math.max(1, record.expiresAt - now) }),
        ...(record.tags === undefined ? {} : { tags: [...record.tags] }),
      });
    } catch (e) {
      throw this.#stopped(e);
    }
    this.#counts.documents++;
  }

  async #flushLines(): Promise<void> {
    if (this.#lineCount === 0) return;
    const text = this.#lines;
    this.#lines = "";
    this.#lineCount = 0;
    try {
      const result = await this.#db.import(new Blob([text]).stream(), {
        mode: "merge",
      });
      this.#counts.documents += result.documents;
      this.#counts.expired += result.expired;
      this.#counts.deleted += result.deleted;
    } catch (e) {
      throw this.#stopped(e);
    }
  }

  async finish(): Promise<Written> {
    await this.#flushBare();
    await this.#flushLines();
    return { ...this.#counts };
  }
}
