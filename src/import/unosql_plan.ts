/**
 * What `importUnosql` reads: the files of a database directory or the one
 * file given, the format they are in, and where the salt is.
 *
 * @module
 */

import { IntegrityError } from "../errors.ts";
import {
  hasChecksum,
  isZlibHeader,
  type UnosqlFormat,
} from "./unosql_format.ts";
import type { ReadFile } from "./unosql_read.ts";
import { listDatabase, type Listing } from "./unosql_list.ts";
import { ACTION, type Checked } from "./unosql_options.ts";

/** One file to read, with what it is expected to hold. */
/** One file to read. */
export interface Job {
  readonly path: string;
  /** The collection (collection files), or undefined for a backup. */
  readonly collection: string | undefined;
  readonly bytes: Uint8Array;
  readonly prefixed: boolean;
}

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

function dirOf(path: string): string {
  const at = path.lastIndexOf("/");
  return at < 0 ? "." : at === 0 ? "/" : path.slice(0, at);
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

async function readSalt(path: string): Promise<Uint8Array> {
  let salt: Uint8Array;
  try {
    salt = await Deno.readFile(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new TypeError(
        `${ACTION}: a key was given, and the salt file '${path}' that opening encrypted data needs is missing; pass options.salt (the 16 bytes of the database's D_salt.db)`,
        { cause },
      );
    }
    throw cause;
  }
  if (salt.length !== 16) {
    throw new IntegrityError(
      `${ACTION}: the salt file '${path}' is ${salt.length} bytes, not 16`,
    );
  }
  return salt;
}

/** What to read. */
export interface Plan {
  kind: "database" | "backup" | "collection";
  format: UnosqlFormat;
  /** Whether the format is known (else an envelope tells it). */
  formatFixed: boolean;
  name: string | undefined;
  jobs: Job[];
  ignored: { file: string; reason: string }[];
  salt: () => Promise<Uint8Array>;
  /** For a single file: the collection name once its content is known. */
  single?: (read: ReadFile) => string;
}

/**
 * Lists a database directory and reads its collection files.
 *
 * @param dir The directory.
 * @param o The options.
 * @returns The plan.
 */
export async function planDirectory(dir: string, o: Checked): Promise<Plan> {
  const listing: Listing = await listDatabase(dir, o.name, ACTION);
  const { name, collections, ignored } = listing;
  if (o.collections !== undefined) {
    for (const c of o.collections) {
      if (!collections.has(c)) {
        throw new TypeError(
          `${ACTION}: collection '${c}' is not in '${dir}' (it has: ${
            [...collections.keys()].join(", ") || "none"
          })`,
        );
      }
    }
  }
  const jobs: Job[] = [];
  const files = new Map<string, Uint8Array>();
  for (const [collection, file] of collections) {
    if (o.collections !== undefined && !o.collections.includes(collection)) {
      ignored.push({
        file: join(dir, file),
        reason: "not in options.collections",
      });
      continue;
    }
    files.set(collection, await Deno.readFile(join(dir, file)));
  }
  let format = o.format ??
    (o.key?.length === 32
      ? "current"
      : o.key?.length === 16
      ? "legacy"
      : undefined);
  if (format === undefined) {
    format = listing.currentOnly ? "current" : "legacy";
    for (const bytes of files.values()) {
      if (await hasChecksum(bytes)) format = "current";
    }
  }
  for (const [collection, bytes] of files) {
    jobs.push({
      path: join(dir, collections.get(collection)!),
      collection,
      bytes,
      prefixed: format === "current",
    });
  }
  const saltPath = join(dir, `${name}_salt.db`);
  return {
    kind: "database",
    format,
    formatFixed: true,
    name,
    jobs,
    ignored,
    salt: () => o.salt ? Promise.resolve(o.salt) : readSalt(saltPath),
  };
}

/**
 * Reads one backup or collection file and tells its format.
 *
 * @param path The file.
 * @param o The options.
 * @returns The plan.
 */
export async function planFile(path: string, o: Checked): Promise<Plan> {
  const bytes = await Deno.readFile(path);
  const keyFormat: UnosqlFormat | undefined = o.format ??
    (o.key?.length === 32
      ? "current"
      : o.key?.length === 16
      ? "legacy"
      : undefined);
  let format: UnosqlFormat;
  let prefixed: boolean;
  if (await hasChecksum(bytes)) {
    prefixed = true;
    format = keyFormat ?? "current";
  } else if (keyFormat !== undefined) {
    format = keyFormat;
    prefixed = format === "current";
  } else if (bytes[0] === 0x5b || bytes[0] === 0x7b || isZlibHeader(bytes)) {
    format = "legacy";
    prefixed = false;
  } else {
    format = "current";
    prefixed = true;
  }
  const dir = dirOf(path);
  const base = baseOf(path);
  const findSalt = async (): Promise<Uint8Array> => {
    if (o.salt) return o.salt;
    if (o.name !== undefined) {
      return await readSalt(join(dir, `${o.name}_salt.db`));
    }
    const salts: string[] = [];
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && entry.name.endsWith("_salt.db")) {
        salts.push(entry.name);
      }
    }
    if (salts.length !== 1) {
      throw new TypeError(
        `${ACTION}: '${path}' is encrypted and ${
          salts.length === 0
            ? "no salt file (D_salt.db) is beside it"
            : `several salt files are beside it (${salts.sort().join(", ")})`
        }; pass options.salt or options.name`,
      );
    }
    return await readSalt(join(dir, salts[0]!));
  };
  return {
    kind: "backup",
    format,
    formatFixed: o.format !== undefined || !prefixed,
    name: o.name,
    jobs: [{ path, collection: undefined, bytes, prefixed }],
    ignored: [],
    salt: findSalt,
    single: () => {
      const stem = base.replace(/\.db(\.bak)?$/, "");
      if (o.name !== undefined && stem.startsWith(`${o.name}_`)) {
        return stem.slice(o.name.length + 1);
      }
      throw new TypeError(
        `${ACTION}: '${path}' is one collection (an array of records); pass options.name (the unosql database name) so its collection name can be told`,
      );
    },
  };
}
