/**
 * Backups: a point-in-time copy of every live document, streamed, compressed,
 * encrypted when the database is (or with a passphrase of its own), checked
 * by a SHA-256 hash chain; and restore, which verifies the whole backup before
 * it changes anything. The documents travel as the NDJSON lines of
 * `export()`, so a backup from any storage restores into any other.
 *
 * Layout (FORMAT.md, "Backup"): `TETHERBK`, the header (length-prefixed
 * JSON), blocks (length-prefixed codec envelopes of NDJSON lines), a zero
 * length, the summary (length-prefixed JSON), and 32 bytes of SHA-256 chain.
 *
 * @module
 */

import { concatBytes, encodeUtf8 } from "./bytes.ts";
import {
  EnvelopeError,
  importKeys,
  open as openEnvelope,
  type RecordKeys,
  seal,
} from "./codec.ts";
import {
  CodecStorage,
  type EncryptionOptions,
  openWithSecret,
  sealWithSecret,
  type SecretWrap,
} from "./codec_storage.ts";
import type { Engine } from "./engine.ts";
import type { IndexSpec } from "./index_keys.ts";
import { IntegrityError, WrongKeyError } from "./errors.ts";
import {
  documentLines,
  fileTarget,
  type Line,
  Loader,
  openSource,
  parseLine,
} from "./ndjson.ts";
import type { ExportTarget, ImportSource, TransferResult } from "./ndjson.ts";

/** Where a backup goes: a file path, or a stream. */
export type BackupTarget = ExportTarget;
/** Where a backup comes from: a file path, or a stream. */
export type BackupSource = ImportSource;

/** Options of `backup`. */
export interface BackupOptions {
  /** Only these collections (default: every one). */
  readonly collections?: readonly string[];
  /**
   * Incremental: only what changed at or after this time (epoch ms) —
   * documents written since, and documents deleted since (from their
   * tombstones: a `since` before the last purge of tombstones older than
   * `tombstoneRetention` is a `RangeError`).
   */
  readonly since?: number;
  /**
   * Encrypt the backup under this secret. Default: an encrypted database's
   * backup is encrypted under the database's own secret; a plain database's
   * backup is not encrypted.
   */
  readonly encryption?: EncryptionOptions;
}

/** Options of `restore`. */
export interface RestoreOptions {
  /**
   * `"replace"` (default for a full backup): the database becomes the
   * backup (every collection is emptied first). `"merge"` (the only mode of
   * an incremental backup): the backup's documents overwrite those with the
   * same keys, its deletions delete, others stay.
   */
  readonly mode?: "merge" | "replace";
  /**
   * The secret of an encrypted backup, when the database restoring it was
   * not opened with the same one.
   */
  readonly encryption?: EncryptionOptions;
}

/** What a backup wrote. */
export interface BackupResult {
  /** Documents in the backup. */
  readonly documents: number;
  /** Deletions in the backup (incremental). */
  readonly deleted: number;
  /** Index definitions in the backup. */
  readonly indexes: number;
  /** Bytes written. */
  readonly bytes: number;
}

/** The backup's header. */
interface Header {
  readonly format: 1;
  readonly createdAt: number;
  readonly source: string;
  readonly collections: readonly string[] | null;
  /** Incremental: changes at or after this time; `null` for a full backup. */
  readonly since: number | null;
  readonly encryption: SecretWrap | null;
}

function isHeader(h: Header): boolean {
  const e = h.encryption as Partial<SecretWrap> | null;
  return typeof h.createdAt === "number" && typeof h.source === "string" &&
    (h.since === null || typeof h.since === "number") &&
    (h.collections === null ||
      (Array.isArray(h.collections) &&
        h.collections.every((c) => typeof c === "string"))) &&
    (e === null ||
      (typeof e === "object" &&
        (e.kdf === "PBKDF2-SHA256" || e.kdf === "HKDF-SHA256") &&
        typeof e.salt === "string" && typeof e.keys === "string" &&
        (e.iterations === undefined || Number.isSafeInteger(e.iterations))));
}

const MAGIC = encodeUtf8("TETHERBK");
const BLOCK_BYTES = 256 * 1024;

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      concatBytes(parts) as Uint8Array<ArrayBuffer>,
    ),
  );
}

async function splitKey(bytes: Uint8Array): Promise<RecordKeys> {
  return await importKeys(0, bytes.subarray(0, 32), bytes.subarray(32, 64));
}

/**
 * Writes a backup of every live document.
 *
 * @param engine The engine (its writes wait until the copy is taken, so the
 *   copy is a point in time of this process's writes).
 * @param target A path (written beside it, synced, then renamed over it) or
 *   a stream (closed at the end).
 * @param options Collections, and a secret of the backup's own.
 * @returns How many documents and bytes were written.
 */
export async function writeBackup(
  engine: Engine,
  target: BackupTarget,
  options: BackupOptions = {},
): Promise<BackupResult> {
  const action = "Cannot back up";
  const { since } = options;
  if (since !== undefined) {
    if (typeof since !== "number" || !Number.isFinite(since)) {
      throw new TypeError(`${action}: since must be epoch milliseconds`);
    }
    await checkSince(engine, since, action);
  }
  let wrap: SecretWrap | null = null;
  let keys: RecordKeys | undefined;
  const storage = engine.storage;
  const keyBytes = crypto.getRandomValues(new Uint8Array(64));
  if (options.encryption !== undefined) {
    wrap = await sealWithSecret(options.encryption, keyBytes);
  } else if (storage instanceof CodecStorage && storage.encrypted) {
    wrap = (await storage.sealForSecret(keyBytes)) ?? null;
  }
  if (wrap !== null) keys = await splitKey(keyBytes);
  const header: Header = {
    format: 1,
    createdAt: engine.now(),
    source: storage.constructor.name,
    collections: options.collections === undefined
      ? null
      : [...options.collections],
    since: since ?? null,
    encryption: wrap,
  };
  const headerBytes = encodeUtf8(JSON.stringify(header));
  const headerId = await sha256(headerBytes);
  const file = typeof target === "string"
    ? await fileTarget(target)
    : undefined;
  const writer = (file?.stream ?? target as WritableStream<Uint8Array>)
    .getWriter();
  let bytes = 0;
  let chain = await sha256(MAGIC, u32(headerBytes.length), headerBytes);
  const put = async (...parts: Uint8Array[]) => {
    for (const p of parts) {
      await writer.write(p);
      bytes += p.length;
    }
  };
  let documents = 0;
  let deleted = 0;
  let indexes = 0;
  let blocks = 0;
  try {
    await put(MAGIC, u32(headerBytes.length), headerBytes);
    const flush = async (text: string) => {
      const envelope = await seal(
        encodeUtf8(text),
        concatBytes([headerId, u32(blocks)]),
        { minBytes: 0, keys },
      );
      const length = u32(envelope.length);
      chain = await sha256(chain, length, envelope);
      await put(length, envelope);
      blocks++;
    };
    // The copy is taken with this process's writes held back.
    await engine.exclusive(async () => {
      let text = "";
      for await (
        const line of documentLines(
          engine,
          options.collections,
          action,
          since,
          true,
        )
      ) {
        text += line.text;
        if (line.kind === "document") documents++;
        else if (line.kind === "deleted") deleted++;
        else indexes++;
        if (text.length >= BLOCK_BYTES) {
          await flush(text);
          text = "";
        }
      }
      if (text.length > 0) await flush(text);
    });
    // A purge of tombstones during the copy would leave it short.
    if (since !== undefined) await checkSince(engine, since, action);
    const summary = encodeUtf8(
      JSON.stringify({ lines: documents + deleted + indexes, blocks }),
    );
    const end = concatBytes([u32(0), u32(summary.length), summary]);
    chain = await sha256(chain, end);
    await put(end, chain);
    await writer.close();
    await file?.done();
  } catch (e) {
    await writer.abort(e).catch(() => {});
    await file?.fail();
    throw e;
  }
  return { documents, deleted, indexes, bytes };
}

/** Refuses an increment older than the oldest kept tombstone. */
async function checkSince(
  engine: Engine,
  since: number,
  action: string,
): Promise<void> {
  const from = await engine.tombstonesFrom();
  if (since < from) {
    throw new RangeError(
      `${action}: deletions before ${
        new Date(from).toISOString()
      } are no longer kept (tombstoneRetention), so changes since ${
        new Date(since).toISOString()
      } would miss some; take a full backup`,
    );
  }
}

/** Reads exact byte counts from a stream. */
class ByteReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer: Uint8Array = new Uint8Array(0);

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  async read(n: number, what: string): Promise<Uint8Array> {
    while (this.#buffer.length < n) {
      const next = await this.#reader.read();
      if (next.done) {
        throw new IntegrityError(
          `Cannot restore: the backup is truncated (in ${what})`,
        );
      }
      this.#buffer = concatBytes([this.#buffer, next.value]);
    }
    const out = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  async u32(what: string): Promise<number> {
    return new DataView((await this.read(4, what)).buffer).getUint32(0);
  }

  async atEnd(): Promise<boolean> {
    if (this.#buffer.length > 0) return false;
    const next = await this.#reader.read();
    if (next.done) return true;
    this.#buffer = next.value;
    return this.#buffer.length === 0 ? await this.atEnd() : false;
  }

  cancel(): Promise<void> {
    return this.#reader.cancel().catch(() => {});
  }
}

/**
 * Reads and checks a whole backup, handing each checked line to `each`.
 *
 * @returns The number of documents.
 */
async function readBackup(
  engine: Engine,
  stream: ReadableStream<Uint8Array>,
  secret: EncryptionOptions | undefined,
  each: (line: Line, header: Header) => Promise<void> | void,
): Promise<Header> {
  const action = "Cannot restore";
  const reader = new ByteReader(stream);
  try {
    const magic = await reader.read(MAGIC.length, "the magic");
    if (!magic.every((b, i) => b === MAGIC[i])) {
      throw new IntegrityError(`${action}: this is not a @tether/db backup`);
    }
    const headerLength = await reader.u32("the header");
    if (headerLength > 1 << 20) {
      throw new IntegrityError(`${action}: the header is damaged`);
    }
    const headerBytes = await reader.read(headerLength, "the header");
    let header: Header;
    try {
      header = JSON.parse(new TextDecoder().decode(headerBytes));
    } catch (cause) {
      throw new IntegrityError(`${action}: the header is not JSON`, { cause });
    }
    if (typeof header !== "object" || header === null) {
      throw new IntegrityError(`${action}: the header is damaged`);
    }
    if (header.format !== 1) {
      throw new IntegrityError(
        `${action}: backup format ${header.format} is unknown`,
      );
    }
    if (!isHeader(header)) {
      throw new IntegrityError(`${action}: the header is damaged`);
    }
    let keys: RecordKeys | undefined;
    if (header.encryption !== null) {
      let keyBytes: Uint8Array | undefined;
      const wrap = header.encryption;
      try {
        if (secret !== undefined) keyBytes = await openWithSecret(secret, wrap);
        const storage = engine.storage;
        if (keyBytes === undefined && storage instanceof CodecStorage) {
          keyBytes = await storage.openSealed(wrap);
        }
      } catch (cause) {
        if (cause instanceof TypeError) throw cause; // a malformed secret
        throw new IntegrityError(`${action}: the header is damaged`, {
          cause,
        });
      }
      if (keyBytes === undefined) {
        throw new WrongKeyError(
          `${action}: the backup is encrypted; ${
            secret === undefined
              ? "pass its encryption: { passphrase } or { key }"
              : "the secret given does not open it (or its header is damaged)"
          }`,
        );
      }
      keys = await splitKey(keyBytes);
    }
    const headerId = await sha256(headerBytes);
    let chain = await sha256(MAGIC, u32(headerLength), headerBytes);
    let blocks = 0;
    let documents = 0;
    let n = 0;
    for (;;) {
      const length = await reader.u32(`block ${blocks}`);
      if (length === 0) break;
      const envelope = await reader.read(length, `block ${blocks}`);
      chain = await sha256(chain, u32(length), envelope);
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(
          await openEnvelope(
            envelope,
            concatBytes([headerId, u32(blocks)]),
            () => keys,
            keys !== undefined,
          ),
        );
      } catch (e) {
        if (!(e instanceof EnvelopeError || e instanceof TypeError)) throw e;
        throw new IntegrityError(
          `${action}: block ${blocks} is damaged (${(e as Error).message})`,
          { cause: e },
        );
      }
      blocks++;
      for (const lineText of text.split("\n")) {
        let line: Line | undefined;
        try {
          line = parseLine(lineText, ++n);
        } catch (e) {
          throw new IntegrityError(
            `${action}: block ${blocks - 1} is damaged (${
              (e as Error).message
            })`,
            { cause: e },
          );
        }
        if (line === undefined) continue;
        documents++;
        await each(line, header);
      }
    }
    const summaryLength = await reader.u32("the summary");
    const summaryBytes = await reader.read(summaryLength, "the summary");
    const trailer = await reader.read(32, "the checksum");
    chain = await sha256(
      chain,
      u32(0),
      u32(summaryLength),
      summaryBytes,
    );
    if (!chain.every((b, i) => b === trailer[i])) {
      throw new IntegrityError(`${action}: the backup fails its checksum`);
    }
    const summary = JSON.parse(new TextDecoder().decode(summaryBytes));
    if (summary.lines !== documents || summary.blocks !== blocks) {
      throw new IntegrityError(
        `${action}: the backup holds ${documents} lines in ${blocks} blocks, its summary says ${summary.lines} in ${summary.blocks}`,
      );
    }
    if (!(await reader.atEnd())) {
      throw new IntegrityError(`${action}: there are bytes after the backup`);
    }
    return header;
  } finally {
    await reader.cancel();
  }
}

/**
 * Verifies a whole backup, then (only if it is intact) restores it.
 *
 * @param engine The engine.
 * @param source A path (read twice: verified, then restored) or a stream (its
 *   documents are kept in memory until verified).
 * @param options `mode` and the backup's secret.
 * @returns How many documents were stored, and how many had expired since.
 * @throws {IntegrityError} When the backup is damaged or truncated (nothing
 *   changed).
 * @throws {WrongKeyError} When it is encrypted and cannot be opened.
 */
export async function restoreBackup(
  engine: Engine,
  source: BackupSource,
  options: RestoreOptions = {},
): Promise<TransferResult> {
  const action = "Cannot restore";
  const { mode } = options;
  if (mode !== undefined && mode !== "merge" && mode !== "replace") {
    throw new TypeError(`${action}: mode must be "merge" or "replace"`);
  }
  const open = () => openSource(source);
  const kept: Line[] = [];
  const specs = new Map<string, IndexSpec>(); // "collection\0name" -> spec
  const header = await readBackup(
    engine,
    await open(),
    options.encryption,
    (line) => {
      if (line.index !== undefined) {
        specs.set(`${line.collection}\u0000${line.index.name}`, line.index);
      }
      if (typeof source !== "string") kept.push(line);
    },
  );
  const same = (a: IndexSpec, b: IndexSpec | undefined) =>
    b !== undefined && a.unique === b.unique && a.sparse === b.sparse &&
    a.fields.join("\u0000") === b.fields.join("\u0000");
  const existing = await engine.indexDefinitions();
  // Verified: now change the database.
  if (header.since !== null && mode === "replace") {
    throw new TypeError(
      `${action}: an incremental backup (changes since ${header.since}) only merges; restore its full backup first`,
    );
  }
  const replace =
    (mode ?? (header.since === null ? "replace" : "merge")) === "replace";
  if (!replace) {
    for (const { collection, spec } of existing) {
      const theirs = specs.get(`${collection}\u0000${spec.name}`);
      if (theirs !== undefined && !same(spec, theirs)) {
        throw new TypeError(
          `${action}: index '${spec.name}' of '${collection}' exists here with other options than in the backup; drop it first or restore with mode "replace"`,
        );
      }
    }
  } else {
    // The database becomes the backup: its documents go, and indexes the
    // backup does not have (or has otherwise).
    for (const { collection, spec } of existing) {
      if (!same(spec, specs.get(`${collection}\u0000${spec.name}`))) {
        await engine.dropIndex(collection, spec.name, `${action}: dropping`);
      }
    }
    for (const c of await engine.collectionNames()) {
      await engine.clear(c, `${action}: emptying '${c}'`);
    }
  }
  const loader = new Loader(engine, action);
  if (typeof source === "string") {
    await readBackup(
      engine,
      await open(),
      options.encryption,
      (line) => loader.add(line),
    );
  } else {
    for (const line of kept) await loader.add(line);
  }
  return await loader.finish();
}
