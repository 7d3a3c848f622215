/**
 * The bytes of the file log (see FORMAT.md, "File log"): a 64-byte header,
 * then frames, each one atomic commit with its sequence number and CRC-32C;
 * in a compacted file (version 2) a snapshot end frame closes the snapshot.
 *
 * @module
 */

import { crc32c } from "./crc32c.ts";
import {
  joinValue,
  putVarint,
  Reader,
  readRecord,
  type RecordParts,
  recordParts,
  recordSize,
  type RecordView,
  RecordWalk,
  splitValue,
  varintSize,
  walkRecord,
  writeRecord,
} from "./file_record.ts";

/** The first 8 bytes of every log file. */
export const MAGIC: Uint8Array = new TextEncoder().encode("TETHERDB");
/**
 * The log format version written in the header of new and compacted files.
 * Version 2 added the snapshot end frame (and header flag bit 1); version 3
 * made the commit payload binary (varint counts and lengths, record
 * envelopes split into binary fields, see file_record.ts). Version-1 and
 * version-2 files are still read, appended to in their own version, and
 * written as version 3 by their next compaction.
 */
export const FILE_FORMAT_VERSION = 3;
/** The oldest log format version this release reads. */
export const MIN_FILE_FORMAT_VERSION = 1;
/**
 * Header flag (version 2): the file starts with a snapshot written by
 * compaction or repair, which is complete only up to its snapshot end frame.
 */
export const FLAG_SNAPSHOT = 2;
/** Header size in bytes. */
export const HEADER_BYTES = 64;
/**
 * Frame header size in bytes: payload length, sequence, kind, payload CRC,
 * header CRC.
 */
export const FRAME_HEADER_BYTES = 21;
/** Frame kind of a commit (the only kind in version 1). */
export const KIND_COMMIT = 1;
/** Frame kind that closes a snapshot (version 2). */
export const KIND_SNAPSHOT_END = 2;
/** The first format version with binary (varint) commit payloads. */
export const BINARY_VERSION = 3;
/** Payload bytes of a snapshot end frame. */
export const SNAPSHOT_END_BYTES = 32;
/** The largest frame payload: 1 GiB. */
export const MAX_PAYLOAD_BYTES: number = 1 << 30;

/** What the header holds. */
export interface FileHeader {
  /** Format version. */
  readonly version: number;
  /** Flags (bit 0: encrypted; reserved in version 1). */
  readonly flags: number;
  /** When the database was created, epoch ms. */
  readonly createdAt: number;
  /** The sequence number of the last commit folded into this file at its start. */
  readonly baseSeq: number;
  /** 16 bytes reserved for the encryption salt (zeros when unused). */
  readonly salt: Uint8Array;
}

/**
 * What a snapshot end frame says about the frames between the file header
 * and itself.
 */
export interface SnapshotSummary {
  /** How many frames. */
  readonly frames: number;
  /** How many bytes they take. */
  readonly bytes: number;
  /** How many sets they hold. */
  readonly records: number;
  /** The CRC-32C of those bytes. */
  readonly crc: number;
}

/** One set of a decoded frame. */
export interface FrameSet {
  /** The key (a view of the file buffer). */
  readonly key: Uint8Array;
  /**
   * The value as the storage hands it out (format 3: rebuilt when read;
   * a `RangeError` when a record's `_id` does not match its key).
   */
  readonly value: Uint8Array;
  /** Format 3: the value's parts (views of the file buffer). */
  readonly parts?: RecordParts;
  /**
   * Where the stored bytes start in the buffer read: the record (format 3)
   * or the value (versions 1 and 2).
   */
  readonly at: number;
  /** How many stored bytes. */
  readonly len: number;
}

/**
 * One decoded frame: keys and values are views of the file buffer. A
 * snapshot end frame has no sets or deletes and carries `summary`.
 */
export interface Frame {
  /** The frame kind: `KIND_COMMIT` or `KIND_SNAPSHOT_END`. */
  readonly kind: number;
  /** The commit's sequence number. */
  readonly seq: number;
  /** A snapshot end frame's figures. */
  readonly summary?: SnapshotSummary;
  /** Keys written, with their values (format 3: built when first read). */
  readonly sets: FrameSet[];
  /** Keys deleted. */
  readonly deletes: Uint8Array[];
  /** How many sets. */
  readonly setCount: number;
  /**
   * Format 3: where the records are (`walk` visits them without building
   * `sets`).
   */
  readonly binary?: BinaryPayload;
}

/** The records of a format-3 commit frame, in the bytes read. */
export interface BinaryPayload {
  /** The bytes read. */
  readonly bytes: Uint8Array;
  /** Where the first record starts. */
  readonly start: number;
  /** Where the payload ends. */
  readonly end: number;
  /** How many sets, then deletes. */
  readonly sets: number;
  /** How many deletes. */
  readonly deletes: number;
}

/**
 * Visits the records of a checked format-3 payload without allocating:
 * `set` with each record's parts (in `w`, reused) and start, `del` with
 * each deleted key's range.
 *
 * @param p The payload.
 * @param set Receives each set.
 * @param del Receives each delete.
 */
export function walkPayload(
  p: BinaryPayload,
  set: (w: RecordWalk, at: number) => void,
  del: (start: number, end: number) => void,
): void {
  const r = new Reader(p.bytes, p.start, p.end);
  const w = new RecordWalk();
  for (let i = 0; i < p.sets; i++) {
    const at = r.at;
    walkRecord(r, w);
    set(w, at);
  }
  for (let i = 0; i < p.deletes; i++) {
    const n = r.varint();
    const k = r.skip(n);
    del(k, k + n);
  }
}

/** A format-3 commit frame whose sets are built when first asked for. */
class BinaryFrame implements Frame {
  readonly kind = KIND_COMMIT;
  readonly seq: number;
  readonly binary: BinaryPayload;
  #sets: FrameSet[] | undefined;
  #deletes: Uint8Array[] | undefined;

  constructor(seq: number, binary: BinaryPayload) {
    this.seq = seq;
    this.binary = binary;
  }

  get setCount(): number {
    return this.binary.sets;
  }

  get sets(): FrameSet[] {
    this.#build();
    return this.#sets!;
  }

  get deletes(): Uint8Array[] {
    this.#build();
    return this.#deletes!;
  }

  #build(): void {
    if (this.#sets !== undefined) return;
    const { bytes } = this.binary;
    const sets: FrameSet[] = [];
    const deletes: Uint8Array[] = [];
    const r = new Reader(bytes, this.binary.start, this.binary.end);
    for (let i = 0; i < this.binary.sets; i++) {
      const at = r.at;
      const rec = readRecord(r) as RecordView;
      const key = bytes.subarray(rec.keyStart, rec.keyEnd);
      const parts = rec.parts;
      sets.push({
        key,
        get value(): Uint8Array {
          return joinValue(parts, key);
        },
        parts,
        at,
        len: rec.end - at,
      });
    }
    for (let i = 0; i < this.binary.deletes; i++) {
      const n = r.varint();
      const k = r.skip(n);
      deletes.push(bytes.subarray(k, k + n));
    }
    this.#sets = sets;
    this.#deletes = deletes;
  }
}

/**
 * Encodes a header.
 *
 * @param header The fields.
 * @returns 64 bytes.
 */
export function encodeHeader(header: FileHeader): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint16(8, header.version, true);
  view.setUint16(10, header.flags, true);
  view.setUint32(12, HEADER_BYTES, true);
  view.setFloat64(16, header.createdAt, true);
  view.setFloat64(24, header.baseSeq, true);
  out.set(header.salt.subarray(0, 16), 32);
  view.setUint32(60, crc32c(out, 0, 60), true);
  return out;
}

/**
 * Decodes and verifies a header.
 *
 * @param bytes The file's first bytes (at least 64).
 * @returns The header, or a reason it is not one.
 */
export function decodeHeader(bytes: Uint8Array): FileHeader | string {
  if (bytes.length < HEADER_BYTES) {
    return `the file is ${bytes.length} bytes, shorter than the ${HEADER_BYTES}-byte header`;
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) return "it does not start with 'TETHERDB'";
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  if (view.getUint32(60, true) !== crc32c(bytes, 0, 60)) {
    return "the header checksum does not match";
  }
  const version = view.getUint16(8, true);
  if (version < MIN_FILE_FORMAT_VERSION || version > FILE_FORMAT_VERSION) {
    return `its format version is ${version}; this release reads versions ${MIN_FILE_FORMAT_VERSION} to ${FILE_FORMAT_VERSION}`;
  }
  if (view.getUint32(12, true) !== HEADER_BYTES) {
    return "its header length is not 64";
  }
  const flags = view.getUint16(10, true);
  if (version === 1 && (flags & FLAG_SNAPSHOT) !== 0) {
    return "a version-1 header has the snapshot flag set";
  }
  return {
    version,
    flags,
    createdAt: view.getFloat64(16, true),
    baseSeq: view.getFloat64(24, true),
    salt: bytes.slice(32, 48),
  };
}

/** A set to encode: the key, the value, and the record it holds if known. */
export interface EncodeSet {
  /** The key. */
  readonly key: Uint8Array;
  /** The value bytes. */
  readonly value: Uint8Array;
  /** The decoded record (format 3 uses it to split an envelope). */
  readonly memo?: unknown;
  /**
   * `value` is made from `memo` when first read (see `StorageSet.lazy`):
   * format 3 writes the record from `memo` without reading it.
   */
  readonly lazy?: boolean;
}

/**
 * Encodes one commit as a frame.
 *
 * @param seq Its sequence number.
 * @param sets Keys and values written.
 * @param deletes Keys deleted.
 * @param version The file's format version (3: binary payload).
 * @param offsets Receives, per set, where its stored bytes (the record in
 *   format 3, the value before) start in the frame and their length.
 * @param split Receives, in format 3, the split value of each set.
 * @returns The frame bytes.
 * @throws {RangeError} When the payload would pass 1 GiB.
 */
export function encodeFrame(
  seq: number,
  sets: readonly EncodeSet[],
  deletes: readonly Uint8Array[],
  version: number = FILE_FORMAT_VERSION,
  offsets?: number[],
  split?: RecordParts[],
): Uint8Array {
  if (version >= BINARY_VERSION) {
    const parts = sets.map((set) =>
      (set.lazy === true ? recordParts(set.memo, set.key) : undefined) ??
        splitValue(set.value, set.memo, set.key)
    );
    // One by one: a spread of a commit of ~100,000 sets or more would
    // overflow the call stack.
    if (split !== undefined) { for (const p of parts) split.push(p); }
    return encodeBinaryFrame(seq, sets, parts, deletes, offsets);
  }
  let length = 8;
  for (const set of sets) length += 8 + set.key.length + set.value.length;
  for (const key of deletes) length += 4 + key.length;
  checkLength(length);
  const out = new Uint8Array(FRAME_HEADER_BYTES + length);
  const view = new DataView(out.buffer);
  view.setUint32(0, length, true);
  view.setFloat64(4, seq, true);
  out[12] = KIND_COMMIT;
  let at = FRAME_HEADER_BYTES;
  view.setUint32(at, sets.length, true);
  view.setUint32(at + 4, deletes.length, true);
  at += 8;
  for (const { key, value } of sets) {
    view.setUint32(at, key.length, true);
    out.set(key, at + 4);
    at += 4 + key.length;
    view.setUint32(at, value.length, true);
    out.set(value, at + 4);
    offsets?.push(at + 4, value.length);
    at += 4 + value.length;
  }
  for (const key of deletes) {
    view.setUint32(at, key.length, true);
    out.set(key, at + 4);
    at += 4 + key.length;
  }
  sealFrame(out);
  return out;
}

function checkLength(length: number): void {
  if (length > MAX_PAYLOAD_BYTES) {
    throw new RangeError(
      `a commit of ${length} bytes is over the ${MAX_PAYLOAD_BYTES}-byte frame limit`,
    );
  }
}

/**
 * Encodes a format-3 commit frame from values already split.
 *
 * @param seq Its sequence number.
 * @param sets Keys (values unused).
 * @param parts The split value of each set.
 * @param deletes Keys deleted.
 * @param offsets Receives, per set, where its record starts in the frame
 *   and its length.
 * @returns The frame bytes.
 * @throws {RangeError} When the payload would pass 1 GiB.
 */
export function encodeBinaryFrame(
  seq: number,
  sets: readonly { readonly key: Uint8Array }[],
  parts: readonly RecordParts[],
  deletes: readonly Uint8Array[],
  offsets?: number[],
): Uint8Array {
  let length = varintSize(sets.length) + varintSize(deletes.length);
  for (let i = 0; i < sets.length; i++) {
    length += recordSize(sets[i]!.key, parts[i]!);
  }
  for (const key of deletes) length += varintSize(key.length) + key.length;
  checkLength(length);
  const out = new Uint8Array(FRAME_HEADER_BYTES + length);
  const view = new DataView(out.buffer);
  view.setUint32(0, length, true);
  view.setFloat64(4, seq, true);
  out[12] = KIND_COMMIT;
  let at = putVarint(out, FRAME_HEADER_BYTES, sets.length);
  at = putVarint(out, at, deletes.length);
  for (let i = 0; i < sets.length; i++) {
    const start = at;
    at = writeRecord(out, at, sets[i]!.key, parts[i]!);
    offsets?.push(start, at - start);
  }
  for (const key of deletes) {
    at = putVarint(out, at, key.length);
    out.set(key, at);
    at += key.length;
  }
  sealFrame(out);
  return out;
}

/** Fills in a frame's two checksums. */
function sealFrame(out: Uint8Array): void {
  const view = new DataView(out.buffer, out.byteOffset, out.length);
  view.setUint32(13, crc32c(out, FRAME_HEADER_BYTES, out.length), true);
  view.setUint32(17, crc32c(out, 0, 17), true);
}

/**
 * Encodes a snapshot end frame (version 2): the last frame of what a
 * compaction writes before the file replaces the log.
 *
 * @param seq The sequence number of the last frame it covers.
 * @param summary The frames it covers, from the file header to itself.
 * @returns The frame bytes.
 */
export function encodeSnapshotEnd(
  seq: number,
  summary: SnapshotSummary,
): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + SNAPSHOT_END_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, SNAPSHOT_END_BYTES, true);
  view.setFloat64(4, seq, true);
  out[12] = KIND_SNAPSHOT_END;
  const at = FRAME_HEADER_BYTES;
  view.setFloat64(at, summary.frames, true);
  view.setFloat64(at + 8, summary.bytes, true);
  view.setFloat64(at + 16, summary.records, true);
  view.setUint32(at + 24, summary.crc, true);
  sealFrame(out);
  return out;
}

/** Why reading stopped at an offset. */
export type FrameProblem =
  /** The last frame runs past the end of the file (a write cut short). */
  | "truncated"
  /** The frame's checksum or structure is wrong. */
  | "corrupt";

/** The outcome of reading one frame at an offset. */
export type FrameRead =
  | { readonly frame: Frame; readonly end: number }
  | { readonly problem: FrameProblem; readonly reason: string };

/**
 * Reads the frame starting at `at`.
 *
 * @param bytes The whole file.
 * @param at The frame's offset.
 * @param minSeq The least sequence number it may carry.
 * @returns The frame and where the next starts, or what is wrong.
 */
export function readFrame(
  bytes: Uint8Array,
  at: number,
  minSeq: number,
  version: number = FILE_FORMAT_VERSION,
): FrameRead {
  const least = version >= BINARY_VERSION ? 2 : 8;
  const size = bytes.length;
  if (size - at < FRAME_HEADER_BYTES) {
    return {
      problem: "truncated",
      reason: `${size - at} bytes remain, fewer than a frame header`,
    };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + at);
  if (view.getUint32(17, true) !== crc32c(bytes, at, at + 17)) {
    return {
      problem: "corrupt",
      reason: "the frame header checksum does not match",
    };
  }
  const length = view.getUint32(0, true);
  const seq = view.getFloat64(4, true);
  const end = at + FRAME_HEADER_BYTES + length;
  if (end > size) {
    return {
      problem: "truncated",
      reason: `the frame needs ${end - at} bytes and ${size - at} remain`,
    };
  }
  if (length < least || length > MAX_PAYLOAD_BYTES) {
    return {
      problem: "corrupt",
      reason: `the frame length ${length} is invalid`,
    };
  }
  if (
    view.getUint32(13, true) !== crc32c(bytes, at + FRAME_HEADER_BYTES, end)
  ) {
    return {
      problem: "corrupt",
      reason: "the payload checksum does not match",
    };
  }
  if (!Number.isSafeInteger(seq) || seq < minSeq) {
    return {
      problem: "corrupt",
      reason: `the sequence number ${seq} is below ${minSeq}`,
    };
  }
  const kind = bytes[at + 12]!;
  if (kind === KIND_SNAPSHOT_END) {
    return readSnapshotEnd(view, seq, length, end);
  }
  if (kind !== KIND_COMMIT) {
    return {
      problem: "corrupt",
      reason: `the frame kind ${kind} is unknown`,
    };
  }
  if (version >= BINARY_VERSION) {
    return readBinaryPayload(bytes, at + FRAME_HEADER_BYTES, end, seq);
  }
  let p = at + FRAME_HEADER_BYTES;
  const setCount = view.getUint32(p - at, true);
  const deleteCount = view.getUint32(p - at + 4, true);
  p += 8;
  const sets: FrameSet[] = [];
  const deletes: Uint8Array[] = [];
  const take = (): Uint8Array | undefined => {
    if (end - p < 4) return undefined;
    const n = view.getUint32(p - at, true);
    if (end - p - 4 < n) return undefined;
    const out = bytes.subarray(p + 4, p + 4 + n);
    p += 4 + n;
    return out;
  };
  for (let i = 0; i < setCount; i++) {
    const key = take();
    const value = key === undefined ? undefined : take();
    if (value === undefined) {
      return {
        problem: "corrupt",
        reason: "a key or value runs past the frame",
      };
    }
    sets.push({
      key: key!,
      value,
      at: value.byteOffset - bytes.byteOffset,
      len: value.length,
    });
  }
  for (let i = 0; i < deleteCount; i++) {
    const key = take();
    if (key === undefined) {
      return { problem: "corrupt", reason: "a key runs past the frame" };
    }
    deletes.push(key);
  }
  if (p !== end) {
    return { problem: "corrupt", reason: "the frame has trailing bytes" };
  }
  return {
    frame: { kind, seq, sets, deletes, setCount: sets.length },
    end,
  };
}

function readBinaryPayload(
  bytes: Uint8Array,
  start: number,
  end: number,
  seq: number,
): FrameRead {
  const r = new Reader(bytes, start, end);
  const setCount = r.varint();
  const deleteCount = r.varint();
  if (setCount < 0 || deleteCount < 0) {
    return { problem: "corrupt", reason: "the frame's counts are malformed" };
  }
  const first = r.at;
  const w = new RecordWalk();
  for (let i = 0; i < setCount; i++) {
    const problem = walkRecord(r, w);
    if (problem !== undefined) return { problem: "corrupt", reason: problem };
  }
  for (let i = 0; i < deleteCount; i++) {
    const n = r.varint();
    const k = n < 0 ? -1 : r.skip(n);
    if (k < 0) {
      return { problem: "corrupt", reason: "a key runs past the frame" };
    }
  }
  if (r.at !== end) {
    return { problem: "corrupt", reason: "the frame has trailing bytes" };
  }
  const frame = new BinaryFrame(seq, {
    bytes,
    start: first,
    end,
    sets: setCount,
    deletes: deleteCount,
  });
  return { frame, end };
}

function readSnapshotEnd(
  view: DataView,
  seq: number,
  length: number,
  end: number,
): FrameRead {
  const at = FRAME_HEADER_BYTES;
  if (length !== SNAPSHOT_END_BYTES) {
    return {
      problem: "corrupt",
      reason:
        `the snapshot end frame is ${length} bytes long, not ${SNAPSHOT_END_BYTES}`,
    };
  }
  const frames = view.getFloat64(at, true);
  const bytes = view.getFloat64(at + 8, true);
  const records = view.getFloat64(at + 16, true);
  if (
    view.getUint32(at + 28, true) !== 0 ||
    ![frames, bytes, records].every((n) => Number.isSafeInteger(n) && n >= 0)
  ) {
    return {
      problem: "corrupt",
      reason: "the snapshot end frame is malformed",
    };
  }
  const summary = {
    frames,
    bytes,
    records,
    crc: view.getUint32(at + 24, true),
  };
  return {
    frame: {
      kind: KIND_SNAPSHOT_END,
      seq,
      summary,
      sets: [],
      deletes: [],
      setCount: 0,
    },
    end,
  };
}

/**
 * Looks for the next intact frame after a damaged one: the first offset in
 * `[from, bytes.length)` where a frame with a sequence number of at least
 * `minSeq` reads cleanly.
 *
 * @param bytes The whole file.
 * @param from Where to start looking.
 * @param minSeq The least sequence number a real frame there would carry.
 * @returns The offset, or `-1`.
 */
export function findNextFrame(
  bytes: Uint8Array,
  from: number,
  minSeq: number,
  version: number = FILE_FORMAT_VERSION,
): number {
  const least = version >= BINARY_VERSION ? 2 : 8;
  const size = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  for (let at = from; at + FRAME_HEADER_BYTES + least <= size; at++) {
    const kind = bytes[at + 12];
    if (kind !== KIND_COMMIT && kind !== KIND_SNAPSHOT_END) continue;
    const length = view.getUint32(at, true);
    if (length < least || at + FRAME_HEADER_BYTES + length > size) continue;
    const seq = view.getFloat64(at + 4, true);
    if (!Number.isSafeInteger(seq) || seq < minSeq) continue;
    if ("frame" in readFrame(bytes, at, minSeq, version)) return at;
  }
  return -1;
}
