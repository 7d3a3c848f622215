/**
 * The key directory hint, `<log>.hint` (Bitcask's hint file; FORMAT.md,
 * "Key directory hint"): the key directory as it stood when a writer closed
 * the database, every key with where its record is, so that reopening reads
 * keys and offsets instead of the whole log.
 *
 * It covers the log's first `covered` bytes. The log is only appended to
 * until a compaction or repair replaces it, so a hint stays true of that
 * prefix, even after a crash that followed later appends: an open loads the
 * hint and reads the log from `covered` on. A hint is used only when it is
 * whole (its CRC-32C), was written for this very log (the log's 64-byte
 * header and the CRC-32C of the 4 KiB before `covered` match) and every
 * entry in it makes sense; anything else and the log is read whole, as
 * without a hint. A compaction or repair removes the hint before the log is
 * replaced.
 *
 * Unlike reading the log, loading a hint does not check the checksums of the
 * frames it covers (they were checked when the log was last read whole or
 * written); `db.verify()` reads the whole log and checks every frame.
 *
 * @module
 */

import { binaryStringOf } from "../bytes.ts";
import { crc32c } from "./crc32c.ts";
import { FILE_FORMAT_VERSION, HEADER_BYTES } from "./file_format.ts";
import { type KeyDir, keyEntry, LEGACY } from "./file_keydir.ts";
import { putVarint, Reader } from "./file_record.ts";

/** The first 8 bytes of a hint: ASCII `TETHERKH`. */
const MAGIC = [0x54, 0x45, 0x54, 0x48, 0x45, 0x52, 0x4b, 0x48];
/** The hint format version. */
export const HINT_VERSION = 1;
/** The hint's header: magic, version, figures, the log's header. */
export const HINT_HEADER_BYTES = 48 + HEADER_BYTES;
/** The log bytes before `covered` whose CRC-32C binds a hint to its log. */
export const HINT_TAIL_BYTES = 4096;
/**
 * A close writes a hint only for at least this many keys (a smaller log
 * reads in a few milliseconds).
 */
export const HINT_MIN_KEYS = 10_000;
/** Hint bytes encoded, or read, at a time. */
const CHUNK = 1 << 20;
/** The most bytes one entry takes, besides its key's suffix. */
const ENTRY_MAX = 8 * 9;

/** The hint file of a log. */
export function hintPath(realPath: string): string {
  return `${realPath}.hint`;
}

/** What a writer needs of the log to write its hint. */
export interface HintSource {
  /** The log's first 64 bytes. */
  readonly header: Uint8Array;
  /** The log's length: the hint covers all of it. */
  readonly covered: number;
  /** The sequence number of the log's last frame. */
  readonly seq: number;
  /** Reads `len` bytes of the log at `at`. */
  read(at: number, len: number): Uint8Array;
}

/** CRC-32C of the log's bytes just before `covered`. */
function tailCrc(
  read: (at: number, len: number) => Uint8Array,
  covered: number,
): number {
  const from = Math.max(HEADER_BYTES, covered - HINT_TAIL_BYTES);
  const bytes = read(from, covered - from);
  if (bytes.length !== covered - from) return -1;
  return crc32c(bytes);
}

/**
 * Writes the hint of a key directory (in key order, each key after the
 * shared prefix with the one before), a chunk at a time, to `file`.
 *
 * @param dir The directory: every entry written to the log, none in a
 *   legacy format (the caller checks).
 * @param log The log it describes.
 * @param write Writes a chunk (in order).
 * @returns The hint's length.
 */
export async function encodeHint(
  dir: KeyDir,
  log: HintSource,
  write: (bytes: Uint8Array) => Promise<void>,
): Promise<number> {
  let buf = new Uint8Array(CHUNK);
  const view = new DataView(buf.buffer);
  buf.set(MAGIC, 0);
  view.setUint16(8, HINT_VERSION, true);
  view.setFloat64(16, log.covered, true);
  view.setFloat64(24, dir.size, true);
  view.setFloat64(32, log.seq, true);
  view.setUint32(40, tailCrc(log.read, log.covered) >>> 0, true);
  buf.set(log.header.subarray(0, HEADER_BYTES), 48);
  let at = HINT_HEADER_BYTES;
  let crc = 0;
  let total = 0;
  let prev = "";
  const flush = async (): Promise<void> => {
    const chunk = buf.subarray(0, at);
    crc = crc32c(chunk, 0, at, crc);
    await write(chunk);
    total += at;
    buf = new Uint8Array(CHUNK);
    at = 0;
  };
  for (const [id, e] of dir.entriesWithKeys()) {
    let shared = 0;
    const most = Math.min(prev.length, id.length);
    while (shared < most && prev.charCodeAt(shared) === id.charCodeAt(shared)) {
      shared++;
    }
    const suffix = id.length - shared;
    if (at + ENTRY_MAX + suffix > buf.length) {
      await flush();
      if (ENTRY_MAX + suffix > buf.length) {
        buf = new Uint8Array(ENTRY_MAX + suffix);
      }
    }
    at = putVarint(buf, at, shared);
    at = putVarint(buf, at, suffix);
    for (let i = shared; i < id.length; i++) buf[at++] = id.charCodeAt(i);
    at = putVarint(buf, at, e.seq);
    at = putVarint(buf, at, e.at);
    at = putVarint(buf, at, e.len);
    // The directory's highest insertion sequence stands for the record's
    // (a reader takes the highest as the floor of new ones: FORMAT.md).
    at = putVarint(buf, at, e.envelope ? dir.seqFloor + 1 : 0);
    at = putVarint(buf, at, e.x + 1);
    at = putVarint(buf, at, e.f);
    prev = id;
  }
  if (at + 4 > buf.length) await flush();
  crc = crc32c(buf, 0, at, crc);
  new DataView(buf.buffer).setUint32(at, crc >>> 0, true);
  at += 4;
  const chunk = buf.subarray(0, at);
  await write(chunk);
  return total + at;
}

/** The log as a hint is checked against: its length, positioned reads. */
interface LogBytes {
  readonly size: number;
  read(at: number, len: number): Uint8Array;
}

/** Where reading the log resumes after a hint was loaded. */
export interface HintLoaded {
  /** The log offset the hint covers up to. */
  readonly at: number;
  /** The sequence number of the last frame before it. */
  readonly seq: number;
  /** Keys loaded. */
  readonly keys: number;
}

/** Reads a hint file a window at a time. */
interface HintInput {
  /** The hint's length. */
  readonly size: number;
  /** Reads the next `len` bytes (fewer only at the end). */
  next(len: number): Uint8Array;
}

/**
 * Loads a hint into an empty key directory, or says why it cannot be used
 * (the directory is then left empty).
 *
 * @param dir The directory (empty).
 * @param hint The hint file.
 * @param log The log: its length and positioned reads.
 * @param gen The log's generation (the entries' `gen`).
 * @returns Where to read the log from, or why the hint was not used.
 */
export function loadHint(
  dir: KeyDir,
  hint: HintInput,
  log: LogBytes,
  gen: number,
): HintLoaded | string {
  const why = readHint(dir, hint, log, gen);
  if (typeof why === "string") dir.clear();
  return why;
}

function readHint(
  dir: KeyDir,
  hint: HintInput,
  log: LogBytes,
  gen: number,
): HintLoaded | string {
  if (hint.size < HINT_HEADER_BYTES + 4) return "it is too short";
  const head = hint.next(HINT_HEADER_BYTES).slice();
  if (head.length < HINT_HEADER_BYTES) return "it is too short";
  for (let i = 0; i < MAGIC.length; i++) {
    if (head[i] !== MAGIC[i]) return "it is not a key directory hint";
  }
  const view = new DataView(head.buffer);
  const version = view.getUint16(8, true);
  if (version !== HINT_VERSION) return `its version ${version} is unknown`;
  const covered = view.getFloat64(16, true);
  const count = view.getFloat64(24, true);
  const seq = view.getFloat64(32, true);
  if (
    !Number.isSafeInteger(covered) || covered < HEADER_BYTES ||
    covered > log.size || !Number.isSafeInteger(count) || count < 0 ||
    !Number.isSafeInteger(seq) || seq < 0
  ) {
    return "its figures are out of range";
  }
  const logHead = log.read(0, HEADER_BYTES);
  if (logHead.length !== HEADER_BYTES) return "the log is too short";
  for (let i = 0; i < HEADER_BYTES; i++) {
    if (logHead[i] !== head[48 + i]) {
      return "it was written for another log (the log's header differs)";
    }
  }
  if (
    new DataView(logHead.buffer, logHead.byteOffset).getUint16(8, true) !==
      FILE_FORMAT_VERSION
  ) {
    return "the log is in an older format";
  }
  if ((tailCrc(log.read, covered) >>> 0) !== view.getUint32(40, true)) {
    return "it was written for another log (the bytes before its end differ)";
  }
  let crc = crc32c(head);
  const body = hint.size - HINT_HEADER_BYTES - 4;
  let left = body;
  let window = new Uint8Array(0);
  let r = new Reader(window, 0, 0);
  /** Makes at least `n` bytes readable (fewer at the end). */
  const need = (n: number): void => {
    if (r.end - r.at >= n || left === 0) return;
    const rest = window.subarray(r.at, r.end);
    const more = hint.next(Math.min(left, Math.max(CHUNK, n)));
    left -= more.length;
    crc = crc32c(more, 0, more.length, crc);
    const next = new Uint8Array(rest.length + more.length);
    next.set(rest, 0);
    next.set(more, rest.length);
    window = next;
    r = new Reader(window, 0, window.length);
  };
  let key = new Uint8Array(256);
  let keyLen = 0;
  for (let i = 0; i < count; i++) {
    need(18);
    const shared = r.varint();
    const suffix = r.varint();
    if (shared < 0 || suffix < 0 || shared > keyLen) {
      return `entry ${i} is malformed`;
    }
    need(suffix + ENTRY_MAX);
    const from = r.skip(suffix);
    if (from < 0) return `entry ${i} runs past the end`;
    if (shared + suffix > key.length) {
      const bigger = new Uint8Array(Math.max(2 * key.length, shared + suffix));
      bigger.set(key.subarray(0, shared));
      key = bigger;
    }
    key.set(window.subarray(from, from + suffix), shared);
    keyLen = shared + suffix;
    const eSeq = r.varint();
    const at = r.varint();
    const len = r.varint();
    const s = r.varint();
    const x = r.varint();
    const f = r.varint();
    if (eSeq < 0 || at < 0 || len < 0 || s < 0 || x < 0 || f < 0) {
      return `entry ${i} is malformed`;
    }
    if (at < HEADER_BYTES || at + len > covered || eSeq > seq) {
      return `entry ${i} points outside the log it covers`;
    }
    const id = binaryStringOf(key, keyLen);
    dir.noteSeq(s - 1);
    const entry = keyEntry(
      eSeq,
      at,
      len,
      0,
      gen,
      false,
      s - 1,
      x - 1,
      f,
    );
    if (!dir.load(id, entry)) return `entry ${i} repeats a key`;
  }
  if (r.at !== r.end || left !== 0) return "it has bytes after its entries";
  const end = hint.next(4);
  if (end.length !== 4) return "it is too short";
  const want = new DataView(end.buffer, end.byteOffset).getUint32(0, true);
  if ((crc >>> 0) !== want) return "its checksum does not match (damaged)";
  return { at: covered, seq, keys: count };
}

/**
 * A {@linkcode HintInput} over an open file, read in order.
 *
 * @param file The hint, open for reading at its start.
 * @param size Its length.
 * @returns The input.
 */
export function hintInput(file: Deno.FsFile, size: number): HintInput {
  return {
    size,
    next(len: number): Uint8Array {
      const out = new Uint8Array(len);
      let got = 0;
      while (got < len) {
        const n = file.readSync(out.subarray(got));
        if (n === null) break;
        got += n;
      }
      return got === len ? out : out.subarray(0, got);
    },
  };
}

/**
 * Whether a directory can be written as a hint: every entry in the log (no
 * unwritten commit) and in the current format.
 *
 * @param dir The directory.
 * @returns `true` when it can.
 */
export function hintable(dir: KeyDir): boolean {
  for (const e of dir.entries()) {
    if (e.pending || e.kind === LEGACY) return false;
  }
  return true;
}
