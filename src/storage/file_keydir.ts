/**
 * The file storage's key directory (Bitcask's keydir): every live key in
 * RAM with where its value lies in the log file, and no value bytes. Values
 * are read with positioned reads when asked for; a commit not yet written
 * keeps its frame in RAM until it is.
 *
 * @module
 */

import { pageRange, scanBounds } from "../engine/scan_range.ts";
import { BTree } from "../engine/btree.ts";
import { compareStrings } from "../engine/btree_node.ts";
import { binaryString } from "../bytes.ts";
import { IntegrityError, TetherError } from "../errors.ts";
import type { ScanOptions, StorageCheck, StorageEntry } from "./contract.ts";
import { joinValue, Reader, readRecord, REC_ENVELOPE } from "./file_record.ts";
import { recordFromParts } from "./file_decode.ts";
import type { StoredRecord } from "../value_codec.ts";
import type { RecordMeta } from "./file_record.ts";

/** Entries are collected this many at a time; the tree is re-seeked between. */
const SCAN_BATCH = 256;
/** A run of a page's values read at once spans at most this. */
const SPAN_BYTES = 1 << 20;
/** Records at most this far apart are read in one run. */
const RUN_GAP = 16 << 10;

/** Kind bit: the stored bytes are a raw value (a version-1 or -2 frame). */
export const LEGACY = 1;

/** Kind bit: the entry's commit is unwritten (its frame is in RAM). */
const PENDING = 2;

/** Kind bit: the stored bytes are a record envelope (not a raw value). */
const ENVELOPE = 4;

/** `#kg` is `gen * GEN + flags`. */
const GEN = 8;

/**
 * One live key: where its stored bytes are. Replaced on every write. A
 * directory holds one per key (10,000,000 of them in a large database), so
 * it has as few fields as it can: its key is the directory's (not kept
 * twice); kind, generation, the envelope and unwritten flags share one
 * number; an expiry only on the entries that have one
 * (`ExpiringKeyEntry`); no insertion sequence (the directory keeps the
 * highest, {@linkcode KeyDir.seqFloor}, which is all a load needs).
 * Made by {@linkcode keyEntry}.
 */
export class KeyEntry {
  /** The sequence number of the commit that wrote it. */
  readonly seq: number;
  /** Where the stored bytes start: in the file, or in `buf`. */
  at: number;
  /** How many bytes. */
  len: number;
  /** `gen * GEN + flags` (`LEGACY`, `PENDING`, `ENVELOPE`). */
  #kg: number;
  /** Its change feed position (0: none). */
  readonly f: number;

  /**
   * @param seq The commit's sequence number.
   * @param at Where its bytes start.
   * @param len How many.
   * @param kind `LEGACY` or 0.
   * @param gen The file generation `at` refers to.
   * @param pending Whether `at` points into the unwritten frame of its
   *   commit (which the directory holds, see {@linkcode KeyDir.hold}).
   * @param envelope Whether the bytes are a record envelope.
   * @param f Its change feed position.
   */
  constructor(
    seq: number,
    at: number,
    len: number,
    kind: number,
    gen: number,
    pending: boolean,
    envelope: boolean,
    f: number,
  ) {
    this.seq = seq;
    this.at = at;
    this.len = len;
    this.#kg = gen * GEN + (kind & LEGACY) + (envelope ? ENVELOPE : 0) +
      (pending ? PENDING : 0);
    this.f = f;
  }

  /** `LEGACY` or 0 (a format-3 record). */
  get kind(): number {
    return this.#kg & LEGACY;
  }
  set kind(kind: number) {
    this.#kg = this.#kg - (this.#kg & LEGACY) + (kind & LEGACY);
  }

  /** Whether the stored bytes are a record envelope. */
  get envelope(): boolean {
    return (this.#kg & ENVELOPE) !== 0;
  }

  /** Its expiry (-1: none). */
  get x(): number {
    return -1;
  }

  /** The file generation `at` refers to. */
  get gen(): number {
    return Math.floor(this.#kg / GEN);
  }
  set gen(gen: number) {
    this.#kg = gen * GEN + (this.#kg % GEN);
  }

  /**
   * Whether its commit is unwritten: `at` then points into the commit's
   * frame, which the directory holds by the commit's `seq` (one map entry a
   * commit, not one a key, and no field on the many written entries).
   */
  get pending(): boolean {
    return (this.#kg & PENDING) !== 0;
  }

  /** Marks it written (`at` and `gen` then point into the file). */
  settle(): void {
    if ((this.#kg & PENDING) !== 0) this.#kg -= PENDING;
  }

  /**
   * What the engine reads at open, without the value.
   *
   * @param seqFloor The directory's highest insertion sequence (given as
   *   the record's: at least its own).
   * @returns The metadata, or `undefined` when not a record envelope.
   */
  meta(seqFloor: number): RecordMeta | undefined {
    if (!this.envelope) return undefined;
    const x = this.x;
    return {
      seq: seqFloor,
      expiresAt: x < 0 ? undefined : x,
      feed: this.f,
    };
  }
}

/** A {@linkcode KeyEntry} of a record with an expiry. */
class ExpiringKeyEntry extends KeyEntry {
  readonly #x: number;

  constructor(
    seq: number,
    at: number,
    len: number,
    kind: number,
    gen: number,
    pending: boolean,
    envelope: boolean,
    f: number,
    x: number,
  ) {
    super(seq, at, len, kind, gen, pending, envelope, f);
    this.#x = x;
  }

  override get x(): number {
    return this.#x;
  }
}

/**
 * A directory entry; `s`, `x`, `f` as {@linkcode metaArgs} gives them. The
 * insertion sequence `s` only says whether the bytes are an envelope
 * (`s >= 0`): the caller raises {@linkcode KeyDir.seqFloor} with it.
 *
 * @returns The entry (with an expiry field only if `x >= 0`).
 */
export function keyEntry(
  seq: number,
  at: number,
  len: number,
  kind: number,
  gen: number,
  pending: boolean,
  s: number,
  x: number,
  f: number,
): KeyEntry {
  return x >= 0
    ? new ExpiringKeyEntry(seq, at, len, kind, gen, pending, s >= 0, f, x)
    : new KeyEntry(seq, at, len, kind, gen, pending, s >= 0, f);
}

/**
 * The `s`, `x`, `f` arguments of {@linkcode keyEntry} for a record's
 * metadata (`-1, -1, 0` for a value that is not a record envelope).
 */
export function metaArgs(
  meta: RecordMeta | undefined,
): [number, number, number] {
  return meta === undefined
    ? [-1, -1, 0]
    : [meta.seq, meta.expiresAt ?? -1, meta.feed];
}

/** A key's bytes from its binary string. */
export function keyBytes(id: string): Uint8Array {
  const out = new Uint8Array(id.length);
  for (let i = 0; i < id.length; i++) out[i] = id.charCodeAt(i);
  return out;
}

/** The 16-hex-digit versionstamp of a sequence number. */
export function stamp(n: number): string {
  return n.toString(16).padStart(16, "0");
}

/** Positioned reads of the log (what the directory points into). */
export interface LogReader {
  /** The current file generation (bumped when compaction replaces it). */
  readonly gen: number;
  /** The log's path, for error messages. */
  readonly path: string;
  /**
   * Reads `len` bytes at `at` (synchronously).
   *
   * @throws {IntegrityError} When the file ends before.
   */
  read(at: number, len: number): Uint8Array;
}

/**
 * The value of an entry from its stored bytes.
 *
 * @param e The entry.
 * @param stored Its stored bytes (`e.len` of them).
 * @param key Its key.
 * @param where For error messages: the file and offset (made on error).
 * @param kind The entry's kind when `stored` was read (a compaction that
 *   upgrades a log changes the entry's kind, and where it points, later).
 * @returns The value.
 * @throws {IntegrityError} When the bytes do not read as a record.
 */
export function valueOf(
  e: KeyEntry,
  stored: Uint8Array,
  key: Uint8Array,
  where: (e: KeyEntry) => string,
  kind: number = e.kind,
): Uint8Array {
  if (kind === LEGACY) return stored;
  const r = new Reader(stored, 0, stored.length);
  const rec = readRecord(r);
  if (typeof rec === "string" || rec.end !== stored.length) {
    throw new IntegrityError(
      `Cannot read ${where(e)}: ${
        typeof rec === "string" ? rec : "the record has trailing bytes"
      }`,
    );
  }
  try {
    return joinValue(rec.parts, key);
  } catch (err) {
    throw new IntegrityError(
      `Cannot read ${where(e)}: ${(err as Error).message}`,
    );
  }
}

/** Reads the stored bytes of an entry (`e.len` of them). */
type StoredRead = (e: KeyEntry) => Uint8Array;

/**
 * An entry as the storage hands it out: its key bytes are made, and its
 * value read, when asked. A record envelope's decoded record (`memo`) is
 * made from its stored parts, without its JSON.
 */
class FileEntry implements StorageEntry {
  readonly #entry: KeyEntry;
  readonly #id: string;
  readonly #read: StoredRead;
  readonly #where: (e: KeyEntry) => string;
  readonly #seqFloor: number;
  #key: Uint8Array | undefined;
  #stored: Uint8Array | undefined;
  /**
   * The entry's kind when `#stored` was read: a compaction that upgrades a
   * version-2 log turns the entry into a format-3 record in the new file
   * meanwhile, while the bytes read before are still the old raw value.
   */
  #kind = 0;
  #value: Uint8Array | undefined;
  #memo: StoredRecord | undefined;

  /**
   * @param entry The key's directory entry.
   * @param id The key as a binary string.
   * @param read Reads its stored bytes (once: they are kept).
   * @param where Says where it is, for error messages.
   * @param seqFloor The directory's highest insertion sequence.
   * @param stored Its stored bytes, when already read.
   */
  constructor(
    entry: KeyEntry,
    id: string,
    read: StoredRead,
    where: (e: KeyEntry) => string,
    seqFloor: number,
    stored?: Uint8Array,
  ) {
    this.#entry = entry;
    this.#id = id;
    this.#read = read;
    this.#where = where;
    this.#seqFloor = seqFloor;
    this.#stored = stored;
    this.#kind = entry.kind;
  }

  /** The stored bytes, read on first use (value and memo share them). */
  #bytes(): Uint8Array {
    if (this.#stored === undefined) {
      this.#kind = this.#entry.kind;
      this.#stored = this.#read(this.#entry);
    }
    return this.#stored;
  }

  get key(): Uint8Array {
    return this.#key ??= keyBytes(this.#id);
  }

  /** The key as a binary string (one char per byte), without its bytes. */
  get binaryKey(): string {
    return this.#id;
  }

  get value(): Uint8Array {
    if (this.#value !== undefined) return this.#value;
    const stored = this.#bytes();
    return this.#value = valueOf(
      this.#entry,
      stored,
      this.key,
      this.#where,
      this.#kind,
    );
  }

  /**
   * The decoded record of a record envelope, made from its stored parts;
   * `undefined` for other values and for a record that does not decode
   * (its `value` then tells why).
   */
  get memo(): StoredRecord | undefined {
    const e = this.#entry;
    if (this.#memo !== undefined || !e.envelope) return this.#memo;
    // A raw value (version 1 or 2) has no parts to make it from.
    const kind = this.#stored === undefined ? e.kind : this.#kind;
    if (kind === LEGACY) return undefined;
    try {
      const stored = this.#bytes();
      if (this.#kind === LEGACY) return undefined;
      const rec = readRecord(new Reader(stored, 0, stored.length));
      if (typeof rec === "string" || rec.end !== stored.length) {
        return undefined;
      }
      if ((rec.parts.flags & REC_ENVELOPE) === 0) return undefined;
      return this.#memo = recordFromParts(
        rec.parts,
        stored.subarray(rec.keyStart, rec.keyEnd),
        undefined,
        "Cannot read",
      );
    } catch {
      return undefined;
    }
  }

  get versionstamp(): string {
    return stamp(this.#entry.seq);
  }

  /**
   * A record envelope's expiry and feed position (no read), and as its
   * insertion sequence the directory's highest (at least its own).
   */
  get meta(): RecordMeta | undefined {
    return this.#entry.meta(this.#seqFloor);
  }

  /** The stored size of the value (no read). */
  get storedBytes(): number {
    return this.#entry.len;
  }
}

/** What a write replaced: the key and its previous entry. */
export interface DirUndo {
  /** The key's binary string. */
  readonly id: string;
  /** The entry before, or `undefined` when the key was absent. */
  readonly before: KeyEntry | undefined;
}

/** What an entry counts in `live`: its record (a raw value: key + value). */
function liveOf(id: string, e: KeyEntry): number {
  return e.kind === LEGACY ? 8 + id.length + e.len : e.len;
}

/**
 * Live keys in order, each with where its value is; values are read through
 * `reader`.
 */
export class KeyDir {
  #tree = new BTree<string, KeyEntry>(compareStrings);
  readonly #reader: LogReader;
  /** The frames of unwritten commits, by sequence number. */
  readonly #frames = new Map<number, Uint8Array>();
  /** Bytes of live keys and values (8 bytes of lengths each included). */
  live = 0;
  /**
   * The highest insertion sequence of the record envelopes put in (-1:
   * none): entries keep none of their own, and a load needs only the
   * highest, so that later inserts number above every record.
   */
  seqFloor = -1;

  /** @param reader Reads the log. */
  constructor(reader: LogReader) {
    this.#reader = reader;
  }

  /**
   * Raises {@linkcode seqFloor} to a record's insertion sequence.
   *
   * @param s The sequence (-1: not a record envelope).
   */
  noteSeq(s: number): void {
    if (s > this.seqFloor) this.seqFloor = s;
  }

  /**
   * Holds (or replaces) the frame of an unwritten commit, which its pending
   * entries point into.
   *
   * @param seq The commit's sequence number.
   * @param frame Its frame.
   */
  hold(seq: number, frame: Uint8Array): void {
    this.#frames.set(seq, frame);
  }

  /**
   * Lets go of the frame of a commit written (its entries settled) or
   * taken back.
   *
   * @param seq The commit's sequence number.
   */
  release(seq: number): void {
    this.#frames.delete(seq);
  }

  /**
   * The unwritten frame a pending entry points into (`undefined` when the
   * entry is written, or its commit's frame was let go).
   */
  frameOf(e: KeyEntry): Uint8Array | undefined {
    return e.pending ? this.#frames.get(e.seq) : undefined;
  }

  /** How many frames are held (for tests). */
  get held(): number {
    return this.#frames.size;
  }

  /** How many keys. */
  get size(): number {
    return this.#tree.size;
  }

  /** The entry of a key's binary string. */
  entry(id: string): KeyEntry | undefined {
    return this.#tree.get(id);
  }

  /**
   * Sets or removes a key's entry.
   *
   * @returns The entry before.
   */
  put(id: string, entry: KeyEntry | undefined): KeyEntry | undefined {
    if (entry === undefined) {
      const before = this.#tree.get(id);
      if (before !== undefined) {
        this.live -= liveOf(id, before);
        this.#tree.delete(id);
      }
      return before;
    }
    // One descent for the lookup and the write.
    const before = this.#tree.swap(id, entry);
    if (before !== undefined) this.live -= liveOf(id, before);
    this.live += liveOf(id, entry);
    return before;
  }

  /** Takes writes back, newest first. */
  revert(undo: readonly DirUndo[]): void {
    for (let i = undo.length - 1; i >= 0; i--) {
      this.put(undo[i]!.id, undo[i]!.before);
    }
  }

  /**
   * Whether every check holds.
   *
   * @param checks The checks.
   * @param keys The commit's set keys, whose binary strings are `ids`: a
   *   check of the same key object (in the same order, as the engine
   *   writes them) takes its string from there instead of making it.
   * @param ids The binary strings of `keys`.
   */
  check(
    checks: readonly StorageCheck[] | undefined,
    keys?: readonly { readonly key: Uint8Array }[],
    ids?: readonly string[],
  ): boolean {
    if (checks === undefined) return true;
    let j = 0;
    for (const check of checks) {
      const id = ids !== undefined && j < ids.length &&
          keys![j]!.key === check.key
        ? ids[j++]!
        : binaryString(check.key);
      const e = this.#tree.get(id);
      const current = e === undefined ? null : stamp(e.seq);
      if (current !== check.versionstamp) return false;
    }
    return true;
  }

  /** Every entry in key order (synchronous; no writes while it runs). */
  entries(): IterableIterator<KeyEntry> {
    return this.#tree.values();
  }

  /** Every key and its entry in key order (synchronous, as `entries`). */
  entriesWithKeys(): IterableIterator<[string, KeyEntry]> {
    return this.#tree.entries();
  }

  /**
   * Adds a key that is not there yet (loading a hint, in key order).
   *
   * @returns `false` when the key was there already.
   */
  load(id: string, entry: KeyEntry): boolean {
    if (!this.#tree.set(id, entry)) return false;
    this.live += liveOf(id, entry);
    return true;
  }

  /**
   * The keys of the entries in a legacy format (a version-1 or -2 frame's
   * raw value, which does not hold its key), for a compaction to rewrite
   * them as records. Empty once a file was compacted.
   */
  legacyIds(): Map<KeyEntry, string> {
    const out = new Map<KeyEntry, string>();
    for (const [id, e] of this.#tree.entries()) {
      if (e.kind === LEGACY) out.set(e, id);
    }
    return out;
  }

  /** The stored bytes of an entry. */
  stored = (e: KeyEntry): Uint8Array => {
    if (e.pending) {
      const frame = this.#frames.get(e.seq);
      if (frame === undefined) {
        throw new TetherError(
          `Cannot read a value of '${this.#reader.path}': it was replaced, or its commit taken back, while it was being read; read it again`,
        );
      }
      return frame.subarray(e.at, e.at + e.len);
    }
    if (e.gen !== this.#reader.gen) {
      throw new TetherError(
        `Cannot read a value of '${this.#reader.path}': it was replaced and compacted away while it was being read; read it again`,
      );
    }
    return this.#reader.read(e.at, e.len);
  };

  /** The value of an entry (read from the file unless unwritten). */
  value = (e: KeyEntry, key: Uint8Array): Uint8Array =>
    valueOf(e, this.stored(e), key, this.#where);

  #where = (e: KeyEntry): string => {
    return e.pending
      ? `an unwritten commit of '${this.#reader.path}'`
      : `'${this.#reader.path}' at byte ${e.at}`;
  };

  /** One key's entry, its value read now. */
  get(key: Uint8Array): StorageEntry | null {
    const id = binaryString(key);
    const e = this.#tree.get(id);
    if (e === undefined) return null;
    const entry = new FileEntry(
      e,
      id,
      this.stored,
      this.#where,
      this.seqFloor,
      this.stored(e),
    );
    entry.value; // checked now: a damaged record fails the read
    return entry;
  }

  /**
   * Several keys' entries, their stored bytes read now: records that lie
   * close together in the file come in one read (a change feed's page,
   * written one after another, is often one read). A record's JSON `value`
   * is made only if asked (the engine decodes the record from its parts):
   * a damaged record fails when its `memo` or `value` is read.
   *
   * @param keys The keys.
   * @returns An entry or `null` per key.
   */
  getMany(keys: readonly Uint8Array[]): (StorageEntry | null)[] {
    const ids = keys.map(binaryString);
    const found = ids.map((id) => this.#tree.get(id));
    const read = this.#runs(found.filter((e) => e !== undefined));
    return found.map((e, i) =>
      e === undefined ? null : new FileEntry(
        e,
        ids[i]!,
        this.stored,
        this.#where,
        this.seqFloor,
        read(e),
      )
    );
  }

  /**
   * Visits entries in key order, in pages; a page's values are read when
   * first asked for, in one read when they lie close together.
   */
  async *scan(
    options: ScanOptions,
    alive: () => void,
  ): AsyncIterable<readonly StorageEntry[]> {
    alive();
    const bounds = scanBounds(options);
    let left = bounds.limit;
    let cursor: string | undefined;
    while (left > 0) {
      alive();
      const batch: KeyEntry[] = [];
      const ids: string[] = [];
      const range = pageRange(bounds, cursor);
      for (const [id, e] of this.#tree.entries(range)) {
        batch.push(e);
        ids.push(id);
        if (batch.length >= SCAN_BATCH || batch.length >= left) break;
      }
      if (batch.length === 0) return;
      cursor = ids[ids.length - 1]!;
      const full = batch.length >= SCAN_BATCH;
      left -= batch.length;
      yield this.#page(batch, ids);
      if (!full) return;
    }
  }

  /**
   * Entries of a page; their values come from a few reads of runs of
   * nearby records (in order of offset), made when the first is asked for.
   */
  #page(batch: readonly KeyEntry[], ids: readonly string[]): StorageEntry[] {
    let read: StoredRead | undefined;
    const lazy = (e: KeyEntry): Uint8Array => (read ??= this.#runs(batch))(e);
    return batch.map((e, i) =>
      new FileEntry(e, ids[i]!, lazy, this.#where, this.seqFloor)
    );
  }

  /**
   * Reads the stored bytes of some entries now, in one read per run of
   * nearby records (in order of offset); the function returned hands out
   * each entry's bytes (reading any other entry on its own).
   */
  #runs(batch: readonly KeyEntry[]): StoredRead {
    const gen = this.#reader.gen;
    const load = (): Map<KeyEntry, { bytes: Uint8Array; start: number }> => {
      const out = new Map<KeyEntry, { bytes: Uint8Array; start: number }>();
      const disk = batch.filter((e) => !e.pending && e.gen === gen);
      disk.sort((a, b) => a.at - b.at);
      let i = 0;
      while (i < disk.length) {
        const lo = disk[i]!.at;
        let hi = lo + disk[i]!.len;
        let j = i + 1;
        while (
          j < disk.length && disk[j]!.at - hi <= RUN_GAP &&
          disk[j]!.at + disk[j]!.len - lo <= SPAN_BYTES
        ) {
          hi = Math.max(hi, disk[j]!.at + disk[j]!.len);
          j++;
        }
        const run = { bytes: this.#reader.read(lo, hi - lo), start: lo };
        for (let k = i; k < j; k++) out.set(disk[k]!, run);
        i = j;
      }
      return out;
    };
    const runs = load();
    return (e: KeyEntry): Uint8Array => {
      if (e.pending || e.gen !== gen || gen !== this.#reader.gen) {
        return this.stored(e);
      }
      const run = runs.get(e);
      if (run === undefined) return this.stored(e);
      const at = e.at - run.start;
      return run.bytes.subarray(at, at + e.len);
    };
  }

  /** Sums `live` again (after entries changed their stored length). */
  recount(): void {
    let live = 0;
    for (const [id, e] of this.#tree.entries()) live += liveOf(id, e);
    this.live = live;
  }

  /** Drops every key. */
  clear(): void {
    this.#tree.clear();
    this.#frames.clear();
    this.live = 0;
    this.seqFloor = -1;
  }
}
