/**
 * Opening the database the options name (`--db` or `--kv`), with its
 * passphrase: a plain database opens without one (a passphrase in the
 * environment is then ignored, with a note); an encrypted one with the
 * environment's, else a terminal is asked. A new database is encrypted only
 * with `--encrypt`.
 *
 * @module
 */

import {
  type Collection,
  type Database,
  open,
  type OpenOptions,
  WrongKeyError,
} from "../../mod.ts";
import { flag, list, option, type Parsed, whole } from "./args.ts";
import type { Context } from "./context.ts";
import { asUsage, CliError, ExitCode, usage } from "./exit.ts";
import { oneLine } from "./output.ts";
import { askNew } from "./passphrase.ts";

/** What the database options name. */
export interface Target {
  /** A file database or Deno KV. */
  readonly kind: "file" | "kv";
  /** The path, KV path, `:memory:` or URL. */
  readonly location: string;
  /** The KV key prefix. */
  readonly prefix: string[] | undefined;
  /** A local file that must exist unless the command creates one. */
  readonly file: string | undefined;
}

/**
 * The database the options name.
 *
 * @param parsed The arguments.
 * @returns Where it is.
 * @throws {CliError} A usage error when neither or both are given.
 */
export function target(parsed: Parsed): Target {
  const path = option(parsed, "db");
  const kv = option(parsed, "kv");
  const prefix = list(option(parsed, "prefix"));
  if ((path === undefined) === (kv === undefined)) {
    throw usage(
      path === undefined
        ? "give the database: --db <path> or --kv <path|:memory:|url>"
        : "give either --db or --kv, not both",
    );
  }
  if (prefix !== undefined && kv === undefined) {
    throw usage("--prefix is an option of Deno KV (--kv)");
  }
  if (prefix !== undefined && prefix.length === 0) {
    throw usage("--prefix needs at least one part");
  }
  if (path !== undefined) {
    if (path === "") throw usage("--db needs a path");
    return { kind: "file", location: path, prefix: undefined, file: path };
  }
  const remote = kv === ":memory:" || /^https?:\/\//i.test(kv!);
  if (kv === "") throw usage("--kv needs a path, :memory: or a URL");
  return {
    kind: "kv",
    location: kv!,
    prefix,
    file: remote ? undefined : kv,
  };
}

/** How a command opens the database. */
export interface OpenMode {
  /** Reads only: a file database is opened without its lock. */
  readonly readOnly: boolean;
  /** A missing database is created (import, restore, put). */
  readonly create: boolean;
}

/** Reads only. */
export const READ: OpenMode = { readOnly: true, create: false };
/** Writes an existing database. */
export const WRITE: OpenMode = { readOnly: false, create: false };
/** Writes, creating the database when missing. */
export const CREATE: OpenMode = { readOnly: false, create: true };

/**
 * Exit 66 when the database file is missing.
 *
 * @param where The database.
 */
export async function mustExist(where: Target): Promise<void> {
  if (where.file === undefined) return;
  try {
    await Deno.stat(where.file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CliError(
        ExitCode.NoInput,
        `cannot open '${where.file}': no such file (only import, restore and put create a database)`,
      );
    }
    throw e;
  }
}

/**
 * Whether a path exists.
 *
 * @param path The path.
 * @returns True when it does.
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * The environment variable holding the passphrase.
 *
 * @param ctx The command's context.
 * @returns Its name.
 */
export function passphraseVariable(ctx: Context): string {
  return option(ctx.parsed, "passphrase-env") ?? "TETHER_PASSPHRASE";
}

async function openDatabase(
  ctx: Context,
  where: Target,
  how: OpenMode,
  isNew: boolean,
): Promise<Database> {
  if (!how.create) await mustExist(where);
  const lockTimeout = whole(ctx.parsed, "lock-timeout");
  const base: OpenOptions = where.kind === "file"
    ? {
      path: where.location,
      ...(how.readOnly ? { readOnly: true } : {}),
      ...(lockTimeout === undefined || how.readOnly ? {} : { lockTimeout }),
    }
    : {
      kv: where.location,
      ...(where.prefix === undefined ? {} : { prefix: where.prefix }),
    };
  const opening = async (passphrase: string | undefined) => {
    try {
      return await open(
        passphrase === undefined
          ? base
          : { ...base, encryption: { passphrase } },
      );
    } catch (e) {
      if (
        where.kind === "kv" && e instanceof TypeError &&
        /--unstable-kv/.test(e.message)
      ) {
        throw new CliError(ExitCode.NoInput, e.message);
      }
      throw e;
    }
  };
  if (flag(ctx.parsed, "encrypt")) {
    if (!how.create) {
      throw usage(
        "--encrypt creates a new encrypted database: give it to import, restore or put",
      );
    }
    const variable = passphraseVariable(ctx);
    let passphrase = ctx.env(variable) || undefined;
    if (passphrase === undefined) {
      if (!ctx.stdinIsTerminal) {
        throw new CliError(
          ExitCode.WrongKey,
          `--encrypt needs a passphrase: set ${variable}`,
        );
      }
      passphrase = isNew
        ? await askNew(ctx.prompt, `'${where.location}'`)
        : await ctx.prompt(`Passphrase for '${where.location}': `) ??
          undefined;
      if (passphrase === undefined || passphrase === "") {
        throw new CliError(ExitCode.WrongKey, "no passphrase given");
      }
    }
    try {
      const db = await opening(passphrase);
      ctx.secret.passphrase = passphrase;
      return db;
    } catch (e) {
      if (e instanceof WrongKeyError && /not encrypted/.test(e.message)) {
        throw usage(
          `--encrypt: '${where.location}' exists and is not encrypted; to encrypt its data, export it and import into a new database with --encrypt`,
        );
      }
      throw e;
    }
  }
  return await withPassphrase(ctx, where, opening, isNew);
}

/**
 * Runs `use` with the database's passphrase: the one that worked before;
 * else none first (a plain database; a passphrase set in the environment is
 * then ignored, with a note on stderr); when that is refused because the
 * database is encrypted, the environment's, else a terminal is asked
 * (three tries). A passphrase that passes the key check is kept for the
 * next call, even when `use` then fails otherwise.
 *
 * @param ctx The command's context.
 * @param where The database.
 * @param use Opens (or repairs) with the passphrase, or without.
 * @param isNew Whether the database is being created (for the note).
 * @returns What `use` returns.
 */
export async function withPassphrase<R>(
  ctx: Context,
  where: Target,
  use: (passphrase: string | undefined) => Promise<R>,
  isNew = false,
): Promise<R> {
  if (ctx.secret.passphrase !== undefined) {
    return await use(ctx.secret.passphrase);
  }
  const variable = passphraseVariable(ctx);
  const fromEnv = ctx.env(variable) || undefined;
  try {
    const result = await use(undefined);
    if (fromEnv !== undefined) {
      await ctx.err.write(
        `tether: ${ctx.paintErr.yellow("note")}: ${variable} is set, but ${
          isNew
            ? `the new database '${where.location}' is not encrypted (give --encrypt to encrypt it)`
            : `'${where.location}' is not encrypted; opened without it`
        }\n`,
      );
    }
    return result;
  } catch (e) {
    // Without a secret, a WrongKeyError means the database is encrypted.
    if (!(e instanceof WrongKeyError)) throw e;
  }
  const attempt = async (passphrase: string) => {
    try {
      const result = await use(passphrase);
      ctx.secret.passphrase = passphrase;
      return result;
    } catch (e) {
      if (!(e instanceof WrongKeyError)) ctx.secret.passphrase = passphrase;
      throw e;
    }
  };
  if (fromEnv !== undefined) return await attempt(fromEnv);
  if (!ctx.stdinIsTerminal) {
    throw new CliError(
      ExitCode.WrongKey,
      `the database '${where.location}' is encrypted: set ${variable} to its passphrase`,
    );
  }
  for (let tries = 1;; tries++) {
    const given = await ctx.prompt(`Passphrase for '${where.location}': `);
    if (given === null || given === "") {
      throw new CliError(ExitCode.WrongKey, "no passphrase given");
    }
    try {
      return await attempt(given);
    } catch (e) {
      if (!(e instanceof WrongKeyError) || tries >= 3) throw e;
      await ctx.err.write(`tether: ${oneLine(e.message)}; try again\n`);
    }
  }
}

/**
 * The database, closed after `fn`. When `fn` fails on a file database that
 * this command created (a failed import or restore), the file is removed,
 * while the lock still makes it this process's alone. (Its `.lock` stays,
 * as after every open; a new Deno KV file stays too: others may share it.)
 *
 * @param ctx The command's context.
 * @param how Read, write or create.
 * @param fn What to do with it.
 * @returns What `fn` returns.
 */
export async function withDatabase<R>(
  ctx: Context,
  how: OpenMode,
  fn: (db: Database, where: Target) => Promise<R>,
): Promise<R> {
  const where = target(ctx.parsed);
  const isNew = how.create && where.file !== undefined &&
    !(await exists(where.file));
  const db = await openDatabase(ctx, where, how, isNew);
  try {
    return await fn(db, where);
  } catch (e) {
    if (isNew && where.kind === "file") {
      await Deno.remove(where.location).catch(() => {});
    }
    throw e;
  } finally {
    await db.close();
  }
}

/**
 * A collection, a bad name being a usage error.
 *
 * @param db The database.
 * @param name The collection's name.
 * @returns It.
 */
export function collectionOf(db: Database, name: string): Collection<unknown> {
  return asUsage(() => db.collection(name));
}

/**
 * The names of `--collections a,b`, each checked.
 *
 * @param db The database.
 * @param parsed The arguments.
 * @returns The names, or `undefined` for all.
 */
export function collectionsOption(
  db: Database,
  parsed: Parsed,
): string[] | undefined {
  const names = list(option(parsed, "collections"));
  if (names === undefined) return undefined;
  if (names.length === 0) throw usage("--collections needs a name");
  for (const name of names) collectionOf(db, name);
  return names;
}

/**
 * The backup's own passphrase, from `--backup-passphrase-env NAME`.
 *
 * @param ctx The command's context.
 * @returns `{ passphrase }`, or `undefined` when not given.
 */
export function backupSecret(
  ctx: Context,
): { readonly passphrase: string } | undefined {
  const variable = option(ctx.parsed, "backup-passphrase-env");
  if (variable === undefined) return undefined;
  const passphrase = ctx.env(variable);
  if (passphrase === undefined || passphrase === "") {
    throw usage(`--backup-passphrase-env: ${variable} is not set`);
  }
  return { passphrase };
}
