/**
 * Imports a unosql database directory, or one of its backup or collection
 * files, into `@tether/db` collections: plain, compressed and encrypted, in
 * unosql's current and legacy formats. Every integrity check the files carry
 * is verified, and damage is reported with its file, offset and check.
 * See `docs/from_unosql.md`.
 *
 * @module
 */

import type { Database } from "../database.ts";
import { IntegrityError, WrongKeyError } from "../errors.ts";
import { Damage, KeyProblem } from "./unosql_format.ts";
import { type Converted, type Located, toDocument } from "./unosql_json.ts";
import {
  keySource,
  LegacyMacMismatch,
  type ReadFile,
  readFile,
} from "./unosql_read.ts";
import {
  ACTION,
  type Checked,
  checkOptions,
  type UnosqlDamage,
  type UnosqlFile,
  type UnosqlImportOptions,
  type UnosqlImportReport,
} from "./unosql_options.ts";
import { type Job, type Plan, planDirectory, planFile } from "./unosql_plan.ts";

export type { UnosqlCheck, UnosqlFormat } from "./unosql_format.ts";
export type { BigIntegers } from "./unosql_json.ts";
export type {
  UnosqlDamage,
  UnosqlFile,
  UnosqlImportOptions,
  UnosqlImportReport,
} from "./unosql_options.ts";

/**
 * Reads a unosql database directory, or one backup or collection file, and
 * stores its records in `db`'s collections of the same names: each record's
 * `id` becomes the key (and `_id`), `version` the document version and
 * `timestamp` its update time. Everything is read and verified before
 * anything is written; then the records go in through `db.import` (one
 * atomic commit per collection up to 1,000 documents).
 *
 * @param db The database to import into.
 * @param source A unosql database directory, or the path of a backup file
 *   (full or incremental) or of one collection file.
 * @param options Key, iteration count, salt, database name, format, which
 *   collections, and what to do on damage.
 * @returns What was imported, read, ignored and found damaged.
 * @throws {TypeError} When an option is malformed, a listed collection is
 *   not in the source, the database name cannot be told, or an encrypted
 *   source's salt file is missing (nothing is written).
 * @throws {RangeError} When the key length or iteration count is out of
 *   range (nothing is written).
 * @throws {WrongKeyError} When the data is encrypted and no key was given,
 *   or the key, salt or iteration count does not open it (nothing is
 *   written).
 * @throws {IntegrityError} With `onDamage: "throw"`, when any file or
 *   record fails a check, naming the file, the offset and the check
 *   (nothing is written).
 * @throws {Deno.errors.NotFound} When the source does not exist.
 * @throws {ClosedError} When `db` is closed.
 *
 * @example Import a unosql directory copied from a device
 * ```ts
 * import assert from "node:assert/strict";
 * import { importUnosql, open } from "@tether/db";
 *
 * // A plain legacy unosql collection file: the JSON array itself.
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(
 *   `${dir}/farm_users.db`,
 *   '[{"name": "Ada", "id": 1, "timestamp": 1748000000, "version": 2}]',
 * );
 * await using db = await open();
 * const report = await importUnosql(db, dir, { name: "farm" });
 * assert.equal(report.documents, 1);
 * const entry = await db.collection("users").getEntry("1");
 * assert.deepEqual(entry?.value, { _id: "1", name: "Ada" });
 * assert.equal(entry?.version, 2);
 * assert.equal(entry?.updatedAt, 1_748_000_000_000);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function importUnosql(
  db: Database,
  source: string,
  options: UnosqlImportOptions = {},
): Promise<UnosqlImportReport> {
  if (
    typeof db !== "object" || db === null ||
    typeof (db as { import?: unknown }).import !== "function"
  ) {
    throw new TypeError(`${ACTION}: db must be an open @tether/db database`);
  }
  if (typeof source !== "string" || source.length === 0) {
    throw new TypeError(`${ACTION}: source must be a directory or file path`);
  }
  const o = checkOptions(options);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(source);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(
        `${ACTION}: '${source}' does not exist`,
        { cause },
      );
    }
    throw cause;
  }
  const plan = info.isDirectory
    ? await planDirectory(source, o)
    : await planFile(source, o);
  return await run(db, source, plan, o);
}

interface Outcome {
  file: string;
  collection: string;
  converted: Converted[];
}

async function run(
  db: Database,
  source: string,
  plan: Plan,
  o: Checked,
): Promise<UnosqlImportReport> {
  const keys = keySource(o.key, o.iterations, plan.salt);
  let format = plan.format;
  const damaged: UnosqlDamage[] = [];
  const files: UnosqlFile[] = [];
  const outcomes: Outcome[] = [];
  const macMismatches: UnosqlDamage[] = [];
  let opened = 0;
  let kind = plan.kind;
  const fileDamage = (
    job: Job,
    collection: string | undefined,
    e: Damage,
  ): UnosqlDamage => ({
    file: job.path,
    collection,
    check: e.check,
    offset: e.offset,
    textOffset: e.textOffset,
    record: e.record,
    lost: "file",
    message: e.message,
  });
  for (const job of plan.jobs) {
    let read: ReadFile;
    try {
      read = await readFile(
        job.bytes,
        plan.format,
        job.prefixed,
        keys,
        plan.formatFixed,
      );
    } catch (e) {
      if (e instanceof KeyProblem) {
        throw new WrongKeyError(`${ACTION}: '${job.path}' ${e.message}`);
      }
      if (!(e instanceof Damage)) throw e;
      if (e instanceof LegacyMacMismatch) {
        if (job.prefixed) {
          // Its checksum held, so the bytes are as written: the key is wrong.
          throw new WrongKeyError(
            `${ACTION}: the key or iteration count does not open '${job.path}': its legacy envelope's MAC does not match`,
          );
        }
        macMismatches.push(fileDamage(job, job.collection, e));
      } else damaged.push(fileDamage(job, job.collection, e));
      continue;
    }
    if (read.encrypted) {
      opened++;
      format = read.format;
    }
    const isBackup = read.parsed.kind === "object";
    files.push({
      file: job.path,
      role: isBackup ? "backup" : "collection",
      checksum: read.checksum,
      encrypted: read.encrypted,
      compressed: read.compressed,
    });
    if (job.collection !== undefined) {
      if (read.parsed.kind === "object") {
        plan.ignored.push({
          file: job.path,
          reason:
            "holds a backup (an object of collections), not a collection; import it by its path",
        });
        files.pop();
        continue;
      }
      outcomes.push(
        convertAll(job, read, job.collection, read.parsed.records, o, damaged),
      );
    } else if (read.parsed.kind === "object") {
      kind = "backup";
      const wanted = o.collections;
      if (wanted !== undefined) {
        for (const c of wanted) {
          if (!read.parsed.collections.has(c)) {
            throw new TypeError(
              `${ACTION}: collection '${c}' is not in '${job.path}' (it has: ${
                [...read.parsed.collections.keys()].join(", ") || "none"
              })`,
            );
          }
        }
      }
      for (const [c, records] of read.parsed.collections) {
        if (wanted !== undefined && !wanted.includes(c)) continue;
        outcomes.push(convertAll(job, read, c, records, o, damaged));
      }
    } else {
      kind = "collection";
      const c = plan.single!(read);
      if (o.collections !== undefined && !o.collections.includes(c)) {
        throw new TypeError(
          `${ACTION}: collection '${c}' (the file '${job.path}') is not in options.collections`,
        );
      }
      outcomes.push(convertAll(job, read, c, read.parsed.records, o, damaged));
    }
  }
  // Legacy collection files carry no checksum: a MAC that fails on every
  // encrypted file is a wrong key; on some only, damage.
  if (macMismatches.length > 0) {
    if (opened === 0) {
      throw new WrongKeyError(
        `${ACTION}: the key or iteration count does not open '${
          macMismatches[0]!.file
        }'${
          macMismatches.length > 1
            ? ` (nor ${macMismatches.length - 1} other file(s))`
            : ""
        }: its MAC does not match (or every encrypted file is damaged)`,
      );
    }
    for (const m of macMismatches) damaged.push(m);
  }
  if (damaged.length > 0 && o.onDamage === "throw") {
    const first = damaged[0]!;
    throw new IntegrityError(
      `${ACTION}: ${describeDamage(first)}${
        damaged.length > 1 ? `; and ${damaged.length - 1} more problem(s)` : ""
      }; nothing was imported (onDamage: "skip" imports the rest)`,
    );
  }
  return await store(
    db,
    source,
    { ...plan, format },
    kind,
    files,
    outcomes,
    damaged,
  );
}

/**
 * One damage entry as a sentence naming the file, collection, offset and
 * check (as in the `IntegrityError` of `onDamage: "throw"`).
 *
 * @param d The entry, from `report.damaged`.
 * @returns The sentence.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeDamage } from "@tether/db";
 * const text = describeDamage({
 *   file: "dev/farm_users.db",
 *   collection: "users",
 *   check: "checksum",
 *   offset: 0,
 *   textOffset: undefined,
 *   record: undefined,
 *   lost: "file",
 *   message: "the SHA-256 of bytes 32..900 does not match",
 * });
 * assert.equal(
 *   text,
 *   "'dev/farm_users.db' (collection 'users', offset 0, check: checksum): the SHA-256 of bytes 32..900 does not match",
 * );
 * ```
 */
export function describeDamage(d: UnosqlDamage): string {
  const where = [
    d.collection !== undefined ? `collection '${d.collection}'` : undefined,
    d.offset !== undefined ? `offset ${d.offset}` : undefined,
    d.offset === undefined && d.textOffset !== undefined
      ? `byte ${d.textOffset} of its decoded JSON`
      : undefined,
    `check: ${d.check}`,
  ].filter((x) => x !== undefined).join(", ");
  return `'${d.file}' (${where}): ${d.message}`;
}

function convertAll(
  job: Job,
  read: ReadFile,
  collection: string,
  records: Located[],
  o: Checked,
  damaged: UnosqlDamage[],
): Outcome {
  const converted: Converted[] = [];
  const seen = new Map<string, number>();
  // The text's offset in the file, when it is stored as is.
  const textBase = read.encrypted || read.compressed
    ? undefined
    : job.prefixed
    ? 32
    : 0;
  records.forEach((located, index) => {
    const record = (e: Damage): UnosqlDamage => ({
      file: job.path,
      collection,
      check: e.check,
      offset: textBase !== undefined && e.textOffset !== undefined
        ? textBase + e.textOffset
        : undefined,
      textOffset: e.textOffset,
      record: index,
      lost: "record",
      message: e.message,
    });
    try {
      const c = toDocument(located, index, o.bigIntegers, o.epochMs);
      const before = seen.get(c.key);
      if (before !== undefined) {
        throw new Damage(
          "record",
          `record ${index} has the id ${c.key} of record ${before} (unosql allows duplicates; onDamage: "skip" keeps the first)`,
          { textOffset: located.textOffset, record: index },
        );
      }
      seen.set(c.key, index);
      converted.push(c);
    } catch (e) {
      if (!(e instanceof Damage)) throw e;
      damaged.push(record(e));
    }
  });
  return { file: job.path, collection, converted };
}

async function store(
  db: Database,
  source: string,
  plan: Plan,
  kind: UnosqlImportReport["kind"],
  files: UnosqlFile[],
  outcomes: Outcome[],
  damaged: UnosqlDamage[],
): Promise<UnosqlImportReport> {
  const counts: Record<string, number> = {};
  const bigIntegers: { collection: string; key: string; path: string }[] = [];
  const lines: string[] = [];
  const origins: { file: string; collection: string; key: string }[] = [];
  for (const { file, collection, converted } of outcomes) {
    counts[collection] = (counts[collection] ?? 0) + converted.length;
    for (const c of converted) {
      for (const path of c.bigIntegers) {
        bigIntegers.push({ collection, key: c.key, path });
      }
      lines.push(
        JSON.stringify({
          col: collection,
          id: c.key,
          v: c.doc,
          c: c.at,
          u: c.at,
          n: c.version,
        }),
      );
      origins.push({ file, collection, key: c.key });
    }
  }
  let documents = 0;
  if (lines.length > 0) {
    try {
      const result = await db.import(
        new Blob([lines.join("\n") + "\n"]).stream(),
        { mode: "merge" },
      );
      documents = result.documents;
    } catch (e) {
      // Name the record behind "line N" of the NDJSON handed to db.import.
      const n = e instanceof Error ? /\bline (\d+)\b/.exec(e.message) : null;
      const origin = n ? origins[Number(n[1]) - 1] : undefined;
      if (origin === undefined) throw e;
      const Type = (e as Error).constructor as new (
        message: string,
        options?: ErrorOptions,
      ) => Error;
      throw new Type(
        `${ACTION}: the record with id '${origin.key}' of collection '${origin.collection}' in '${origin.file}' cannot be stored (${
          (e as Error).message
        })`,
        { cause: e },
      );
    }
  }
  return {
    source,
    kind,
    format: plan.format,
    name: plan.name,
    collections: counts,
    documents,
    files,
    damaged,
    ignored: plan.ignored,
    bigIntegers,
  };
}
