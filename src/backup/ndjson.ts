/**
 * NDJSON export and import: one document per line with its collection, key,
 * metadata and TTL, for moving data to and from other tools.
 *
 * A line is the stored record (FORMAT.md, "Record envelope") with two more
 * fields in front: `col` (the collection) and `id` (the key), e.g.
 * `{"col":"readings","id":"r1","v":{"t":21.5},"c":1700000000000,"u":1700000000000,"n":1,"s":1,"x":1700003600000}`.
 * An export starts with a line per index definition,
 * `{"col":"users","index":{"name":"age_1","fields":["age"],"unique":false,"sparse":false}}`,
 * which an import creates before loading the documents.
 *
 * @module
 */

import { encodeUtf8 } from "../bytes.ts";
import type { Engine, WriteOp } from "../engine/engine.ts";
import { IntegrityError } from "../errors.ts";
import type { IndexSpec } from "../engine/index_keys.ts";
import { checkKey, describeType } from "../validate.ts";
import { checkTargetFolder } from "./target_folder.ts";
import {
  checkValue,
  recordMeta,
  recordOf,
  type StoredRecord,
} from "../value_codec.ts";

/**
 * A record's JSON without its feed position (`"f"`), which belongs to the
 * database that wrote it: an import gives each document a new one. The last
 * `,"s":` is the envelope's (FORMAT.md), and `"f"` can only follow it.
 */
function withoutFeed(record: string): string {
  const s = record.lastIndexOf(',"s":');
  const f = s < 0 ? -1 : record.indexOf(',"f":', s);
  if (f < 0) return record;
  let end = f + 5;
  while (end < record.length && record[end] !== "," && record[end] !== "}") {
    end++;
  }
  return record.slice(0, f) + record.slice(end);
}

/** Where an export goes: a file path, or a stream. */
export type ExportTarget = string | WritableStream<Uint8Array>;
/** Where an import comes from: a file path, or a stream. */
export type ImportSource = string | ReadableStream<Uint8Array>;

/** Options of `export`. */
export interface ExportOptions {
  /** Only these collections (default: every one). */
  readonly collections?: readonly string[];
}

/** Options of `import`. */
export interface ImportOptions {
  /**
   * `"merge"` (default): lines overwrite items with the same key, others
   * stay. `"replace"`: each collection that appears in the input is emptied
   * first.
   */
  readonly mode?: "merge" | "replace";
}

/** What an export or import did. */
export interface TransferResult {
  /** Documents written (export) or stored (import). */
  readonly documents: number;
  /** Import: lines skipped because their item had already expired. */
  readonly expired: number;
  /** Deletions written (incremental backup) or applied (import, restore). */
  readonly deleted: number;
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Checks the `collections` option of `export` and `backup`: absent, or an
 * array of collection names (a string is not a list of one).
 *
 * @param collections The option.
 * @param action What is attempted, for the message.
 * @throws {TypeError} When it is something else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkCollectionNames } from "./ndjson.ts";
 * checkCollectionNames(["readings"], "Cannot export");
 * assert.throws(() => checkCollectionNames("readings", "Cannot export"), TypeError);
 * ```
 */
export function checkCollectionNames(
  collections: unknown,
  action: string,
): void {
  if (collections === undefined) return;
  if (!Array.isArray(collections)) {
    throw new TypeError(`${action}: collections must be an array of names`);
  }
  for (const name of collections) {
    if (typeof name !== "string" || !NAME.test(name)) {
      throw new TypeError(
        `${action}: a collection name is 1-128 letters, digits or '_.-', got ${
          typeof name === "string" ? `'${name}'` : describeType(name)
        }`,
      );
    }
  }
}
const FLUSH_BYTES = 64 * 1024;

/**
 * The bytes of a source: a file's, read from the start, or the stream given.
 *
 * @param source A path or a stream.
 * @returns A stream of the bytes.
 */
export async function openSource(
  source: ImportSource,
): Promise<ReadableStream<Uint8Array>> {
  return typeof source === "string"
    ? (await Deno.open(source, { read: true })).readable
    : source;
}

/**
 * A file written beside `path` and renamed over it once complete and synced,
 * so a failure never leaves a truncated file at `path`.
 *
 * @param path The file to write.
 * @returns The stream to write to; `done` syncs and renames, `fail` removes
 *   the partial file.
 */
export async function fileTarget(path: string): Promise<{
  stream: WritableStream<Uint8Array>;
  done: () => Promise<void>;
  fail: () => Promise<void>;
}> {
  const temp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  const file = await Deno.open(temp, {
    write: true,
    create: true,
    truncate: true,
  });
  let closed = false;
  const close = () => {
    if (!closed) file.close();
    closed = true;
  };
  return {
    stream: new WritableStream({
      async write(chunk) {
        for (let at = 0; at < chunk.length;) {
          at += await file.write(chunk.subarray(at));
        }
      },
    }),
    done: async () => {
      await file.syncData();
      close();
      await Deno.rename(temp, path);
    },
    fail: async () => {
      close();
      await Deno.remove(temp).catch(() => {});
    },
  };
}

/**
 * Writes every index definition, then every live document, as one NDJSON
 * line each.
 *
 * @param engine The engine.
 * @param target A path (written beside it, then renamed over it) or a
 *   stream (closed at the end).
 * @param options Which collections.
 * @returns How many documents were written.
 */
export async function exportNdjson(
  engine: Engine,
  target: ExportTarget,
  options: ExportOptions = {},
): Promise<TransferResult> {
  const action = "Cannot export";
  const collections = options.collections;
  checkCollectionNames(collections, action);
  if (typeof target === "string") await checkTargetFolder(target, "export");
  const file = typeof target === "string"
    ? await fileTarget(target)
    : undefined;
  const writer = (file?.stream ?? target as WritableStream<Uint8Array>)
    .getWriter();
  let documents = 0;
  try {
    let chunk = "";
    // Index definitions first (so an import builds them before loading),
    // then the documents.
    for await (
      const line of documentLines(engine, collections, action, undefined, true)
    ) {
      chunk += line.text;
      if (line.kind === "document") documents++;
      if (chunk.length >= FLUSH_BYTES) {
        await writer.write(encodeUtf8(chunk));
        chunk = "";
      }
    }
    if (chunk.length > 0) await writer.write(encodeUtf8(chunk));
    await writer.close();
    await file?.done();
  } catch (e) {
    await writer.abort(e).catch(() => {});
    await file?.fail();
    throw e;
  }
  return { documents, expired: 0, deleted: 0 };
}

/**
 * The NDJSON line of every live document, each ending in a newline.
 *
 * @param engine The engine.
 * @param collections Only these (default: all).
 * @param action For error messages.
 * @returns The lines, lazily.
 */
export async function* documentLines(
  engine: Engine,
  collections: readonly string[] | undefined,
  action: string,
  since?: number,
  withIndexes = false,
): AsyncGenerator<{ kind: "document" | "deleted" | "index"; text: string }> {
  const decoder = new TextDecoder();
  const now = engine.now();
  if (withIndexes) {
    // Index definitions first, so a restore builds them before loading.
    for (
      const { collection, spec } of await engine.indexDefinitions(collections)
    ) {
      yield {
        kind: "index",
        text: `{"col":${JSON.stringify(collection)},"index":${
          JSON.stringify(spec)
        }}\n`,
      };
    }
  }
  for await (const page of engine.documents(collections)) {
    for (const { collection, id, bytes } of page) {
      const meta = recordMeta(bytes);
      if (meta?.expiresAt !== undefined && now >= meta.expiresAt) continue;
      const record = withoutFeed(decoder.decode(bytes));
      if (record[0] !== "{") {
        throw new IntegrityError(
          `${action}: the record of '${id}' in '${collection}' is not JSON`,
        );
      }
      if (since !== undefined && !(JSON.parse(record).u >= since)) continue;
      yield {
        kind: "document",
        text: `{"col":${JSON.stringify(collection)},"id":${
          JSON.stringify(id)
        },${record.slice(1)}\n`,
      };
    }
  }
  if (since === undefined) return;
  // Deletions since then (documents deleted and not written again: on a
  // shared storage a put over a deleted key leaves its tombstone).
  for await (const page of engine.tombstones(since, collections)) {
    const docs = await engine.storage.getMany(
      page.map((t) => engine.docKey(t.collection, t.id)),
    );
    for (let i = 0; i < page.length; i++) {
      const { collection, id, at } = page[i]!;
      const doc = docs[i] ?? null;
      if (doc !== null && engine.visible(doc, now, action) !== undefined) {
        continue; // written again since
      }
      yield {
        kind: "deleted",
        text: `{"col":${JSON.stringify(collection)},"id":${
          JSON.stringify(id)
        },"deleted":${at}}\n`,
      };
    }
  }
}

/** One parsed line: a document, the deletion of one, or an index. */
export interface Line {
  readonly collection: string;
  readonly id: string;
  /** The document (absent for a deletion or an index). */
  readonly record: StoredRecord | undefined;
  /** An index definition of the collection (backups). */
  readonly index?: IndexSpec;
}

async function* lines(
  source: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  let rest = "";
  for await (const text of source.pipeThrough(new TextDecoderStream())) {
    rest += text;
    let at: number;
    while ((at = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, at);
      rest = rest.slice(at + 1);
    }
  }
  if (rest.length > 0) yield rest;
}

/**
 * Parses and checks one NDJSON line.
 *
 * @param text The line.
 * @param n Its number, for error messages.
 * @returns The document, or `undefined` for a blank line.
 * @throws {TypeError} When it is malformed.
 */
export function parseLine(text: string, n: number): Line | undefined {
  const action = `Cannot import line ${n}`;
  const trimmed = text.trim();
  if (trimmed.length === 0) return undefined;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(trimmed);
  } catch (cause) {
    throw new TypeError(`${action}: it is not JSON`, { cause });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new TypeError(`${action}: it is not a JSON object`);
  }
  const { col, id } = parsed;
  if (typeof col !== "string" || !NAME.test(col)) {
    throw new TypeError(`${action}: "col" must be a collection name`);
  }
  if ("index" in parsed) {
    const spec = parsed.index as Partial<IndexSpec> | null;
    if (
      typeof spec !== "object" || spec === null ||
      typeof spec.name !== "string" || spec.name.length === 0 ||
      !Array.isArray(spec.fields) || spec.fields.length === 0 ||
      !spec.fields.every((f) => typeof f === "string" && f.length > 0) ||
      typeof spec.unique !== "boolean" || typeof spec.sparse !== "boolean"
    ) {
      throw new TypeError(
        `${action}: an index line needs "index": { name, fields, unique, sparse }`,
      );
    }
    return {
      collection: col,
      id: "",
      record: undefined,
      index: {
        name: spec.name,
        fields: [...spec.fields],
        unique: spec.unique,
        sparse: spec.sparse,
      },
    };
  }
  checkKey(id, action);
  if ("deleted" in parsed) {
    if (typeof parsed.deleted !== "number" || "v" in parsed) {
      throw new TypeError(
        `${action}: a deletion line has "deleted" (epoch ms) and no "v"`,
      );
    }
    return { collection: col, id, record: undefined };
  }
  let record: StoredRecord;
  try {
    record = recordOf(parsed, action);
  } catch (e) {
    throw new TypeError(
      `${action}: it needs "v", and "c", "u", "n" as numbers (${
        (e as Error).message
      })`,
    );
  }
  const checked = checkValue(record.value, action);
  if (
    !Number.isFinite(record.createdAt) || !Number.isFinite(record.updatedAt) ||
    !(Number.isSafeInteger(record.version) && record.version >= 1) ||
    (record.expiresAt !== undefined && !Number.isFinite(record.expiresAt)) ||
    (record.tags !== undefined &&
      (!Array.isArray(record.tags) ||
        !record.tags.every((t) => typeof t === "string")))
  ) {
    throw new TypeError(
      `${action}: "c", "u" and "x" must be epoch ms, "n" a version from 1, "t" strings`,
    );
  }
  return {
    collection: col,
    id,
    record: { ...record, value: checked.value, dates: checked.dates },
  };
}

/**
 * How many characters of a stream's lines an import keeps in memory before
 * it spills them to a temporary file (changed by tests only).
 */
export const spillLimit: { chars: number } = { chars: 16 * 1024 * 1024 };

/**
 * Reads NDJSON lines (as `exportNdjson` writes them) and stores them with
 * their metadata. Every line is checked before anything is written, so a bad
 * line changes nothing; the writes then go in batches (not one atomic step).
 *
 * @param engine The engine.
 * @param source A path (read twice: checked, then loaded) or a stream (its
 *   lines are kept in memory up to 16 Mi characters; past that they go to a
 *   temporary file, read again to load, so memory stays bounded).
 * @param options `mode`.
 * @returns How many documents were stored, and how many had expired.
 * @throws {TypeError} When a line is malformed (naming its number); nothing
 *   is written.
 */
export async function importNdjson(
  engine: Engine,
  source: ImportSource,
  options: ImportOptions = {},
): Promise<TransferResult> {
  const action = "Cannot import";
  const mode = options.mode ?? "merge";
  if (mode !== "merge" && mode !== "replace") {
    throw new TypeError(`${action}: mode must be "merge" or "replace"`);
  }
  // Pass 1: check every line (a stream's kept, or spilled to a file).
  const kept: string[] = [];
  let keptChars = 0;
  let spill: { path: string; file: Deno.FsFile } | undefined;
  const collections = new Set<string>();
  let n = 0;
  try {
    for await (const text of lines(await openSource(source))) {
      const line = parseLine(text, ++n);
      if (line !== undefined) collections.add(line.collection);
      if (typeof source === "string") continue;
      if (spill === undefined) {
        kept.push(text);
        keptChars += text.length;
        if (keptChars <= spillLimit.chars) continue;
        const path = await Deno.makeTempFile({ prefix: "tether-import-" });
        spill = { path, file: await Deno.open(path, { write: true }) };
        await writeAll(spill.file, kept.join("\n") + "\n");
        kept.length = 0;
      } else {
        await writeAll(spill.file, text + "\n");
      }
    }
    spill?.file.close();
    if (mode === "replace") {
      for (const c of collections) {
        await engine.clear(c, `${action}: clearing '${c}'`);
      }
    }
    // Pass 2: store them, a batch per write.
    const loader = new Loader(engine, action);
    const again = typeof source === "string" ? source : spill?.path;
    n = 0;
    for await (
      const text of again === undefined ? kept : lines(await openSource(again))
    ) {
      const line = parseLine(text, ++n);
      if (line !== undefined) await loader.add(line);
    }
    return await loader.finish();
  } finally {
    if (spill !== undefined) {
      try {
        spill.file.close();
      } catch {
        // Closed above.
      }
      await Deno.remove(spill.path).catch(() => {});
    }
  }
}

async function writeAll(file: Deno.FsFile, text: string): Promise<void> {
  const bytes = encodeUtf8(text);
  for (let at = 0; at < bytes.length;) {
    at += await file.write(bytes.subarray(at));
  }
}

/**
 * Stores parsed lines with their metadata, a batch per write (sized to the
 * storage), skipping those whose item has expired.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open } from "@tether/db";
 * await using db = await open();
 * const result = await db.import(
 *   new Blob(['{"col":"c","id":"a","v":1,"c":1,"u":1,"n":1}']).stream(),
 * );
 * assert.equal(result.documents, 1);
 * ```
 */
export class Loader {
  readonly #engine: Engine;
  readonly #action: string;
  readonly #batches = new Map<string, WriteOp[]>();
  readonly #ids = new Map<string, Set<string>>();
  #documents = 0;
  #expired = 0;
  #deleted = 0;

  /**
   * @param engine The engine.
   * @param action For error messages.
   */
  constructor(engine: Engine, action: string) {
    this.#engine = engine;
    this.#action = action;
  }

  async #flush(collection: string): Promise<void> {
    const ops = this.#batches.get(collection);
    if (ops === undefined || ops.length === 0) return;
    this.#batches.set(collection, []);
    this.#ids.get(collection)?.clear();
    await this.#engine.write(
      collection,
      ops,
      `${this.#action} into '${collection}'`,
    );
    for (const op of ops) {
      if (op.kind === "put") this.#documents++;
      else this.#deleted++;
    }
  }

  /**
   * Queues a line, writing its collection's batch when full.
   *
   * @param line The parsed line.
   * @returns When queued (or written).
   */
  async add(line: Line): Promise<void> {
    const { collection, id, record } = line;
    if (line.index !== undefined) {
      await this.#flush(collection);
      await this.#engine.createIndex(
        collection,
        line.index,
        `${this.#action}: creating index '${line.index.name}' of '${collection}'`,
      );
      return;
    }
    if (
      record?.expiresAt !== undefined && this.#engine.now() >= record.expiresAt
    ) {
      this.#expired++;
      return;
    }
    let seen = this.#ids.get(collection);
    if (seen === undefined) this.#ids.set(collection, seen = new Set());
    // A key twice in the input: the later line wins, in a later write.
    if (seen.has(id)) await this.#flush(collection);
    seen.add(id);
    let ops = this.#batches.get(collection);
    if (ops === undefined) this.#batches.set(collection, ops = []);
    ops.push(
      record === undefined ? { kind: "delete", id } : {
        kind: "put",
        id,
        value: { value: record.value, dates: record.dates },
        tags: record.tags,
        ttl: undefined,
        meta: {
          createdAt: record.createdAt,
          updatedAt: record.updatedAt,
          version: record.version,
          expiresAt: record.expiresAt,
        },
      },
    );
    if (ops.length >= this.#engine.batchSize(collection)) {
      await this.#flush(collection);
    }
  }

  /**
   * Writes what is queued.
   *
   * @returns How many documents were stored and how many had expired.
   */
  async finish(): Promise<TransferResult> {
    for (const collection of this.#batches.keys()) {
      await this.#flush(collection);
    }
    return {
      documents: this.#documents,
      expired: this.#expired,
      deleted: this.#deleted,
    };
  }
}
