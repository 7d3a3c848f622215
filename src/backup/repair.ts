/**
 * Repair: copies every record of a damaged database that still checks out
 * into a new database, and reports each one that does not.
 *
 * Opening a database decodes every record, so one record that fails its MAC
 * keeps an encrypted database shut. `repair` reads the damaged file without
 * its lock and without changing it (the file storage's salvage mode keeps
 * each intact commit and lists the damaged byte ranges), decodes each record
 * on its own, and writes the good ones, with their metadata, into a new
 * database beside the target path, renamed into place once complete.
 *
 * @module
 */

import {
  CodecStorage,
  type CompressionOptions,
  type EncryptionOptions,
} from "../crypto/codec_storage.ts";
import { open } from "../database.ts";
import { IntegrityError } from "../errors.ts";
import { FileStorage } from "../storage/file.ts";
import type { IndexSpec } from "../engine/index_keys.ts";
import { startsWith } from "../bytes.ts";
import { decodeKey, encodeKey } from "../key_codec.ts";
import { type Logger, type LogLevel, resolveLog } from "../logger.ts";
import { parseLine } from "./ndjson.ts";
import type { Storage, StorageEntry } from "../storage/contract.ts";
import {
  checkProgress,
  type ProgressCallback,
  ProgressReport,
} from "../progress.ts";

/** The damaged database: a file, or any storage. */
export interface RepairSource {
  /** The database file (read without its lock, never changed). */
  readonly path?: string;
  /** Or a storage (for instance a Deno KV one), instead of `path`. */
  readonly storage?: Storage;
  /** The secret of an encrypted database. */
  readonly encryption?: EncryptionOptions;
}

/** Where the repaired copy goes. */
export interface RepairTarget {
  /** A new file database: the path must not exist yet. */
  readonly path: string;
  /**
   * Its secret: by default the source's (so it opens as the source did);
   * `false` for a plain database.
   */
  readonly encryption?: EncryptionOptions | false;
  /** Its compression: by default the source's. */
  readonly compression?: CompressionOptions;
}

/** Options of {@linkcode repair}. */
export interface RepairOptions {
  /** Where each loss and the outcome are reported. Default: silent. */
  readonly logger?: Logger;
  /** The least level passed to `logger`. Default `"info"`. */
  readonly logLevel?: LogLevel;
  /**
   * Called as the repair proceeds, with how much is done of how much in
   * all, counted in the source's stored entries: each is read once (after
   * each page of them), then, with a target, the copy writes about as many
   * again (the documents, after every 1,000 of them, and the indexes
   * rebuilt, counted in proportion), so the total is twice the entries with
   * a target and once without. The total is known from the first call on
   * (a source `storage` without a key count in its `stats()` is scanned
   * once more to count them, only when this is given), `done` never
   * decreases nor passes it, and the last call has `done === total`. If it
   * throws, the repair stops with that error (nothing is left under the
   * target's name).
   */
  readonly onProgress?: ProgressCallback | undefined;
}

/** Something of the source that the repair could not copy. */
export interface LostRecord {
  /** The collection of a lost document or index definition. */
  readonly collection?: string;
  /** The key of a lost document. */
  readonly key?: string;
  /** The name of a lost index definition. */
  readonly index?: string;
  /** Where a damaged byte range of the file starts. */
  readonly offset?: number;
  /** How long that range is. */
  readonly bytes?: number;
  /** What is wrong. */
  readonly reason: string;
}

/** A byte range of the file that was not a readable commit. */
export interface DamagedRange {
  /** Its first byte. */
  readonly offset: number;
  /** Its length. */
  readonly bytes: number;
  /** What is wrong there. */
  readonly reason: string;
}

/** What {@linkcode repair} did (or, without a target, would do). */
export interface RepairReport {
  /** The new database's path (`undefined` without a target). */
  readonly target: string | undefined;
  /** Documents and index definitions examined. */
  readonly checked: number;
  /** Documents copied (without a target: that would be copied). */
  readonly copied: number;
  /** Documents left out because they had expired. */
  readonly expired: number;
  /** Index definitions carried over (their indexes rebuilt). */
  readonly indexes: number;
  /**
   * Every lost document (by collection and key), index definition, other
   * unreadable record, and damaged byte range of the file.
   */
  readonly lost: readonly LostRecord[];
  /** The damaged byte ranges of the file (also listed in `lost`). */
  readonly damagedRanges: readonly DamagedRange[];
  /**
   * Bytes of an unfinished last commit (a write cut short, never
   * acknowledged), left out. Not a loss.
   */
  readonly tornBytes: number;
}

const SOURCE_OPTIONS = ["path", "storage", "encryption"];
const TARGET_OPTIONS = ["path", "encryption", "compression"];
const REPAIR_OPTIONS = [
  "logger",
  "logLevel",
  "onProgress",
] as const satisfies readonly (keyof RepairOptions)[];
// Compile-time: the list names every option.
const _listed: [
  Exclude<keyof RepairOptions, (typeof REPAIR_OPTIONS)[number]>,
] extends [never] ? true : false = true;
/** Documents imported into the copy per step (and per progress report). */
const WRITE_STEP = 1000;
const DEFAULT_MAX_VALUE = 65_536;

function checkObject(
  value: unknown,
  known: readonly string[],
  what: string,
  action: string,
): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`${action}: ${what} must be an object`);
  }
  for (const name of Object.keys(value)) {
    if (!known.includes(name)) {
      throw new TypeError(
        `${action}: '${name}' is not an option of ${what} (known: ${
          known.join(", ")
        })`,
      );
    }
  }
}

function split(path: string): { dir: string; base: string } {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i < 0 ? { dir: ".", base: path } : {
    dir: i === 0 ? path.slice(0, 1) : path.slice(0, i),
    base: path.slice(i + 1),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * The entries a storage holds: its `stats().keys` (the file storage's), or
 * else counted by a scan.
 */
async function countEntries(storage: Storage): Promise<number> {
  const keys = storage.stats?.().keys;
  if (typeof keys === "number") return keys;
  let n = 0;
  for await (const page of storage.scan({})) n += page.length;
  return n;
}

/** The source storage, opened for salvage, and what its file lost. */
interface Opened {
  readonly inner: Storage;
  readonly damaged: DamagedRange[];
  readonly tornBytes: number;
}

async function openSource(source: RepairSource): Promise<Opened> {
  if (source.storage !== undefined) {
    return { inner: source.storage, damaged: [], tornBytes: 0 };
  }
  const inner = await FileStorage.open(source.path!, {
    readOnly: true,
    repair: true,
  });
  const stats = inner.stats();
  const damaged = stats.damage.map((d) => ({
    offset: d.offset,
    bytes: d.bytes,
    reason: d.reason,
  }));
  return { inner, damaged, tornBytes: stats.tornBytes };
}

const DOCS = encodeKey(["d"]);
const META = encodeKey(["m"]);

/**
 * Names what a storage key holds: a document (`"d"`), an index definition
 * (`"index"`), a document key that does not decode (`"?"`), or something
 * the copy rebuilds or leaves out (`""`: index entries, insertion order,
 * tombstones, other metadata).
 */
function describe(
  key: Uint8Array,
): { space: string; collection?: string; id?: string; index?: string } {
  const doc = startsWith(key, DOCS);
  if (!doc && !startsWith(key, META)) return { space: "" };
  try {
    const parts = decodeKey(key);
    if (doc && parts.length === 3 && typeof parts[2] === "string") {
      return { space: "d", collection: String(parts[1]), id: parts[2] };
    }
    if (!doc && parts[2] === "index") {
      return {
        space: "index",
        collection: String(parts[1]),
        index: String(parts[3]),
      };
    }
  } catch {
    // Reported below when it is a document's.
  }
  return { space: doc ? "?" : "" };
}

/** The message of an error, without the action in front of it. */
function reasonOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** What the scan of the source found. */
interface Salvage {
  /**
   * NDJSON lines of the readable documents (as `export` writes them), with
   * what orders them by insertion.
   */
  readonly lines: { text: string; col: string; c: number; s: number }[];
  /** Index definitions. */
  readonly indexes: { collection: string; spec: IndexSpec }[];
  readonly lost: LostRecord[];
  checked: number;
  expired: number;
  /** The largest record, bytes. */
  largest: number;
}

/**
 * Decodes every document and index definition of the source, each on its
 * own: what fails goes to `lost`.
 */
async function salvage(
  inner: Storage,
  storage: Storage,
  now: number,
  onPage: (entries: number) => void,
): Promise<Salvage> {
  const found: Salvage = {
    lines: [],
    indexes: [],
    lost: [],
    checked: 0,
    expired: 0,
    largest: 0,
  };
  const decoder = new TextDecoder();
  let scanned = 0;
  for await (const page of inner.scan({})) {
    scanned += page.length;
    onPage(scanned);
    const wanted = page.filter((e) => describe(e.key).space !== "");
    if (wanted.length === 0) continue;
    // The page at once; when one of it fails, each on its own.
    let opened: (StorageEntry | null | Error)[];
    if (storage === inner) {
      opened = wanted;
    } else {
      try {
        opened = await storage.getMany(wanted.map((e) => e.key));
      } catch (e) {
        if (!(e instanceof IntegrityError)) throw e;
        opened = await Promise.all(
          wanted.map((w) =>
            storage.get(w.key).catch((e) => {
              if (e instanceof IntegrityError) return e;
              throw e;
            })
          ),
        );
      }
    }
    for (let i = 0; i < wanted.length; i++) {
      const what = describe(wanted[i]!.key);
      const entry = opened[i];
      const where = {
        ...(what.collection === undefined
          ? {}
          : { collection: what.collection }),
        ...(what.id === undefined ? {} : { key: what.id }),
        ...(what.index === undefined ? {} : { index: what.index }),
      };
      if (what.space === "?") {
        found.lost.push({ reason: "a document whose key does not decode" });
        continue;
      }
      found.checked++;
      if (entry === null || entry === undefined) continue;
      if (entry instanceof Error) {
        found.lost.push({ ...where, reason: reasonOf(entry) });
        continue;
      }
      const text = decoder.decode(entry.value);
      if (what.space === "index") {
        try {
          const spec = JSON.parse(text) as IndexSpec;
          const line = parseLine(
            JSON.stringify({ col: what.collection, index: spec }),
            0,
          );
          found.indexes.push({
            collection: what.collection!,
            spec: line!.index!,
          });
        } catch (e) {
          found.lost.push({
            ...where,
            reason: `its definition does not decode (${reasonOf(e)})`,
          });
        }
        continue;
      }
      const line = `{"col":${JSON.stringify(what.collection)},"id":${
        JSON.stringify(what.id)
      },${text.slice(1)}`;
      try {
        if (text[0] !== "{") throw new TypeError("it is not a JSON object");
        const { record } = parseLine(line, 0)!;
        const x = record!.expiresAt;
        if (x !== undefined && now >= x) {
          found.expired++;
          continue;
        }
        found.lines.push({
          text: line,
          col: what.collection!,
          c: record!.createdAt,
          s: record!.seq,
        });
      } catch (e) {
        found.lost.push({
          ...where,
          reason: `its record does not decode (${
            reasonOf(e).replace(/^Cannot import line 0: /, "")
          })`,
        });
        continue;
      }
      if (entry.value.length > found.largest) {
        found.largest = entry.value.length;
      }
    }
  }
  // Insertion order (creation time, then sequence) within each collection:
  // the copy numbers its items in the same order.
  found.lines.sort((a, b) =>
    a.col < b.col ? -1 : a.col > b.col ? 1 : a.c - b.c || a.s - b.s
  );
  return found;
}

function stream(lines: readonly string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= lines.length) return controller.close();
      let chunk = "";
      while (at < lines.length && chunk.length < 65_536) {
        chunk += lines[at++] + "\n";
      }
      controller.enqueue(encoder.encode(chunk));
    },
  });
}

/**
 * Writes the salvaged records into a new file database at `path`, telling
 * `onStep` of each step done (a group of documents, an index rebuilt) of
 * how many.
 */
async function writeTarget(
  path: string,
  found: Salvage,
  settings: {
    encryption: EncryptionOptions | undefined;
    compression: CompressionOptions | undefined;
  },
  action: string,
  onStep: (done: number, steps: number) => void,
): Promise<{ copied: number; expired: number; indexes: number }> {
  const { dir, base } = split(path);
  // Everything is written in a directory of its own beside the target, so
  // a crash leaves no file under the target's name, only that directory.
  const work = await Deno.makeTempDir({ dir, prefix: `.${base}.repair-` });
  try {
    const temp = `${work}/${base}`;
    let copied = 0;
    let expired = 0;
    let indexes = 0;
    {
      await using db = await open({
        path: temp,
        ...(settings.encryption === undefined
          ? {}
          : { encryption: settings.encryption }),
        ...(settings.compression === undefined
          ? {}
          : { compression: settings.compression }),
        maxValueBytes: Math.max(DEFAULT_MAX_VALUE, found.largest + 64),
        ttlCheckInterval: Infinity,
        cleanupInterval: Infinity,
      });
      const lines = found.lines;
      const steps = Math.ceil(lines.length / WRITE_STEP) +
        found.indexes.length;
      let step = 0;
      for (let at = 0; at < lines.length; at += WRITE_STEP) {
        const group = lines.slice(at, at + WRITE_STEP).map((l) => l.text);
        const result = await db.import(stream(group));
        copied += result.documents;
        expired += result.expired;
        onStep(++step, steps);
      }
      for (const { collection, spec } of found.indexes) {
        try {
          await db.import(
            stream([JSON.stringify({ col: collection, index: spec })]),
          );
          indexes++;
        } catch (e) {
          found.lost.push({
            collection,
            index: spec.name,
            reason: `its index cannot be rebuilt (${reasonOf(e)})`,
          });
        }
        onStep(++step, steps);
      }
    }
    const file = await Deno.open(temp, { read: true, write: true });
    try {
      await file.sync();
    } finally {
      file.close();
    }
    // A link never replaces an existing file: a target made meanwhile is
    // refused, not overwritten.
    try {
      await Deno.link(temp, path);
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) {
        throw new TypeError(
          `${action}: '${path}' appeared while repairing; the repaired copy was not written`,
        );
      }
      if (await exists(path)) throw e;
      await Deno.rename(temp, path);
    }
    if (Deno.build.os !== "windows") {
      const handle = await Deno.open(dir, { read: true });
      try {
        await handle.sync();
      } finally {
        handle.close();
      }
    }
    return { copied, expired, indexes };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/**
 * Copies every intact record of a damaged database into a new one, and
 * reports each lost document (by collection and key), index definition and
 * damaged byte range. The source is never changed (a file is read without
 * its lock, as a reader). Each record is decoded on its own: one that fails
 * its MAC, checksum or decoding is reported, and the others are copied with
 * their metadata (versions, times, expiry, tags). Index definitions are
 * carried over and their indexes rebuilt; insertion order and tombstones
 * are rebuilt or left out. The new database is written beside the target
 * path and renamed into place once complete (a crash leaves a hidden
 * `.<name>.repair-*` directory, never a partial target).
 *
 * Without a target nothing is written: the report says what a repair would
 * copy and lose.
 *
 * @param source The damaged database: `path` (or `storage`), and its
 *   `encryption` secret.
 * @param target The new database: a `path` that does not exist yet, and its
 *   `encryption` and `compression` (default: the source's).
 * @param options A `logger` told of each loss and of the outcome;
 *   `onProgress(done, total)` told how far along it is, ending with
 *   `done === total`.
 * @returns What was copied and what was lost.
 * @throws {WrongKeyError} When the secret is wrong or missing.
 * @throws {TypeError} When an option is malformed (`onProgress` not a
 *   function), the source file does not exist, or the target path exists.
 * @throws {IntegrityError} When what is needed to read anything (an
 *   encrypted database's key header) is itself damaged.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { open, repair } from "@tether/db";
 * const dir = await Deno.makeTempDir();
 * {
 *   await using db = await open({ path: `${dir}/app.tdb` });
 *   await db.collection("users").insert({ _id: "ann", age: 30 });
 * }
 * const report = await repair({ path: `${dir}/app.tdb` }, { path: `${dir}/new.tdb` });
 * assert.equal(report.copied, 1);
 * assert.deepEqual(report.lost, []);
 * {
 *   await using copy = await open({ path: `${dir}/new.tdb` });
 *   assert.deepEqual(await copy.collection("users").get("ann"), { _id: "ann", age: 30 });
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function repair(
  source: RepairSource,
  target?: RepairTarget,
  options: RepairOptions = {},
): Promise<RepairReport> {
  const action = "Cannot repair";
  checkObject(source, SOURCE_OPTIONS, "the source", action);
  if (target !== undefined) {
    checkObject(target, TARGET_OPTIONS, "the target", action);
  }
  checkObject(options, REPAIR_OPTIONS, "the options", action);
  const onProgress = checkProgress(options.onProgress, action);
  const log = resolveLog(options.logger, options.logLevel);
  if ((source.path === undefined) === (source.storage === undefined)) {
    throw new TypeError(
      `${action}: the source needs exactly one of path and storage`,
    );
  }
  if (
    source.path !== undefined &&
    (typeof source.path !== "string" || source.path.length === 0)
  ) {
    throw new TypeError(
      `${action}: the source path must be a non-empty string`,
    );
  }
  if (
    target !== undefined &&
    (typeof target.path !== "string" || target.path.length === 0)
  ) {
    throw new TypeError(
      `${action}: the target path must be a non-empty string`,
    );
  }
  const into = target?.path;
  if (into !== undefined && await exists(into)) {
    throw new TypeError(
      `${action} into '${into}': it already exists; give the path of a new file`,
    );
  }
  const { inner, damaged, tornBytes } = await openSource(source);
  try {
    let storage: Storage = inner;
    let empty = true;
    for await (const _ of inner.scan({ limit: 1 })) empty = false;
    if (!empty) {
      storage = await CodecStorage.open(inner, {
        ...(source.encryption === undefined
          ? {}
          : { encryption: source.encryption }),
      });
    }
    // Progress in the source's entries: read once, then written again.
    const entries = onProgress === undefined ? 0 : await countEntries(inner);
    const progress = new ProgressReport(
      onProgress,
      into === undefined ? entries : 2 * entries,
    );
    progress.report(0);
    const found = await salvage(
      inner,
      storage,
      Date.now(),
      (scanned) => progress.report(Math.min(scanned, entries)),
    );
    for (const range of damaged) {
      found.lost.push({
        offset: range.offset,
        bytes: range.bytes,
        reason: range.reason,
      });
    }
    let copied = found.lines.length;
    let expired = found.expired;
    let indexes = found.indexes.length;
    if (into !== undefined) {
      const stats = storage.stats?.() ?? {};
      const compression = target!.compression ??
        (typeof stats.compression === "number"
          ? { minBytes: stats.compression }
          : undefined);
      const encryption = target!.encryption === false
        ? undefined
        : target!.encryption ??
          (stats.encrypted === true ? source.encryption : undefined);
      progress.report(entries);
      const written = await writeTarget(
        into,
        found,
        { encryption, compression },
        action,
        (step, steps) =>
          progress.report(entries + Math.floor(entries * step / steps)),
      );
      copied = written.copied;
      expired += written.expired;
      indexes = written.indexes;
    }
    for (const l of found.lost) {
      log.warn(
        "repair-lost",
        l.offset !== undefined
          ? `Lost bytes ${l.offset} to ${l.offset + l.bytes!}: ${l.reason}`
          : l.key !== undefined
          ? `Lost '${l.key}' in '${l.collection}': ${l.reason}`
          : l.index !== undefined
          ? `Lost index '${l.index}' of '${l.collection}': ${l.reason}`
          : `Lost a record: ${l.reason}`,
        { ...l },
      );
    }
    if (into !== undefined) {
      log.info(
        "repair",
        `Repaired into '${into}': ${copied} documents copied, ${found.lost.length} lost`,
        { target: into, copied, lost: found.lost.length },
      );
    }
    progress.finish();
    return {
      target: into,
      checked: found.checked,
      copied,
      expired,
      indexes,
      lost: found.lost,
      damagedRanges: damaged,
      tornBytes,
    };
  } finally {
    if (source.storage === undefined) await inner.close();
  }
}
