/**
 * The command-line tool of `@tether/db`: look into a database file or a
 * Deno KV database, read documents, export and import NDJSON, take and
 * restore backups, verify, compact and repair, from a shell.
 *
 * ```sh
 * deno run -A --unstable-kv jsr:@tether/db/cli info --db data/app.tdb
 * deno run -A --unstable-kv jsr:@tether/db/cli find users '{"age":{"$gt":25}}' --db data/app.tdb
 * deno run -A --unstable-kv jsr:@tether/db/cli backup app.tbk --db data/app.tdb
 * ```
 *
 * The database is `--db <path>` (a file database) or
 * `--kv <path|:memory:|url>` (Deno KV, with `--prefix a,b`). An encrypted
 * database's passphrase comes from the environment variable
 * `TETHER_PASSPHRASE` (or the one `--passphrase-env NAME` names); without
 * it, a terminal is asked, without echo. `help` lists the commands and the
 * exit codes; `<command> --help` gives a command's options.
 *
 * Programs and tests can run it in-process with {@linkcode main}, which
 * returns the exit code instead of exiting.
 *
 * @module
 */

import {
  type Collection,
  type Database,
  IntegrityError,
  LockedError,
  open,
  type OpenOptions,
  repair,
  type RepairReport,
  WrongKeyError,
} from "./mod.ts";

/**
 * The exit codes of the command-line tool (after the BSD `sysexits.h`
 * where one fits), which scripts can rely on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ExitCode } from "./cli.ts";
 * assert.equal(ExitCode.Usage, 64);
 * ```
 */
export const ExitCode = {
  /** The command succeeded. */
  Ok: 0,
  /** Not found (`get` of an absent key), or the command failed as asked. */
  Failed: 1,
  /** `verify` found problems; `repair` lost something (listed). */
  Problems: 2,
  /** Usage error: unknown command or option, a bad argument, bad JSON. */
  Usage: 64,
  /** Data error: damaged data or backup (`IntegrityError`), bad NDJSON. */
  Data: 65,
  /** Cannot open: a missing or unreadable database or input file. */
  NoInput: 66,
  /** Any other (internal) error. */
  Internal: 70,
  /** The database file is locked by another writer (`LockedError`). */
  Locked: 75,
  /** The passphrase is wrong or missing (`WrongKeyError`). */
  WrongKey: 77,
} as const;

/**
 * Where {@linkcode main} reads and writes; every field defaults to the
 * process's own (`Deno.stdin`, `Deno.stdout`, `Deno.stderr`, `Deno.env`, and
 * whether they are terminals). A stream given here counts as not a terminal
 * unless its `...IsTerminal` flag says otherwise.
 */
export interface CliIO {
  /** Input of `import -` and `restore -`. */
  readonly stdin?: ReadableStream<Uint8Array>;
  /** Results. */
  readonly stdout?: WritableStream<Uint8Array>;
  /** Errors (`tether: <message>`), progress and prompts. */
  readonly stderr?: WritableStream<Uint8Array>;
  /** Whether to ask for a missing passphrase (with {@linkcode CliIO.prompt}). */
  readonly stdinIsTerminal?: boolean;
  /** Whether to show progress on stderr. */
  readonly stderrIsTerminal?: boolean;
  /** The terminal's width, to fit `find`'s table (none: not a terminal). */
  readonly columns?: number;
  /** Reads an environment variable. */
  readonly env?: (name: string) => string | undefined;
  /**
   * Asks for a passphrase without echoing it; `null` when none was given.
   * The default reads the terminal in raw mode.
   */
  readonly prompt?: (message: string) => Promise<string | null>;
}

/** A failure with its exit code; its message is printed as is. */
class CliError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

function usage(message: string): CliError {
  return new CliError(ExitCode.Usage, message);
}

/** Runs `fn`, turning a `TypeError` or `RangeError` into a usage error. */
function asUsage<R>(fn: () => R): R {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) {
      throw usage(e.message);
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------
// Output

const encoder = new TextEncoder();

/** Text written to a stream in order, one write at a time. */
class Out {
  readonly #stream: WritableStream<Uint8Array>;
  #chain: Promise<void> = Promise.resolve();

  constructor(stream: WritableStream<Uint8Array>) {
    this.#stream = stream;
  }

  get stream(): WritableStream<Uint8Array> {
    return this.#stream;
  }

  write(text: string): Promise<void> {
    const next = this.#chain.then(async () => {
      const writer = this.#stream.getWriter();
      try {
        await writer.write(encoder.encode(text));
      } finally {
        writer.releaseLock();
      }
    });
    this.#chain = next.catch(() => {});
    return next;
  }

  /** Waits for every write so far. */
  flush(): Promise<void> {
    return this.#chain;
  }
}

/** Writes what comes in, a few KiB at a time. */
class Buffered {
  #text = "";
  constructor(readonly out: Out) {}
  async write(text: string): Promise<void> {
    this.#text += text;
    if (this.#text.length >= 65_536) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.#text.length === 0) return;
    const text = this.#text;
    this.#text = "";
    await this.out.write(text);
  }
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

const FRAMES = ["|", "/", "-", "\\"];

/**
 * A spinner with elapsed time (and bytes, when known) on stderr, redrawn at
 * most every 100 ms, only when stderr is a terminal.
 */
class Progress {
  readonly #out: Out;
  readonly #label: string;
  readonly #bytes: () => number | undefined;
  readonly #start = Date.now();
  #timer: ReturnType<typeof setInterval> | undefined;
  #frame = 0;
  #shown = false;

  constructor(
    out: Out,
    enabled: boolean,
    label: string,
    bytes: () => number | undefined = () => undefined,
  ) {
    this.#out = out;
    this.#label = label;
    this.#bytes = bytes;
    if (enabled) this.#timer = setInterval(() => this.#draw(), 100);
  }

  #draw(): void {
    const bytes = this.#bytes();
    const seconds = ((Date.now() - this.#start) / 1000).toFixed(1);
    const frame = FRAMES[this.#frame++ % FRAMES.length];
    this.#shown = true;
    this.#out.write(
      `\r${frame} ${this.#label}${
        bytes === undefined ? "" : ` ${formatBytes(bytes)}`
      } ${seconds} s\x1b[K`,
    ).catch(() => {});
  }

  /** Stops and erases the indicator. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#shown) await this.#out.write("\r\x1b[K").catch(() => {});
    this.#shown = false;
    await this.#out.flush();
  }
}

/** A pass-through stream that counts the bytes crossing it. */
function counting(): {
  readonly stream: TransformStream<Uint8Array, Uint8Array>;
  readonly bytes: () => number;
} {
  let bytes = 0;
  return {
    stream: new TransformStream({
      transform(chunk, controller) {
        bytes += chunk.length;
        controller.enqueue(chunk);
      },
    }),
    bytes: () => bytes,
  };
}

/**
 * A file written beside its final name and renamed over it once complete
 * and fsynced, so that a failed export or backup never leaves a truncated
 * file where a good one was. (A path that is not a regular file, such as a
 * FIFO, is written directly.)
 */
interface FileSink {
  readonly writable: WritableStream<Uint8Array>;
  readonly bytes: () => number;
  /** Renames it into place (after the writer closed the stream). */
  commit(): Promise<void>;
  /** Removes what was written (after a failure). */
  discard(): Promise<void>;
}

async function fileSink(path: string): Promise<FileSink> {
  let direct = false;
  try {
    direct = !(await Deno.stat(path)).isFile;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const temp = direct
    ? path
    : `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(temp, { write: true, create: true, truncate: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CliError(
        ExitCode.NoInput,
        `cannot create '${path}': its directory does not exist`,
      );
    }
    throw e;
  }
  let bytes = 0;
  let closed = false;
  const close = () => {
    if (!closed) file.close();
    closed = true;
  };
  return {
    writable: new WritableStream({
      async write(chunk) {
        let at = 0;
        while (at < chunk.length) at += await file.write(chunk.subarray(at));
        bytes += chunk.length;
      },
      async close() {
        if (!direct) await file.sync();
        close();
      },
      abort() {
        close();
      },
    }),
    bytes: () => bytes,
    async commit() {
      close();
      if (direct) return;
      await Deno.rename(temp, path);
      await syncDir(path);
    },
    async discard() {
      close();
      if (!direct) await Deno.remove(temp).catch(() => {});
    },
  };
}

/** Best effort: makes a rename in the file's directory durable. */
async function syncDir(path: string): Promise<void> {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  const dir = slash < 0 ? "." : path.slice(0, slash) || "/";
  try {
    using handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch {
    // Not every platform opens directories.
  }
}

/** Reads a passphrase from the terminal in raw mode, without echo. */
async function promptTerminal(message: string): Promise<string | null> {
  await Deno.stderr.write(encoder.encode(message));
  const bytes: number[] = [];
  const buffer = new Uint8Array(256);
  Deno.stdin.setRaw(true);
  try {
    read: while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) return bytes.length === 0 ? null : decode(bytes);
      for (const b of buffer.subarray(0, n)) {
        if (b === 0x0d || b === 0x0a) break read; // Enter
        if (b === 0x03) throw new CliError(130, "interrupted"); // Ctrl-C
        if (b === 0x04) { // Ctrl-D
          if (bytes.length === 0) return null;
          break read;
        }
        if (b === 0x7f || b === 0x08) { // Backspace: one UTF-8 character
          while (bytes.length > 0 && ((bytes.pop()! & 0xc0) === 0x80));
          continue;
        }
        if (b === 0x15) { // Ctrl-U
          bytes.length = 0;
          continue;
        }
        if (b < 0x20) continue;
        bytes.push(b);
      }
    }
    return decode(bytes);
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
}

function decode(bytes: number[]): string {
  return new TextDecoder().decode(new Uint8Array(bytes));
}

// ---------------------------------------------------------------------------
// Arguments

type OptionKind = "flag" | "value";

/** Options every command takes. */
const COMMON: Record<string, OptionKind> = {
  db: "value",
  kv: "value",
  prefix: "value",
  "passphrase-env": "value",
  "lock-timeout": "value",
  help: "flag",
};

interface Parsed {
  readonly positionals: string[];
  readonly options: Map<string, string | true>;
}

/** Splits arguments into positionals and known options. */
function parse(
  args: readonly string[],
  known: Record<string, OptionKind>,
  command: string,
): Parsed {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      options.set("help", true);
      continue;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith("--")) {
      throw usage(`unknown option '${arg}'${where(command)}`);
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const kind = known[name];
    if (kind === undefined) {
      throw usage(`unknown option '--${name}'${where(command)}`);
    }
    if (kind === "flag") {
      if (eq >= 0) throw usage(`option '--${name}' takes no value`);
      options.set(name, true);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else value = args[++i];
    if (value === undefined) {
      throw usage(`option '--${name}' needs a value`);
    }
    options.set(name, value);
  }
  return { positionals, options };
}

function where(command: string): string {
  return command === ""
    ? " (see --help)"
    : ` for '${command}' (see '${command} --help')`;
}

function option(parsed: Parsed, name: string): string | undefined {
  const value = parsed.options.get(name);
  return typeof value === "string" ? value : undefined;
}

function count(parsed: Parsed, name: string): number | undefined {
  const text = option(parsed, name);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) {
    throw usage(`--${name} must be a whole number, got '${text}'`);
  }
  return n;
}

function json(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw usage(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw usage(`${what} must be a JSON object, got ${text}`);
  }
  return value as Record<string, unknown>;
}

/** Epoch ms from digits or an ISO date and time. */
function time(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isSafeInteger(ms)) {
    throw usage(
      `${what} must be epoch milliseconds or an ISO date, got '${text}'`,
    );
  }
  return ms;
}

function list(text: string | undefined): string[] | undefined {
  return text?.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

function mode(parsed: Parsed): "merge" | "replace" | undefined {
  const value = option(parsed, "mode");
  if (value === undefined || value === "merge" || value === "replace") {
    return value;
  }
  throw usage(`--mode must be 'merge' or 'replace', got '${value}'`);
}

// ---------------------------------------------------------------------------
// Opening the database

interface Context {
  readonly parsed: Parsed;
  readonly stdin: () => ReadableStream<Uint8Array>;
  readonly out: Out;
  readonly err: Out;
  readonly stdinIsTerminal: boolean;
  readonly stderrIsTerminal: boolean;
  readonly columns: number | undefined;
  readonly env: (name: string) => string | undefined;
  readonly prompt: (message: string) => Promise<string | null>;
  /** The passphrase that opened the database, once one did. */
  readonly secret: { passphrase?: string | undefined };
}

/** What the database options name. */
interface Target {
  readonly kind: "file" | "kv";
  /** The path, KV path, `:memory:` or URL. */
  readonly location: string;
  readonly prefix: string[] | undefined;
  /** A local file that must exist unless the command creates one. */
  readonly file: string | undefined;
}

function target(parsed: Parsed): Target {
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

interface OpenMode {
  /** Reads only: a file database is opened without its lock. */
  readonly readOnly: boolean;
  /** A missing database is created (import, restore). */
  readonly create: boolean;
}

/** Exit 66 when the database file is missing. */
async function mustExist(where: Target): Promise<void> {
  if (where.file === undefined) return;
  try {
    await Deno.stat(where.file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CliError(
        ExitCode.NoInput,
        `cannot open '${where.file}': no such file (only import and restore create a database)`,
      );
    }
    throw e;
  }
}

async function openDatabase(
  ctx: Context,
  where: Target,
  how: OpenMode,
): Promise<Database> {
  if (!how.create) await mustExist(where);
  const lockTimeout = count(ctx.parsed, "lock-timeout");
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
  return await withPassphrase(ctx, where, async (passphrase) => {
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
  });
}

/**
 * Runs `use` with the database's passphrase: the one that worked before,
 * else the environment's (or none); when that is refused as missing, a
 * terminal is asked (three tries). A passphrase that passes the key check
 * is kept for the next call, even when `use` then fails otherwise.
 */
async function withPassphrase<R>(
  ctx: Context,
  where: Target,
  use: (passphrase: string | undefined) => Promise<R>,
): Promise<R> {
  const variable = option(ctx.parsed, "passphrase-env") ?? "TETHER_PASSPHRASE";
  const passphrase = ctx.secret.passphrase ?? (ctx.env(variable) || undefined);
  const attempt = async (passphrase: string | undefined) => {
    try {
      const result = await use(passphrase);
      ctx.secret.passphrase = passphrase;
      return result;
    } catch (e) {
      if (!(e instanceof WrongKeyError)) ctx.secret.passphrase = passphrase;
      throw e;
    }
  };
  try {
    return await attempt(passphrase);
  } catch (e) {
    // Without a secret, a WrongKeyError means the database is encrypted.
    if (!(e instanceof WrongKeyError) || passphrase !== undefined) throw e;
    if (!ctx.stdinIsTerminal) {
      throw new CliError(
        ExitCode.WrongKey,
        `the database '${where.location}' is encrypted: set ${variable} to its passphrase`,
      );
    }
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
 */
async function withDatabase<R>(
  ctx: Context,
  how: OpenMode,
  fn: (db: Database, where: Target) => Promise<R>,
): Promise<R> {
  const where = target(ctx.parsed);
  const created = how.create && where.kind === "file" &&
    !(await exists(where.location));
  const db = await openDatabase(ctx, where, how);
  try {
    return await fn(db, where);
  } catch (e) {
    if (created) await Deno.remove(where.location).catch(() => {});
    throw e;
  } finally {
    await db.close();
  }
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

const READ: OpenMode = { readOnly: true, create: false };
const WRITE: OpenMode = { readOnly: false, create: false };
const CREATE: OpenMode = { readOnly: false, create: true };

function collectionOf(db: Database, name: string): Collection<unknown> {
  return asUsage(() => db.collection(name));
}

function collectionsOption(
  db: Database,
  parsed: Parsed,
): string[] | undefined {
  const names = list(option(parsed, "collections"));
  if (names === undefined) return undefined;
  if (names.length === 0) throw usage("--collections needs a name");
  for (const name of names) collectionOf(db, name);
  return names;
}

function backupSecret(
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

// ---------------------------------------------------------------------------
// Commands

interface Command {
  /** `<command> ...` in the usage line. */
  readonly synopsis: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The command's help, after its usage line. */
  readonly help: string;
  /** Its own options. */
  readonly options: Record<string, OptionKind>;
  /** How many positionals: at least, at most. */
  readonly arity: readonly [number, number];
  run(ctx: Context): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  info: {
    synopsis: "info [--json]",
    summary: "storage, collections, counts, indexes, sizes, encryption",
    help: `Shows the storage, whether values are encrypted and compressed, each
collection with its document count and indexes, and the database's sizes:
for a file database the log's size, its live data and the garbage ratio
(what compaction would drop). On Deno KV, sizes are not shown: stats()
covers only what this process wrote.

Options:
  --json    the same as one JSON object`,
    options: { json: "flag" },
    arity: [0, 0],
    run: info,
  },
  get: {
    synopsis: "get <collection> <key>",
    summary: "print a document as JSON (exit 1 when absent)",
    help: `Prints the document stored under <key> in <collection> as JSON. Items
put on the database itself are in the collection 'default'. Exits with 1
when there is no such document (or it has expired).`,
    options: {},
    arity: [2, 2],
    run: get,
  },
  find: {
    synopsis: "find <collection> [filter] [--sort JSON] [--limit N] [--json]",
    summary: "list documents matching a filter (table, or JSON lines)",
    help: `Lists the documents of <collection> matching [filter], a Mongo-style
query as JSON (default: every document), e.g. '{"age":{"$gt":25}}'.
The table has a column per top-level field (of the first 1,000 documents),
values cut to fit; --json prints each document as one line of JSON.

Options:
  --sort JSON   order, e.g. '{"age":-1,"name":1}'
  --limit N     at most N documents
  --skip N      skip the first N matches
  --json        JSON lines instead of a table`,
    options: { sort: "value", limit: "value", skip: "value", json: "flag" },
    arity: [1, 2],
    run: find,
  },
  export: {
    synopsis: "export <file|-> [--collections a,b]",
    summary: "write every document as NDJSON (- for stdout)",
    help:
      `Writes every live document as NDJSON, one line each with its collection,
key, value, times, version, tags and expiry, to <file> (written beside and
renamed into place once complete) or to stdout (-).

Options:
  --collections a,b   only these collections`,
    options: { collections: "value" },
    arity: [1, 1],
    run: exportCommand,
  },
  import: {
    synopsis: "import <file|-> [--mode merge|replace]",
    summary: "store the documents of NDJSON (- for stdin)",
    help:
      `Stores the documents of NDJSON (as export writes it) from <file> or stdin
(-), with their keys, metadata and TTLs. Every line is checked first: a
malformed one changes nothing (exit 65). Creates the database if missing
(encrypted when a passphrase is set).

Options:
  --mode merge     overwrite documents with the same keys, keep others (default)
  --mode replace   empty each collection in the input first`,
    options: { mode: "value" },
    arity: [1, 1],
    run: importCommand,
  },
  backup: {
    synopsis:
      "backup <file|-> [--since TIME] [--collections a,b] [--backup-passphrase-env NAME]",
    summary: "write a compressed, checksummed (encrypted) backup",
    help:
      `Writes a point-in-time backup of every live document: compressed, with a
SHA-256 checksum, encrypted when the database is (under its own secret) or
under a passphrase of its own. <file> is written beside and renamed into
place once complete; - writes to stdout.

Options:
  --since TIME                  incremental: only the documents written and
                                deleted since TIME (epoch ms or an ISO date,
                                e.g. 2026-01-31T12:00:00Z); refused when
                                older than the last purge of tombstones
                                (tombstoneRetention, default 7 days)
  --collections a,b             only these collections
  --backup-passphrase-env NAME  encrypt the backup under the passphrase in the
                                environment variable NAME`,
    options: {
      since: "value",
      collections: "value",
      "backup-passphrase-env": "value",
    },
    arity: [1, 1],
    run: backup,
  },
  restore: {
    synopsis:
      "restore <file|-> [--mode replace|merge] [--backup-passphrase-env NAME]",
    summary: "restore a backup, verified before anything changes",
    help:
      `Restores a backup from <file> or stdin (-). All of it is verified first
(format, checksum, MACs, every document): a damaged, truncated or foreign
backup changes nothing (exit 65). Creates the database if missing
(encrypted when a passphrase is set).

Options:
  --mode replace                the database becomes the backup (default for
                                a full backup)
  --mode merge                  overwrite documents with the same keys only
                                (the only mode of an incremental backup: its
                                deletions delete)
  --backup-passphrase-env NAME  the backup's passphrase, when it is not the
                                database's`,
    options: { mode: "value", "backup-passphrase-env": "value" },
    arity: [1, 1],
    run: restore,
  },
  verify: {
    synopsis: "verify [--json]",
    summary: "check every stored value (exit 2 on problems)",
    help: `Reads everything stored and reports each value failing its MAC or
checksum, each record that does not decode and each index entry without
its document. Exits with 0 when all is well, 2 when there are problems.
A file database too damaged to open exits with 65, after the report of
what 'repair' would lose (its "error" says why it does not open).

Options:
  --json    the report as JSON: { "checked": n, "problems": [...] }`,
    options: { json: "flag" },
    arity: [0, 0],
    run: verify,
  },
  compact: {
    synopsis: "compact",
    summary: "drop expired items and rewrite the file log",
    help:
      `Removes expired items, then rewrites a file database's log with only its
live data (Deno KV has nothing to rewrite).`,
    options: {},
    arity: [0, 0],
    run: compact,
  },
  repair: {
    synopsis: "repair --out <new> [--json]",
    summary: "copy every intact record of a damaged database into a new one",
    help:
      `Reads a damaged file database (without its lock, never changing it) and
copies every record that still checks out, with its metadata, into a new
database at <new> (same passphrase; written beside and renamed into place
once complete). Index definitions are carried over and rebuilt. Lists
each lost document (collection and key), index and damaged byte range.
Exits with 0 when nothing was lost, 2 when something was.

Options:
  --out <new>   the new database's path (must not exist)
  --json        the report as JSON: { "copied": n, "lost": [...], ... }`,
    options: { out: "value", json: "flag" },
    arity: [0, 0],
    run: repairCommand,
  },
};

const RUN = "deno run -A --unstable-kv jsr:@tether/db/cli";

const EXIT_CODES = `Exit codes:
  0   success
  1   not found (get of an absent key), or the command failed as asked
  2   verify found problems; repair lost something (listed)
  64  usage error: unknown command or option, bad argument, bad JSON
  65  data error: damaged database or backup, malformed NDJSON
  66  cannot open: missing or unreadable database or input file
  70  internal error
  75  the database file is locked by another writer
  77  wrong or missing passphrase`;

const DATABASE_OPTIONS = `Database options (every command):
  --db <path>               a file database
  --kv <path|:memory:|url>  a Deno KV database (a SQLite file, or a KV Connect
                            URL with DENO_KV_ACCESS_TOKEN set)
  --prefix a,b              with --kv: the key prefix (default: tether)
  --passphrase-env NAME     the environment variable holding the passphrase of
                            an encrypted database (default: TETHER_PASSPHRASE);
                            when it is unset, a terminal is asked
  --lock-timeout MS         file: how long to wait for another writer's lock
                            (default 5000; info, get, find, export, backup,
                            verify and repair read without taking it)
  -h, --help                help`;

function mainHelp(): string {
  const width = Math.max(
    ...Object.entries(COMMANDS).map(([name]) => name.length),
  );
  const lines = Object.entries(COMMANDS).map(([name, c]) =>
    `  ${name.padEnd(width)}  ${c.summary}`
  );
  return `tether: the command-line tool of @tether/db

Usage: ${RUN} <command> [options]

Commands:
${lines.join("\n")}
  ${"help".padEnd(width)}  this text, or 'help <command>'

${DATABASE_OPTIONS}

${EXIT_CODES}

Errors are one line on stderr: 'tether: <message>'. Progress is shown on
stderr when it is a terminal. Run '<command> --help' for a command's options.
`;
}

function commandHelp(command: Command): string {
  return `Usage: ${RUN} ${command.synopsis} [database options]

${command.help}

${DATABASE_OPTIONS}

${EXIT_CODES}
`;
}

async function info(ctx: Context): Promise<number> {
  return await withDatabase(ctx, READ, async (db, where) => {
    const stats = db.stats();
    const storageStats = stats.storageStats ?? {};
    const encrypted = storageStats.encrypted === true;
    const compression = typeof storageStats.compression === "number"
      ? { minBytes: storageStats.compression }
      : false;
    const collections = [];
    let documents = 0;
    for (const name of await db.collections()) {
      const collection = db.collection(name);
      const n = await collection.count();
      documents += n;
      collections.push({
        name,
        count: n,
        indexes: await collection.indexes(),
      });
    }
    const fileBytes = storageStats.fileBytes;
    const liveBytes = storageStats.liveBytes;
    const tornBytes = storageStats.tornBytes;
    const garbageRatio =
      typeof fileBytes === "number" && typeof liveBytes === "number" &&
        fileBytes > 0
        ? Math.max(0, (fileBytes - liveBytes) / fileBytes)
        : undefined;
    if (ctx.parsed.options.has("json")) {
      const report = {
        storage: where.kind,
        ...(where.kind === "file"
          ? { path: where.location }
          : { kv: where.location, prefix: where.prefix ?? ["tether"] }),
        encrypted,
        compression,
        documents,
        collections,
        stats: {
          storage: stats.storage,
          items: stats.items,
          ttlItems: stats.ttlItems,
          bytes: stats.bytes,
          storageStats,
        },
        ...(garbageRatio === undefined ? {} : { garbageRatio }),
        ...(typeof tornBytes === "number" ? { tornBytes } : {}),
      };
      await ctx.out.write(`${JSON.stringify(report, null, 2)}\n`);
      return ExitCode.Ok;
    }
    const rows: [string, string][] = [
      [
        "storage",
        where.kind === "file"
          ? `file ${where.location}`
          : `Deno KV ${where.location}, prefix ${
            (where.prefix ?? ["tether"]).join(",")
          }`,
      ],
      ["encrypted", encrypted ? "yes" : "no"],
      [
        "compressed",
        compression === false
          ? "no"
          : `yes (values of ${compression.minBytes} bytes or more)`,
      ],
      [
        "documents",
        `${documents} in ${plural(collections.length, "collection")}${
          where.kind === "file" ? `, ${stats.ttlItems} with a TTL` : ""
        }`,
      ],
    ];
    if (where.kind === "file") {
      rows.push(["data", `${formatBytes(stats.bytes)} (keys and records)`]);
    }
    if (typeof tornBytes === "number" && tornBytes > 0) {
      rows.push([
        "torn tail",
        `${
          formatBytes(tornBytes)
        } of an unfinished last commit (a write cut short, never acknowledged) left out`,
      ]);
    }
    if (typeof fileBytes === "number" && typeof liveBytes === "number") {
      rows.push([
        "file",
        `${formatBytes(fileBytes)}, ${formatBytes(liveBytes)} live, garbage ${
          Math.round((garbageRatio ?? 0) * 100)
        }%`,
      ]);
    }
    let text = rows.map(([k, v]) => `${k.padEnd(11)} ${v}\n`).join("");
    if (collections.length > 0) {
      text += "\n" + layout(
        ["collection", "documents", "indexes"],
        collections.map((c) => [
          c.name,
          String(c.count),
          c.indexes.length === 0 ? "-" : c.indexes.map((i) =>
            `${i.name} (${
              [
                i.fields.join(", "),
                ...(i.unique ? ["unique"] : []),
                ...(i.sparse ? ["sparse"] : []),
                ...(i.multikey ? ["multikey"] : []),
              ].join("; ")
            })`
          ).join(", "),
        ]),
        [false, true, false],
      );
    }
    await ctx.out.write(text);
    return ExitCode.Ok;
  });
}

/** Aligned columns, the last one not padded. */
function layout(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  right: readonly boolean[],
): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i]!.length))
  );
  const line = (cells: readonly string[]) =>
    cells.map((c, i) =>
      i === cells.length - 1 && !right[i]
        ? c
        : right[i]
        ? c.padStart(widths[i]!)
        : c.padEnd(widths[i]!)
    ).join("  ").trimEnd() + "\n";
  return line(header) + rows.map(line).join("");
}

async function get(ctx: Context): Promise<number> {
  const [name, key] = ctx.parsed.positionals as [string, string];
  return await withDatabase(ctx, READ, async (db) => {
    const collection = collectionOf(db, name);
    const entry = await collection.getEntry(key).catch((e) => {
      if (e instanceof TypeError || e instanceof RangeError) {
        throw usage(e.message);
      }
      throw e;
    });
    if (entry === null) {
      await ctx.err.write(`tether: no document '${key}' in '${name}'\n`);
      return ExitCode.Failed;
    }
    await ctx.out.write(`${JSON.stringify(entry.value, null, 2)}\n`);
    return ExitCode.Ok;
  });
}

/** Rows kept to choose the table's columns and widths. */
const TABLE_SAMPLE = 1000;
/** Widest column of the table. */
const CELL_WIDTH = 40;
/** Narrowest a column is squeezed to, to fit the terminal. */
const MIN_WIDTH = 6;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null &&
    !Array.isArray(value) && !(value instanceof Date);
}

function cell(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "string") return value.replace(/[\r\n\t]+/g, " ");
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object" && value !== null) {
    return JSON.stringify(value);
  }
  return String(value);
}

function fit(text: string, width: number): string {
  const chars = Array.from(text);
  if (chars.length <= width) return text;
  return chars.slice(0, Math.max(0, width - 1)).join("") + "…";
}

function length(text: string): number {
  return Array.from(text).length;
}

class Table {
  readonly #columns: string[];
  readonly #widths: number[];
  readonly #right: boolean[];

  constructor(
    sample: readonly { key: string; value: unknown }[],
    columns: number | undefined,
  ) {
    const fields = new Set<string>();
    let scalar = false;
    for (const { value } of sample) {
      if (isPlainObject(value)) {
        for (const f of Object.keys(value)) if (f !== "_id") fields.add(f);
      } else scalar = true;
    }
    this.#columns = ["_id", ...fields, ...(scalar ? ["(value)"] : [])];
    const cells = sample.map((r) => this.#cells(r));
    this.#widths = this.#columns.map((c, i) =>
      Math.min(
        CELL_WIDTH,
        Math.max(length(c), ...cells.map((row) => length(row[i]!))),
      )
    );
    this.#right = this.#columns.map((_, i) =>
      i > 0 && cells.length > 0 &&
      sample.every((r) => {
        const v = this.#raw(r, i);
        return typeof v === "number" || v === undefined;
      })
    );
    if (columns !== undefined) {
      // Squeeze the widest columns until the table fits the terminal.
      const total = () =>
        this.#widths.reduce((a, b) => a + b, 0) + 2 * (this.#widths.length - 1);
      while (total() > columns) {
        const widest = this.#widths.indexOf(Math.max(...this.#widths));
        if (this.#widths[widest]! <= MIN_WIDTH) break;
        this.#widths[widest]!--;
      }
    }
  }

  #raw(row: { key: string; value: unknown }, i: number): unknown {
    const column = this.#columns[i]!;
    if (i === 0) return row.key;
    if (column === "(value)") {
      return isPlainObject(row.value) ? undefined : row.value;
    }
    return isPlainObject(row.value) ? row.value[column] : undefined;
  }

  #cells(row: { key: string; value: unknown }): string[] {
    return this.#columns.map((_, i) => cell(this.#raw(row, i)));
  }

  /** One line; numbers are never cut (past the sample they may overflow). */
  #line(cells: readonly string[], whole: readonly boolean[] = []): string {
    return cells.map((c, i) => {
      const text = whole[i] ? c : fit(c, this.#widths[i]!);
      const pad = " ".repeat(Math.max(0, this.#widths[i]! - length(text)));
      return this.#right[i] ? pad + text : text + pad;
    }).join("  ").trimEnd() + "\n";
  }

  header(): string {
    return this.#line(this.#columns) +
      this.#widths.map((w) => "-".repeat(w)).join("  ") + "\n";
  }

  row(row: { key: string; value: unknown }): string {
    return this.#line(
      this.#cells(row),
      this.#columns.map((_, i) => typeof this.#raw(row, i) === "number"),
    );
  }
}

async function find(ctx: Context): Promise<number> {
  const [name, filterText] = ctx.parsed.positionals as [string, string?];
  const filter = filterText === undefined ? {} : json(filterText, "the filter");
  const sortText = option(ctx.parsed, "sort");
  const sort = sortText === undefined ? undefined : json(sortText, "--sort");
  const limit = count(ctx.parsed, "limit");
  const skip = count(ctx.parsed, "skip");
  return await withDatabase(ctx, READ, async (db) => {
    const collection = collectionOf(db, name);
    const cursor = asUsage(() =>
      collection.find(filter, {
        ...(sort === undefined ? {} : { sort: sort as { [k: string]: 1 } }),
        ...(limit === undefined ? {} : { limit }),
        ...(skip === undefined ? {} : { skip }),
      })
    );
    const out = new Buffered(ctx.out);
    if (ctx.parsed.options.has("json")) {
      for await (const doc of cursor) {
        await out.write(`${JSON.stringify(doc)}\n`);
      }
      await out.flush();
      return ExitCode.Ok;
    }
    const sample: { key: string; value: unknown }[] = [];
    let table: Table | undefined;
    let n = 0;
    for await (const { key, value } of cursor.entries()) {
      n++;
      if (table === undefined) {
        sample.push({ key, value });
        if (sample.length < TABLE_SAMPLE) continue;
        table = new Table(sample, ctx.columns);
        await out.write(table.header());
        for (const row of sample) await out.write(table.row(row));
      } else {
        await out.write(table.row({ key, value }));
      }
    }
    if (table === undefined && sample.length > 0) {
      table = new Table(sample, ctx.columns);
      await out.write(table.header());
      for (const row of sample) await out.write(table.row(row));
    }
    await out.write(`(${plural(n, "document")})\n`);
    await out.flush();
    return ExitCode.Ok;
  });
}

/**
 * Runs `write` with a stream to `<file>` (beside it, then renamed) or to
 * stdout (`-`), with progress.
 */
async function toOutput<R>(
  ctx: Context,
  file: string,
  label: string,
  write: (stream: WritableStream<Uint8Array>) => Promise<R>,
): Promise<R> {
  if (file === "-") {
    const counter = counting();
    const piping = counter.stream.readable.pipeTo(ctx.out.stream, {
      preventClose: true,
    });
    const progress = new Progress(
      ctx.err,
      ctx.stderrIsTerminal,
      label,
      counter.bytes,
    );
    try {
      const result = await write(counter.stream.writable);
      await piping;
      return result;
    } catch (e) {
      await piping.catch(() => {});
      throw e;
    } finally {
      await progress.stop();
    }
  }
  const sink = await fileSink(file);
  const progress = new Progress(
    ctx.err,
    ctx.stderrIsTerminal,
    label,
    sink.bytes,
  );
  try {
    const result = await write(sink.writable);
    await sink.commit();
    return result;
  } catch (e) {
    await sink.discard();
    throw e;
  } finally {
    await progress.stop();
  }
}

/** The size of an input file; exit 66 when it is missing. */
async function inputSize(file: string): Promise<number> {
  try {
    const stat = await Deno.stat(file);
    if (!stat.isFile) {
      throw new CliError(ExitCode.NoInput, `cannot read '${file}': not a file`);
    }
    return stat.size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CliError(
        ExitCode.NoInput,
        `cannot open '${file}': no such file`,
      );
    }
    throw e;
  }
}

/** Runs `read` on `<file>` (as a path) or on stdin (`-`), with progress. */
async function fromInput<R>(
  ctx: Context,
  file: string,
  label: string,
  read: (source: string | ReadableStream<Uint8Array>) => Promise<R>,
): Promise<R> {
  if (file === "-") {
    const counter = counting();
    const progress = new Progress(
      ctx.err,
      ctx.stderrIsTerminal,
      label,
      counter.bytes,
    );
    try {
      return await read(ctx.stdin().pipeThrough(counter.stream));
    } finally {
      await progress.stop();
    }
  }
  const size = await inputSize(file);
  const progress = new Progress(
    ctx.err,
    ctx.stderrIsTerminal,
    `${label} (${formatBytes(size)})`,
  );
  try {
    return await read(file);
  } finally {
    await progress.stop();
  }
}

/** Where a summary goes: stderr when stdout carries the data. */
function report(ctx: Context, file: string): Out {
  return file === "-" ? ctx.err : ctx.out;
}

async function exportCommand(ctx: Context): Promise<number> {
  const [file] = ctx.parsed.positionals as [string];
  return await withDatabase(ctx, READ, async (db) => {
    const collections = collectionsOption(db, ctx.parsed);
    const result = await toOutput(
      ctx,
      file,
      "exporting",
      (stream) =>
        db.export(stream, collections === undefined ? {} : { collections }),
    );
    await report(ctx, file).write(
      `exported ${plural(result.documents, "document")}${
        file === "-" ? "" : ` to ${file}`
      }\n`,
    );
    return ExitCode.Ok;
  });
}

async function importCommand(ctx: Context): Promise<number> {
  const [file] = ctx.parsed.positionals as [string];
  const how = mode(ctx.parsed);
  if (file !== "-") await inputSize(file); // before creating the database
  return await withDatabase(ctx, CREATE, async (db) => {
    const result = await fromInput(ctx, file, "importing", async (source) => {
      try {
        return await db.import(source, how === undefined ? {} : { mode: how });
      } catch (e) {
        // A malformed line: bad data, nothing stored.
        if (e instanceof TypeError) {
          throw new CliError(ExitCode.Data, e.message);
        }
        throw e;
      }
    });
    await ctx.out.write(
      `imported ${plural(result.documents, "document")}${
        result.expired > 0 ? ` (${result.expired} expired, skipped)` : ""
      }\n`,
    );
    return ExitCode.Ok;
  });
}

async function backup(ctx: Context): Promise<number> {
  const [file] = ctx.parsed.positionals as [string];
  const encryption = backupSecret(ctx);
  const since = time(option(ctx.parsed, "since"), "--since");
  return await withDatabase(ctx, READ, async (db) => {
    const collections = collectionsOption(db, ctx.parsed);
    const result = await toOutput(
      ctx,
      file,
      "backing up",
      (stream) =>
        db.backup(stream, {
          ...(since === undefined ? {} : { since }),
          ...(collections === undefined ? {} : { collections }),
          ...(encryption === undefined ? {} : { encryption }),
        }),
    );
    const encrypted = encryption !== undefined ||
      db.stats().storageStats?.encrypted === true;
    const what = since === undefined
      ? plural(result.documents, "document")
      : `${plural(result.documents + result.deleted, "change")} since ${
        new Date(since).toISOString()
      }`;
    await report(ctx, file).write(
      `backed up ${what} (${formatBytes(result.bytes)}${
        encrypted ? ", encrypted" : ""
      })${file === "-" ? "" : ` to ${file}`}\n`,
    );
    return ExitCode.Ok;
  });
}

async function restore(ctx: Context): Promise<number> {
  const [file] = ctx.parsed.positionals as [string];
  const how = mode(ctx.parsed);
  const encryption = backupSecret(ctx);
  if (file !== "-") await inputSize(file); // before creating the database
  return await withDatabase(ctx, CREATE, async (db) => {
    const result = await fromInput(
      ctx,
      file,
      "restoring",
      async (source) => {
        try {
          return await db.restore(source, {
            ...(how === undefined ? {} : { mode: how }),
            ...(encryption === undefined ? {} : { encryption }),
          });
        } catch (e) {
          if (e instanceof WrongKeyError && encryption === undefined) {
            throw new CliError(
              ExitCode.WrongKey,
              "Cannot restore: the backup is encrypted and the database's secret does not open it; give its passphrase with --backup-passphrase-env NAME",
            );
          }
          throw e;
        }
      },
    );
    await ctx.out.write(
      `restored ${plural(result.documents, "document")}${
        result.deleted > 0
          ? `, ${plural(result.deleted, "deletion")} applied`
          : ""
      }${
        result.expired > 0
          ? ` (${result.expired} expired since the backup, skipped)`
          : ""
      }\n`,
    );
    return ExitCode.Ok;
  });
}

async function verify(ctx: Context): Promise<number> {
  try {
    return await verifyOpen(ctx);
  } catch (e) {
    const where = target(ctx.parsed);
    if (!(e instanceof IntegrityError) || where.kind !== "file") throw e;
    return await verifyDamaged(ctx, where, e);
  }
}

/**
 * `verify` of a file database that does not open: the report of what a
 * repair would lose, then exit 65.
 */
/**
 * Runs `repair()` on the file database at `where` (with the passphrase the
 * CLI gets, if it is encrypted), into `out`, or only reporting without it.
 */
function repairWith(
  ctx: Context,
  where: Target,
  out?: string,
): Promise<RepairReport> {
  return withPassphrase(ctx, where, (passphrase) => {
    const source = passphrase === undefined
      ? { path: where.location }
      : { path: where.location, encryption: { passphrase } };
    return out === undefined ? repair(source) : repair(source, { path: out });
  });
}

async function verifyDamaged(
  ctx: Context,
  where: Target,
  error: IntegrityError,
): Promise<number> {
  let report: RepairReport | undefined;
  try {
    report = await repairWith(ctx, where);
  } catch (e) {
    if (!(e instanceof IntegrityError)) throw e;
  }
  const problems = (report?.lost ?? []).map((l) => ({
    collection: l.collection ?? "",
    key: l.key ?? "",
    problem: l.reason,
    ...(l.index === undefined ? {} : { index: l.index }),
    ...(l.offset === undefined ? {} : { offset: l.offset, bytes: l.bytes }),
  }));
  if (ctx.parsed.options.has("json")) {
    await ctx.out.write(`${
      JSON.stringify({
        checked: report?.checked ?? 0,
        problems,
        opens: false,
        error: error.message,
        ...(report === undefined ? {} : {
          damagedRanges: report.damagedRanges,
          tornBytes: report.tornBytes,
        }),
      })
    }\n`);
  } else {
    let text = `cannot open: ${oneLine(error.message)}\n`;
    if (report !== undefined) {
      text +=
        `checked ${plural(report.checked, "stored value")}: ${
          plural(problems.length, "problem")
        }\n` + lostLines(report) +
        `to copy what is intact into a new database: repair --db ${where.location} --out <new>\n`;
    }
    await ctx.out.write(text);
  }
  throw new CliError(ExitCode.Data, error.message);
}

/** One line per loss of a repair report. */
function lostLines(report: RepairReport): string {
  return report.lost.map((l) =>
    `  ${
      l.offset !== undefined
        ? `bytes ${l.offset} to ${l.offset + (l.bytes ?? 0)}`
        : l.key !== undefined
        ? `'${l.key}' in '${l.collection}'`
        : l.index !== undefined
        ? `index '${l.index}' of '${l.collection}'`
        : "a record"
    }: ${oneLine(l.reason)}\n`
  ).join("");
}

async function repairCommand(ctx: Context): Promise<number> {
  const where = target(ctx.parsed);
  if (where.kind !== "file") {
    throw usage("repair reads a file database: give --db <path>");
  }
  const out = option(ctx.parsed, "out");
  if (out === undefined || out === "") {
    throw usage("give the new database's path: --out <path>");
  }
  await mustExist(where);
  if (await exists(out)) {
    throw usage(`--out '${out}' already exists; give the path of a new file`);
  }
  const progress = new Progress(ctx.err, ctx.stderrIsTerminal, "repairing");
  let report: RepairReport;
  try {
    report = await repairWith(ctx, where, out);
  } finally {
    await progress.stop();
  }
  if (ctx.parsed.options.has("json")) {
    await ctx.out.write(`${JSON.stringify(report)}\n`);
  } else {
    let text = `repaired ${where.location} into ${out}: copied ${
      plural(report.copied, "document")
    } and ${plural(report.indexes, "index definition")}${
      report.expired > 0 ? ` (${report.expired} expired, left out)` : ""
    }\n`;
    if (report.tornBytes > 0) {
      text += `left out ${
        formatBytes(report.tornBytes)
      } of an unfinished last commit (a write cut short, never acknowledged)\n`;
    }
    text += report.lost.length === 0
      ? "nothing lost\n"
      : `lost ${report.lost.length}:\n${lostLines(report)}`;
    await ctx.out.write(text);
  }
  return report.lost.length === 0 ? ExitCode.Ok : ExitCode.Problems;
}

async function verifyOpen(ctx: Context): Promise<number> {
  return await withDatabase(ctx, READ, async (db) => {
    const progress = new Progress(ctx.err, ctx.stderrIsTerminal, "verifying");
    let result;
    try {
      result = await db.verify();
    } finally {
      await progress.stop();
    }
    const { checked, problems } = result;
    const torn = db.stats().storageStats?.tornBytes;
    const tornBytes = typeof torn === "number" && torn > 0 ? torn : undefined;
    if (ctx.parsed.options.has("json")) {
      await ctx.out.write(
        `${
          JSON.stringify({
            checked,
            problems,
            ...(tornBytes === undefined ? {} : { tornBytes }),
          })
        }\n`,
      );
    } else {
      let text = `checked ${plural(checked, "stored value")}: ${
        problems.length === 0
          ? "no problems"
          : plural(problems.length, "problem")
      }\n`;
      if (problems.length > 0) {
        text += layout(
          ["collection", "key", "problem"],
          problems.map((p) => [p.collection, p.key, oneLine(p.problem)]),
          [false, false, false],
        );
      }
      if (tornBytes !== undefined) {
        text += `torn tail: ${
          formatBytes(tornBytes)
        } of an unfinished last commit (never acknowledged) left out\n`;
      }
      await ctx.out.write(text);
    }
    return problems.length === 0 ? ExitCode.Ok : ExitCode.Problems;
  });
}

async function compact(ctx: Context): Promise<number> {
  return await withDatabase(ctx, WRITE, async (db, where) => {
    const size = () => db.stats().storageStats?.fileBytes;
    const before = size();
    const rewrote = await db.compact();
    const after = size();
    await ctx.out.write(
      rewrote && typeof before === "number" && typeof after === "number"
        ? `compacted ${where.location}: ${formatBytes(before)} -> ${
          formatBytes(after)
        }\n`
        : `nothing to compact in ${where.location} (expired items removed)\n`,
    );
    return ExitCode.Ok;
  });
}

// ---------------------------------------------------------------------------
// Entry

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** The exit code of an error thrown by a command. */
function exitCode(e: unknown): number {
  if (e instanceof CliError) return e.code;
  if (e instanceof WrongKeyError) return ExitCode.WrongKey;
  if (e instanceof LockedError) return ExitCode.Locked;
  if (e instanceof IntegrityError) return ExitCode.Data;
  if (
    e instanceof Deno.errors.NotFound ||
    e instanceof Deno.errors.PermissionDenied ||
    e instanceof Deno.errors.NotCapable ||
    e instanceof Deno.errors.IsADirectory
  ) {
    return ExitCode.NoInput;
  }
  if (e instanceof TypeError || e instanceof RangeError) {
    return ExitCode.Failed;
  }
  return ExitCode.Internal;
}

/**
 * Where the command is among the arguments: the first one that is neither
 * an option nor the value of one of the options every command takes (which
 * may come before it).
 */
function commandIndex(args: readonly string[]): number {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") return i + 1 < args.length ? i + 1 : -1;
    if (!arg.startsWith("-") || arg === "-") return i;
    const name = arg.slice(2);
    if (arg.startsWith("--") && COMMON[name] === "value") i++;
  }
  return -1;
}

/** An environment variable; unset when the permission to read it is not given. */
function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) return undefined;
    throw e;
  }
}

function isTerminal(
  given: unknown,
  flag: boolean | undefined,
  real: { isTerminal(): boolean },
): boolean {
  if (flag !== undefined) return flag;
  if (given !== undefined) return false;
  try {
    return real.isTerminal();
  } catch {
    return false;
  }
}

/**
 * Runs the command-line tool on `args` (without the program name) and
 * returns its exit code (see {@linkcode ExitCode}); it never exits the
 * process itself. Errors are printed to stderr as one line,
 * `tether: <message>`.
 *
 * @param args The arguments, e.g. `["info", "--db", "app.tdb", "--json"]`.
 * @param io Where to read and write instead of the process's own streams.
 * @returns The exit code.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { main } from "./cli.ts";
 * let text = "";
 * const stdout = new WritableStream<Uint8Array>({
 *   write: (chunk) => void (text += new TextDecoder().decode(chunk)),
 * });
 * assert.equal(await main(["--help"], { stdout }), 0);
 * assert.match(text, /backup/);
 * ```
 */
export async function main(
  args: readonly string[],
  io: CliIO = {},
): Promise<number> {
  const stdout = new Out(io.stdout ?? Deno.stdout.writable);
  const err = new Out(io.stderr ?? Deno.stderr.writable);
  let columns = io.columns;
  if (columns === undefined && io.stdout === undefined) {
    try {
      if (Deno.stdout.isTerminal()) columns = Deno.consoleSize().columns;
    } catch {
      // Not a terminal after all.
    }
  }
  const stdinIsTerminal = isTerminal(
    io.stdin,
    io.stdinIsTerminal,
    Deno.stdin,
  );
  const ctx = (parsed: Parsed): Context => ({
    parsed,
    stdin: () => io.stdin ?? Deno.stdin.readable,
    out: stdout,
    err,
    stdinIsTerminal,
    stderrIsTerminal: isTerminal(io.stderr, io.stderrIsTerminal, Deno.stderr),
    columns,
    env: io.env ?? readEnv,
    prompt: io.prompt ??
      (io.stdin === undefined ? promptTerminal : () => Promise.resolve(null)),
    secret: {},
  });
  try {
    const at = commandIndex(args);
    const name = at < 0 ? undefined : args[at]!;
    if (name === undefined) {
      const parsed = parse(args, COMMON, "");
      if (parsed.options.has("help")) {
        await stdout.write(mainHelp());
        return ExitCode.Ok;
      }
      throw usage(
        `give a command: ${Object.keys(COMMANDS).join(", ")} (see --help)`,
      );
    }
    if (name === "help") {
      const topic = args.slice(at + 1).find((a) => !a.startsWith("-"));
      if (topic === undefined) {
        await stdout.write(mainHelp());
        return ExitCode.Ok;
      }
      const command = Object.hasOwn(COMMANDS, topic)
        ? COMMANDS[topic]
        : undefined;
      if (command === undefined) {
        throw usage(`unknown command '${topic}' (see --help)`);
      }
      await stdout.write(commandHelp(command));
      return ExitCode.Ok;
    }
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (command === undefined) {
      throw usage(`unknown command '${name}' (see --help)`);
    }
    const rest = [...args.slice(0, at), ...args.slice(at + 1)];
    const parsed = parse(rest, { ...COMMON, ...command.options }, name);
    if (parsed.options.has("help")) {
      await stdout.write(commandHelp(command));
      return ExitCode.Ok;
    }
    const [min, max] = command.arity;
    const n = parsed.positionals.length;
    if (n < min || n > max) {
      throw usage(
        `${
          n < min ? "missing arguments" : "too many arguments"
        }: ${RUN} ${command.synopsis}`,
      );
    }
    return await command.run(ctx(parsed));
  } catch (e) {
    if (e instanceof Deno.errors.BrokenPipe) {
      // stdout was closed (e.g. piped into head): nothing more to say.
      return ExitCode.Ok;
    }
    const message = e instanceof Error ? e.message : String(e);
    await err.write(`tether: ${oneLine(message)}\n`).catch(() => {});
    return exitCode(e);
  } finally {
    await stdout.flush().catch(() => {});
    await err.flush().catch(() => {});
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
