/**
 * Backups: a point-in-time copy of every live document, streamed, compressed,
 * encrypted when the database is (or with a passphrase of its own), checked
 * by a hash chain (keyed with the backup's secret when it has one); and
 * restore, which reads the backup once, checks all of it, and applies it as
 * one commit. The documents travel as the NDJSON lines of `export()`, so a
 * backup from any storage restores into any other.
 *
 * Layout (FORMAT.md, "Backup"): `TETHERBK`, the header (length-prefixed
 * JSON), blocks (length-prefixed codec envelopes of NDJSON lines), a zero
 * length, the summary (length-prefixed JSON), and 32 bytes of chain
 * (HMAC-SHA256 for an encrypted backup of format 2, else SHA-256).
 *
 * @module
 */

import { concatBytes, encodeUtf8 } from "../bytes.ts";
import {
  EnvelopeError,
  open as openEnvelope,
  type RecordKeys,
  seal,
} from "../crypto/codec.ts";
import {
  CodecStorage,
  type EncryptionOptions,
  openWithSecret,
  sealWithSecret,
  type SecretWrap,
} from "../crypto/codec_storage.ts";
import type { Engine } from "../engine/engine.ts";
import { type IndexSpec, sameIndexSpec } from "../engine/index_keys.ts";
import { IntegrityError, WrongKeyError } from "../errors.ts";
import { Stage } from "./restore_stage.ts";
import {
  BACKUP_FORMAT,
  BLOCK_BYTES,
  Chain,
  checkBackupIterations,
  checkHeader,
  type Header,
  MAGIC,
  sha256,
  splitKey,
  u32,
} from "./backup_header.ts";
export {
  BACKUP_FORMAT,
  MAX_BACKUP_ITERATIONS,
  MIN_BACKUP_ITERATIONS,
} from "./backup_header.ts";
import { checkTargetFolder } from "./target_folder.ts";
import {
  checkCollectionNames,
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
  /**
   * Called with the number of documents copied so far, after each one (for
   * a progress display; it must not throw).
   */
  readonly onProgress?: (documents: number) => void;
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

/**
 * Writes a backup of every live document.
 *
 * @param engine The engine (its writes wait until the copy is taken, so the
 *   copy is a point in time of this process's writes).
 * @param target A path (written beside it, synced, then renamed over it) or
 *   a stream (closed at the end).
 * @param options Collections, and a secret of the backup's own.
 * @returns How many documents and bytes were written.
 * @throws {RangeError} When the secret's PBKDF2 iterations are outside what
 *   a restore accepts (1,000 to 5,000,000).
 */
export async function writeBackup(
  engine: Engine,
  target: BackupTarget,
  options: BackupOptions = {},
): Promise<BackupResult> {
  const action = "Cannot back up";
  checkCollectionNames(options.collections, action);
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
    const n = options.encryption?.iterations;
    if (
      n !== undefined && options.encryption.passphrase !== undefined &&
      Number.isSafeInteger(n)
    ) {
      checkBackupIterations(
        { kdf: "PBKDF2-SHA256", salt: "", keys: "", iterations: n },
        "the backup secret's",
        action,
      );
    }
    wrap = await sealWithSecret(options.encryption, keyBytes);
  } else if (storage instanceof CodecStorage && storage.encrypted) {
    wrap = (await storage.sealForSecret(keyBytes)) ?? null;
    if (wrap !== null) checkBackupIterations(wrap, "the database's", action);
  }
  if (wrap !== null) keys = await splitKey(keyBytes);
  const header: Header = {
    format: BACKUP_FORMAT,
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
  if (typeof target === "string") await checkTargetFolder(target, "backup");
  const file = typeof target === "string"
    ? await fileTarget(target)
    : undefined;
  const writer = (file?.stream ?? target as WritableStream<Uint8Array>)
    .getWriter();
  let bytes = 0;
  const chain = await Chain.of(wrap === null ? undefined : keyBytes);
  await chain.step(MAGIC, u32(headerBytes.length), headerBytes);
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
      await chain.step(length, envelope);
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
        if (line.kind === "document") {
          documents++;
          options.onProgress?.(documents);
        } else if (line.kind === "deleted") deleted++;
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
    await chain.step(end);
    await put(end, chain.value);
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

/** What a reader of a backup is handed, as the backup is read. */
interface BackupVisitor {
  /** The header, checked and (when encrypted) opened, before any block. */
  header(header: Header): Promise<void> | void;
  /** Each line, once its block is checked. */
  line(line: Line): Promise<void> | void;
}

/**
 * Reads and checks a whole backup from a stream, in one pass, handing the
 * header and each checked line to `visit`. Only a backup that reaches its
 * end with a matching checksum and summary returns: the caller must not act
 * on what it was handed before then.
 *
 * @returns The header.
 */
async function readBackup(
  engine: Engine,
  stream: ReadableStream<Uint8Array>,
  secret: EncryptionOptions | undefined,
  visit: BackupVisitor,
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
      throw new IntegrityError(
        `${action}: the header length ${headerLength} is over 1 MiB (the backup is damaged)`,
      );
    }
    const headerBytes = await reader.read(headerLength, "the header");
    let parsed: unknown;
    try {
      parsed = JSON.parse(
        new TextDecoder("utf-8", { fatal: true }).decode(headerBytes),
      );
    } catch (cause) {
      throw new IntegrityError(`${action}: the header is not JSON`, { cause });
    }
    // Every field is checked before any of it costs work (PBKDF2).
    const header = checkHeader(parsed, action);
    let keyBytes: Uint8Array | undefined;
    if (header.encryption === null && secret !== undefined) {
      throw new IntegrityError(
        `${action}: a secret was given but the backup is not encrypted (it is not the backup that secret made, or it was replaced)`,
      );
    }
    if (header.encryption !== null) {
      const wrap = header.encryption;
      try {
        if (secret !== undefined) keyBytes = await openWithSecret(secret, wrap);
        const storage = engine.storage;
        if (keyBytes === undefined && storage instanceof CodecStorage) {
          keyBytes = await storage.openSealed(wrap);
        }
      } catch (cause) {
        if (cause instanceof TypeError || cause instanceof RangeError) {
          throw cause; // a malformed secret
        }
        throw new IntegrityError(
          `${action}: the header's key could not be opened (the backup is damaged)`,
          { cause },
        );
      }
      if (keyBytes === undefined || keyBytes.length !== 64) {
        throw new WrongKeyError(
          `${action}: the backup is encrypted; ${
            secret === undefined
              ? "pass its encryption: { passphrase } or { key }"
              : "the secret given does not open it (or its header is damaged)"
          }`,
        );
      }
    }
    const keys = keyBytes === undefined ? undefined : await splitKey(keyBytes);
    await visit.header(header);
    const headerId = await sha256(headerBytes);
    // Format 1 had no keyed chain: its checksum is SHA-256 even when
    // encrypted (a cut at a block boundary is not detected without keys).
    const chain = await Chain.of(header.format >= 2 ? keyBytes : undefined);
    await chain.step(MAGIC, u32(headerLength), headerBytes);
    let blocks = 0;
    let documents = 0;
    let n = 0;
    for (;;) {
      const length = await reader.u32(`block ${blocks}`);
      if (length === 0) break;
      if (length > 64 * BLOCK_BYTES) {
        throw new IntegrityError(
          `${action}: block ${blocks} claims ${length} bytes (the backup is damaged)`,
        );
      }
      const envelope = await reader.read(length, `block ${blocks}`);
      await chain.step(u32(length), envelope);
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
        await visit.line(line);
      }
    }
    const summaryLength = await reader.u32("the summary");
    if (summaryLength > 4096) {
      throw new IntegrityError(
        `${action}: the summary claims ${summaryLength} bytes (the backup is damaged)`,
      );
    }
    const summaryBytes = await reader.read(summaryLength, "the summary");
    const trailer = await reader.read(32, "the checksum");
    await chain.step(u32(0), u32(summaryLength), summaryBytes);
    if (!chain.matches(trailer)) {
      throw new IntegrityError(
        `${action}: the backup fails its ${
          chain.keyed ? "keyed " : ""
        }checksum (it is damaged, cut short or assembled from other backups)`,
      );
    }
    let summary: { lines?: unknown; blocks?: unknown };
    try {
      summary = JSON.parse(new TextDecoder().decode(summaryBytes));
    } catch (cause) {
      throw new IntegrityError(`${action}: the summary is not JSON`, {
        cause,
      });
    }
    if (summary?.lines !== documents || summary?.blocks !== blocks) {
      throw new IntegrityError(
        `${action}: the backup holds ${documents} lines in ${blocks} blocks, its summary says ${summary?.lines} in ${summary?.blocks}`,
      );
    }
    if (header.format === 1 && header.encryption !== null && blocks === 0) {
      // Nothing in it is bound to the secret: anyone could have made it.
      throw new IntegrityError(
        `${action}: an encrypted backup of format 1 with no blocks cannot be told from a forged one; restore a backup of format 2`,
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
 * Restores a backup. It is read once: each block is checked as it arrives
 * and its lines are applied to a stage (an overlay of the database that
 * keeps every write in memory); only when the whole backup has checked out
 * is the stage written to the storage, as one commit. So a damaged,
 * truncated or forged backup, an error, or a crash at any moment leaves the
 * database as it was or as the complete restored one (on Deno KV: one
 * commit when it fits in one atomic operation, several otherwise).
 *
 * @param engine The engine.
 * @param source A path or a stream, read once.
 * @param options `mode` and the backup's secret.
 * @returns How many documents were stored, and how many had expired since.
 * @throws {IntegrityError} When the backup is damaged, truncated or forged
 *   (nothing changed).
 * @throws {WrongKeyError} When it is encrypted and cannot be opened.
 * @throws {TooLargeError} When the restore passes 1 GiB (one commit).
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
  if (engine.storage.capabilities.readOnly === true) {
    throw new TypeError(`${action}: the database is open read-only`);
  }
  const stream = await openSource(source);
  // Writes wait from here until the restore is applied (or refused).
  return await engine.exclusive(async () => {
    let stage: Stage;
    try {
      stage = await Stage.open(engine);
    } catch (e) {
      await stream.cancel().catch(() => {});
      throw e;
    }
    try {
      const staged = stage.engine;
      const loader = new Loader(staged, action);
      let existing = new Map<string, IndexSpec>();
      let failure: { error: unknown } | undefined;
      const attempt = async (fn: () => Promise<void>) => {
        if (failure !== undefined) return;
        try {
          await fn();
        } catch (error) {
          // Kept until the whole backup is checked: a damaged backup is an
          // IntegrityError whatever applying it ran into first.
          failure = { error };
        }
      };
      await readBackup(engine, stream, options.encryption, {
        header: async (header) => {
          if (header.since !== null && mode === "replace") {
            throw new TypeError(
              `${action}: an incremental backup (changes since ${header.since}) only merges; restore its full backup first`,
            );
          }
          const replace =
            (mode ?? (header.since === null ? "replace" : "merge")) ===
              "replace";
          const defined = await staged.indexDefinitions();
          if (replace) {
            // The database becomes the backup: its documents and indexes go
            // (the backup's indexes come back before its documents).
            await attempt(async () => {
              for (const c of await staged.collectionNames()) {
                await staged.clear(c, `${action}: emptying '${c}'`);
              }
              for (const { collection, spec } of defined) {
                await staged.dropIndex(
                  collection,
                  spec.name,
                  `${action}: dropping`,
                );
              }
            });
          } else {
            existing = new Map(
              defined.map((
                d,
              ) => [`${d.collection}\u0000${d.spec.name}`, d.spec]),
            );
          }
        },
        line: (line) =>
          attempt(async () => {
            const spec = line.index;
            if (spec !== undefined) {
              const mine = existing.get(`${line.collection}\u0000${spec.name}`);
              if (mine !== undefined && !sameIndexSpec(mine, spec)) {
                throw new TypeError(
                  `${action}: index '${spec.name}' of '${line.collection}' exists here with other options than in the backup; drop it first or restore with mode "replace"`,
                );
              }
            }
            await loader.add(line);
          }),
      });
      let result: TransferResult | undefined;
      await attempt(async () => {
        result = await loader.finish();
      });
      if (failure !== undefined) throw failure.error;
      const commits = await stage.apply(action);
      const log = engine.settings.log;
      if (commits > 1) {
        log?.warn(
          "restore-steps",
          `the restore took ${commits} commits (the storage limits what one holds), so a crash during it could have left a mix`,
          { commits },
        );
      }
      log?.info(
        "restore",
        `restored ${result!.documents} documents (${
          result!.deleted
        } deletions, ${result!.expired} expired skipped) in ${commits} commit${
          commits === 1 ? "" : "s"
        }`,
        { ...result!, commits },
      );
      return result!;
    } finally {
      await stage.close();
    }
  });
}
