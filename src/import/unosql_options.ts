/**
 * The options and report types of `importUnosql`, and the checking of its
 * options.
 *
 * @module
 */

import type { UnosqlCheck, UnosqlFormat } from "./unosql_format.ts";
import type { BigIntegers } from "./unosql_json.ts";

/** Options of {@linkcode importUnosql}. */
export interface UnosqlImportOptions {
  /**
   * The key the unosql database was opened with: bytes, or a string taken
   * as its UTF-8 bytes (as `b"..."` in Python). 32 bytes for the current
   * format, 16 for the legacy one. Needed only for encrypted files.
   */
  readonly key?: Uint8Array | string;
  /**
   * The iteration count given to unosql's constructor (stored nowhere).
   * Default: unosql's default, 1000 (current) or 10000 (legacy).
   */
  readonly iterations?: number;
  /**
   * The 16 bytes of the database's `D_salt.db`. Default: read from
   * `D_salt.db` beside the source (backups do not carry their salt).
   */
  readonly salt?: Uint8Array;
  /**
   * The unosql database name `D` (files are `D_<collection>.db`). Default:
   * told from `D_salt.db` or `D_errors.log`, else the longest common
   * `..._` prefix of the `.db` files.
   */
  readonly name?: string;
  /** `"current"` or `"legacy"`; default: told from the key length and files. */
  readonly format?: UnosqlFormat;
  /** Import only these unosql collections (each must exist in the source). */
  readonly collections?: readonly string[];
  /**
   * `"throw"` (default): any damage is an `IntegrityError` and nothing is
   * imported. `"skip"`: what is intact is imported; the report lists every
   * file and record that was not.
   */
  readonly onDamage?: "throw" | "skip";
  /**
   * The epoch of the device clock that wrote `timestamp`: 1970 (default;
   * the unix port) or 2000 (some embedded ports).
   */
  readonly epoch?: 1970 | 2000;
  /**
   * Integers beyond 2^53 (JavaScript's exact range): `"string"` (default)
   * keeps their digits as a string; `"number"` rounds them to a number.
   * The report lists each one either way.
   */
  readonly bigIntegers?: BigIntegers;
}

/** A file or record that failed a check. */
export interface UnosqlDamage {
  /** The file's path. */
  readonly file: string;
  /** The unosql collection, when known. */
  readonly collection: string | undefined;
  /** Which check failed. */
  readonly check: UnosqlCheck;
  /** Byte offset in the file of the failing part, when known. */
  readonly offset: number | undefined;
  /** Byte offset in the file's decoded (inflated, decrypted) JSON text. */
  readonly textOffset: number | undefined;
  /** The record's position in its array (0-based), for record damage. */
  readonly record: number | undefined;
  /** `"file"`: nothing of the file was imported; `"record"`: one record. */
  readonly lost: "file" | "record";
  /** What failed, in words. */
  readonly message: string;
}

/** A file that was read. */
export interface UnosqlFile {
  /** The file's path. */
  readonly file: string;
  /** A collection file, or a backup holding several collections. */
  readonly role: "collection" | "backup";
  /** Whether a SHA-256 prefix was verified (current files and all backups). */
  readonly checksum: boolean;
  /** Whether it was encrypted (and its MAC verified). */
  readonly encrypted: boolean;
  /** Whether it was a zlib stream (and its Adler-32 verified). */
  readonly compressed: boolean;
}

/** What {@linkcode importUnosql} did. */
export interface UnosqlImportReport {
  /** The source given. */
  readonly source: string;
  /** A database directory, a backup file, or one collection file. */
  readonly kind: "database" | "backup" | "collection";
  /** The format read. */
  readonly format: UnosqlFormat;
  /** The unosql database name, when known. */
  readonly name: string | undefined;
  /** Documents imported, per collection (0 for an empty one). */
  readonly collections: Readonly<Record<string, number>>;
  /** Documents imported in all. */
  readonly documents: number;
  /** The files read (damaged ones too). */
  readonly files: readonly UnosqlFile[];
  /** What failed a check (empty unless `onDamage: "skip"`). */
  readonly damaged: readonly UnosqlDamage[];
  /** Files in the directory that were not imported, and why. */
  readonly ignored: readonly {
    readonly file: string;
    readonly reason: string;
  }[];
  /** Integers beyond 2^53, by collection, key and path in the document. */
  readonly bigIntegers: readonly {
    readonly collection: string;
    readonly key: string;
    readonly path: string;
  }[];
}

const KNOWN = new Set([
  "key",
  "iterations",
  "salt",
  "name",
  "format",
  "collections",
  "onDamage",
  "epoch",
  "bigIntegers",
]);
/** The start of every error message. */
export const ACTION = "Cannot import from unosql";
const MAX_ITERATIONS = 100_000_000;

/** The options, checked and with their defaults. */
export interface Checked {
  key: Uint8Array | undefined;
  iterations: number | undefined;
  salt: Uint8Array | undefined;
  name: string | undefined;
  format: UnosqlFormat | undefined;
  collections: readonly string[] | undefined;
  onDamage: "throw" | "skip";
  epochMs: number;
  bigIntegers: BigIntegers;
}

/**
 * Checks the options (before anything is read).
 *
 * @param options The caller's options.
 * @returns The checked options.
 * @throws {TypeError} A malformed option.
 * @throws {RangeError} A key length or iteration count out of range.
 */
export function checkOptions(options: UnosqlImportOptions): Checked {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${ACTION}: options must be an object`);
  }
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) {
      throw new TypeError(
        `${ACTION}: unknown option '${name}' (known: ${[...KNOWN].join(", ")})`,
      );
    }
  }
  const o = options;
  let key: Uint8Array | undefined;
  if (typeof o.key === "string") key = new TextEncoder().encode(o.key);
  else if (o.key instanceof Uint8Array) key = o.key.slice();
  else if (o.key !== undefined) {
    throw new TypeError(`${ACTION}: key must be a Uint8Array or a string`);
  }
  const format = o.format;
  if (format !== undefined && format !== "current" && format !== "legacy") {
    throw new TypeError(`${ACTION}: format must be "current" or "legacy"`);
  }
  if (key !== undefined) {
    const want = format === "current" ? [32] : format === "legacy" ? [16] : [
      16,
      32,
    ];
    if (!want.includes(key.length)) {
      throw new RangeError(
        `${ACTION}: the key is ${key.length} bytes; unosql keys are ${
          want.join(" or ")
        } bytes (32 current, 16 legacy)`,
      );
    }
  }
  if (
    o.iterations !== undefined &&
    !(Number.isSafeInteger(o.iterations) && o.iterations >= 1 &&
      o.iterations <= MAX_ITERATIONS)
  ) {
    throw new RangeError(
      `${ACTION}: iterations must be an integer from 1 to ${MAX_ITERATIONS}`,
    );
  }
  if (
    o.salt !== undefined &&
    !(o.salt instanceof Uint8Array && o.salt.length === 16)
  ) {
    throw new TypeError(`${ACTION}: salt must be 16 bytes (a Uint8Array)`);
  }
  if (
    o.name !== undefined &&
    !(typeof o.name === "string" && /^[A-Za-z0-9_]+$/.test(o.name))
  ) {
    throw new TypeError(
      `${ACTION}: name must be a unosql database name (letters, digits and '_')`,
    );
  }
  if (
    o.collections !== undefined &&
    !(Array.isArray(o.collections) &&
      o.collections.every((c) => typeof c === "string" && c.length > 0))
  ) {
    throw new TypeError(`${ACTION}: collections must be an array of names`);
  }
  if (
    o.onDamage !== undefined && o.onDamage !== "throw" && o.onDamage !== "skip"
  ) {
    throw new TypeError(`${ACTION}: onDamage must be "throw" or "skip"`);
  }
  if (o.epoch !== undefined && o.epoch !== 1970 && o.epoch !== 2000) {
    throw new RangeError(`${ACTION}: epoch must be 1970 or 2000`);
  }
  if (
    o.bigIntegers !== undefined && o.bigIntegers !== "string" &&
    o.bigIntegers !== "number"
  ) {
    throw new TypeError(`${ACTION}: bigIntegers must be "string" or "number"`);
  }
  return {
    key,
    iterations: o.iterations,
    salt: o.salt?.slice(),
    name: o.name,
    format,
    collections: o.collections ? [...o.collections] : undefined,
    onDamage: o.onDamage ?? "throw",
    epochMs: o.epoch === 2000 ? 946_684_800_000 : 0,
    bigIntegers: o.bigIntegers ?? "string",
  };
}
