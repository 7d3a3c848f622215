/**
 * Between the log's frames and the key directory: what a commit waiting to
 * be written holds, the directory entries of the sets of a frame read from
 * the log, and commits carried over into a compaction's new format.
 *
 * @module
 */

import { binaryString } from "../bytes.ts";
import { TetherError } from "../errors.ts";
import { recordMeta } from "../value_codec.ts";
import {
  encodeFrame,
  FILE_FORMAT_VERSION,
  type Frame,
  type FrameSet,
  readFrame,
  walkPayload,
} from "./file_format.ts";
import {
  type DirUndo,
  type KeyDir,
  type KeyEntry,
  keyEntry,
  LEGACY,
  metaArgs,
} from "./file_keydir.ts";
import { REC_ENVELOPE, REC_EXPIRY, REC_FEED } from "./file_record.ts";

/** A commit accepted and not yet durable. */
export interface Queued {
  readonly seq: number;
  /** Its frame (re-encoded when a compaction changes the file's format). */
  frame: Uint8Array;
  /** The entry of each set, pointing into `frame` until it is written. */
  readonly entries: KeyEntry[];
  /** Per set: where its stored bytes start in `frame`, and their length. */
  offsets: number[];
  /** Strict mode: what takes the commit back if it cannot be written. */
  readonly undo: DirUndo[] | undefined;
  readonly resolve: (() => void) | undefined;
  readonly reject: ((e: Error) => void) | undefined;
}

/** A commit written to the log while a compaction ran. */
export interface TailFrame {
  readonly frame: Uint8Array;
  readonly entries: readonly KeyEntry[];
  readonly offsets: readonly number[];
}

/** The directory entry of a set read from the log at `base`. */
export function entryOf(
  dir: KeyDir,
  set: FrameSet,
  seq: number,
  base: number,
  version: number,
  gen: number,
): KeyEntry {
  if (version < 3) {
    return legacyEntry(dir, set.value, seq, base + set.at, set.len, gen, false);
  }
  return recordEntry(dir, seq, base + set.at, set.len, gen, false, set.parts!);
}

/**
 * The key directory entry of a version-1 or version-2 value (a record
 * envelope's JSON, or a raw value) at `at`; notes its insertion sequence.
 *
 * @param dir The key directory.
 * @param value The stored value.
 * @param seq The commit's sequence number.
 * @param at Where the value starts (in the frame, or in the file).
 * @param len Its length.
 * @param gen The file generation.
 * @param pending Whether it points into an unwritten commit's frame.
 * @returns The entry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { legacyEntry } from "./file_log.ts";
 * import { KeyDir } from "./file_keydir.ts";
 * const dir = new KeyDir({ path: "x", read: () => new Uint8Array() } as never);
 * const value = new TextEncoder().encode('{"v":1,"c":1,"u":1,"n":1,"s":7}');
 * const e = legacyEntry(dir, value, 1, 0, value.length, 0, false);
 * assert.equal(e.envelope, true);
 * assert.equal(dir.seqFloor, 7);
 * ```
 */
export function legacyEntry(
  dir: KeyDir,
  value: Uint8Array,
  seq: number,
  at: number,
  len: number,
  gen: number,
  pending: boolean,
): KeyEntry {
  const meta = metaArgs(recordMeta(value));
  dir.noteSeq(meta[0]);
  return keyEntry(seq, at, len, LEGACY, gen, pending, ...meta);
}

/**
 * Applies a frame read from the log at `base` to the directory.
 *
 * @param dir The key directory.
 * @param frame The frame.
 * @param base Where the bytes the frame was read from start in the file.
 * @param version The log's format version.
 * @param gen The file generation.
 */
export function applyFrame(
  dir: KeyDir,
  frame: Frame,
  base: number,
  version: number,
  gen: number,
): void {
  const binary = frame.binary;
  if (binary !== undefined) {
    const bytes = binary.bytes;
    const seq = frame.seq;
    walkPayload(binary, (w, at) => {
      const id = binaryString(bytes.subarray(w.keyStart, w.keyEnd));
      dir.put(id, recordEntry(dir, seq, base + at, w.end - at, gen, false, w));
    }, (start, end) => {
      dir.put(binaryString(bytes.subarray(start, end)), undefined);
    });
    return;
  }
  for (const set of frame.sets) {
    dir.put(
      binaryString(set.key),
      entryOf(dir, set, frame.seq, base, version, gen),
    );
  }
  for (const key of frame.deletes) dir.put(binaryString(key), undefined);
}

/**
 * A commit of the old log in the current format (compaction copies the
 * commits made while it ran into the new file), with where each set's
 * record is in the frame.
 */
export function upgradeFrame(
  q: { readonly frame: Uint8Array; readonly offsets: readonly number[] },
  version: number,
): { frame: Uint8Array; offsets: readonly number[] } {
  if (version === FILE_FORMAT_VERSION) return q;
  const read = readFrame(q.frame, 0, 0, version);
  if (!("frame" in read)) {
    throw new TetherError(
      `a commit written meanwhile reads back as damaged (${read.reason})`,
    );
  }
  const { seq, sets, deletes } = read.frame;
  const offsets: number[] = [];
  const frame = encodeFrame(seq, sets, deletes, FILE_FORMAT_VERSION, offsets);
  return { frame, offsets };
}

/** A format-3 record's flags and the metadata fields they say it has. */
export interface RecordFields {
  readonly flags: number;
  readonly s: number;
  readonly x: number;
  readonly f: number;
}

/**
 * The key directory entry of a format-3 record at `at` (its insertion
 * sequence, expiry and feed position read from its flags and fields, with
 * no object made on the way): from a commit's parts (pending until
 * written), or from a record read from the log. Notes its insertion
 * sequence in `dir`.
 *
 * @param dir The key directory.
 * @param seq The commit's sequence number.
 * @param at Where the record starts (in the frame, or in the file).
 * @param len Its length.
 * @param gen The file generation.
 * @param pending Whether its commit is unwritten.
 * @param p The record's flags and fields (its parts, or a walk of it).
 * @returns The entry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recordEntry } from "./file_log.ts";
 * import { KeyDir } from "./file_keydir.ts";
 * import { REC_ENVELOPE, REC_FEED } from "./file_record.ts";
 * const dir = new KeyDir({ path: "x", read: () => new Uint8Array() } as never);
 * const p = { flags: REC_ENVELOPE | REC_FEED, s: 3, f: 9, x: 0 };
 * const e = recordEntry(dir, 7, 40, 12, 0, true, p);
 * assert.deepEqual([e.pending, e.envelope, e.f, e.x], [true, true, 9, -1]);
 * assert.equal(dir.seqFloor, 3);
 * ```
 */
export function recordEntry(
  dir: KeyDir,
  seq: number,
  at: number,
  len: number,
  gen: number,
  pending: boolean,
  p: RecordFields,
): KeyEntry {
  if ((p.flags & REC_ENVELOPE) === 0) {
    return keyEntry(seq, at, len, 0, gen, pending, -1, -1, 0);
  }
  dir.noteSeq(p.s);
  return keyEntry(
    seq,
    at,
    len,
    0,
    gen,
    pending,
    p.s,
    p.flags & REC_EXPIRY ? p.x : -1,
    p.flags & REC_FEED ? p.f : 0,
  );
}
