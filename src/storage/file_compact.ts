/**
 * The snapshot a compaction writes (see FORMAT.md, "File log"): every live
 * record copied from the old log (format-3 records as they are, older
 * values converted), in frames of about 1 MiB, in the order of the old
 * file so that it is read once from start to end; then the commits made
 * meanwhile, and a snapshot end frame covering all of them.
 *
 * @module
 */

import { crc32c } from "./crc32c.ts";
import { concat } from "./file_io.ts";
import {
  encodeSnapshotEnd,
  FRAME_HEADER_BYTES,
  KIND_COMMIT,
  MAX_PAYLOAD_BYTES,
  type SnapshotSummary,
} from "./file_format.ts";
import {
  putVarint,
  recordSize,
  splitValue,
  varintSize,
  writeRecord,
} from "./file_record.ts";
import { keyBytes, type KeyEntry, LEGACY } from "./file_keydir.ts";
import { IntegrityError, TetherError } from "../errors.ts";

/** Snapshot frames hold about this many payload bytes. */
const SNAPSHOT_FRAME_BYTES = 1 << 20;
/** The snapshot is written in chunks of about this size. */
const WRITE_CHUNK_BYTES = 4 << 20;
/** The old file is read in windows of this size. */
const READ_WINDOW_BYTES = 4 << 20;

/** Encodes a frame of format-3 records already encoded. */
function recordsFrame(
  seq: number,
  records: readonly Uint8Array[],
  bytes: number,
): { frame: Uint8Array; first: number } {
  const head = varintSize(records.length) + 1;
  const length = head + bytes;
  if (length > MAX_PAYLOAD_BYTES) throw new RangeError("frame too large");
  const out = new Uint8Array(FRAME_HEADER_BYTES + length);
  const view = new DataView(out.buffer);
  view.setUint32(0, length, true);
  view.setFloat64(4, seq, true);
  out[12] = KIND_COMMIT;
  let at = putVarint(out, FRAME_HEADER_BYTES, records.length);
  out[at++] = 0; // no deletes
  const first = at;
  for (const r of records) {
    out.set(r, at);
    at += r.length;
  }
  view.setUint32(13, crc32c(out, FRAME_HEADER_BYTES, out.length), true);
  view.setUint32(17, crc32c(out, 0, 17), true);
  return { frame: out, first };
}

/** The bytes of a snapshot, written as they are made. */
export class SnapshotWriter {
  readonly #write: (bytes: Uint8Array) => Promise<void>;
  readonly #seq: number;
  /** Bytes of the new file so far (header included). */
  size: number;
  /** What the end frame vouches for. */
  readonly summary: {
    frames: number;
    bytes: number;
    records: number;
    crc: number;
  } = {
    frames: 0,
    bytes: 0,
    records: 0,
    crc: 0,
  };
  /** The sequence number of the last frame covered. */
  lastSeq: number;
  #chunk: Uint8Array[] = [];
  #chunkBytes = 0;
  #records: Uint8Array[] = [];
  #entries: KeyEntry[] = [];
  #recordBytes = 0;
  /** Each entry copied, and where its record is in the new file. */
  readonly placed: { entry: KeyEntry; at: number; len: number }[] = [];

  /**
   * @param header The new file's header bytes.
   * @param seq The snapshot's sequence number.
   * @param write Appends to the new file.
   */
  constructor(
    header: Uint8Array,
    seq: number,
    write: (bytes: Uint8Array) => Promise<void>,
  ) {
    this.#write = write;
    this.#seq = seq;
    this.lastSeq = seq;
    this.#chunk.push(header);
    this.#chunkBytes = header.length;
    this.size = header.length;
  }

  /** Adds a frame (one of the snapshot's, or a commit made meanwhile). */
  async frame(frame: Uint8Array, records: number): Promise<void> {
    const s = this.summary;
    s.frames++;
    s.bytes += frame.length;
    s.records += records;
    s.crc = crc32c(frame, 0, frame.length, s.crc);
    this.lastSeq = new DataView(frame.buffer, frame.byteOffset).getFloat64(
      4,
      true,
    );
    this.#chunk.push(frame);
    this.#chunkBytes += frame.length;
    this.size += frame.length;
    if (this.#chunkBytes >= WRITE_CHUNK_BYTES) await this.flush();
  }

  /** Adds one live record of the snapshot. */
  async record(entry: KeyEntry, record: Uint8Array): Promise<void> {
    this.#records.push(record);
    this.#entries.push(entry);
    this.#recordBytes += record.length;
    if (this.#recordBytes >= SNAPSHOT_FRAME_BYTES) await this.endFrame();
  }

  /** Closes the snapshot frame being filled. */
  async endFrame(): Promise<void> {
    const records = this.#records;
    if (records.length === 0) return;
    const { frame, first } = recordsFrame(
      this.#seq,
      records,
      this.#recordBytes,
    );
    let at = this.size + first;
    for (let i = 0; i < records.length; i++) {
      const len = records[i]!.length;
      this.placed.push({ entry: this.#entries[i]!, at, len });
      at += len;
    }
    this.#records = [];
    this.#entries = [];
    this.#recordBytes = 0;
    await this.frame(frame, records.length);
  }

  /** Writes what is buffered. */
  async flush(): Promise<void> {
    if (this.#chunk.length === 0) return;
    const bytes = concat(this.#chunk);
    this.#chunk = [];
    this.#chunkBytes = 0;
    await this.#write(bytes);
  }

  /** The end frame, buffered (then `flush`). */
  async end(): Promise<void> {
    await this.endFrame();
    const end = encodeSnapshotEnd(
      this.lastSeq,
      this.summary as SnapshotSummary,
    );
    this.#chunk.push(end);
    this.#chunkBytes += end.length;
    this.size += end.length;
  }
}

/** Those told how far a compaction's copy is (see `Storage.compact`). */
export class CopyProgress {
  readonly #listeners = new Set<(done: number, total: number) => void>();

  /**
   * Adds a listener, told of every report from now on.
   *
   * @param listener The caller's `onProgress` (none: nothing added).
   */
  add(listener: ((done: number, total: number) => void) | undefined): void {
    if (listener !== undefined) this.#listeners.add(listener);
  }

  /**
   * Tells every listener.
   *
   * @param done Bytes of live records copied.
   * @param total Bytes of live records in all.
   */
  report(done: number, total: number): void {
    for (const listener of this.#listeners) listener(done, total);
  }
}

/**
 * Copies the live records into the snapshot, reading the old file once in
 * order of offset.
 *
 * @param entries The live entries (sorted here).
 * @param legacyIds The keys of the entries in a legacy format (see
 *   `KeyDir.legacyIds`).
 * @param read Reads the old file (synchronously): `len` bytes at `at`.
 * @param limit The old file's length now: reads stop there.
 * @param gen The old file's generation: entries of another are unwritten.
 * @param frameOf The unwritten frame a pending entry points into.
 * @param out The snapshot.
 * @param path The old file, for error messages.
 * @param progress Told of the bytes of records copied, of all of them:
 *   at the start, about every window read, and at the end.
 */
export async function copyLive(
  entries: KeyEntry[],
  legacyIds: ReadonlyMap<KeyEntry, string>,
  read: (at: number, len: number) => Uint8Array,
  limit: () => number,
  gen: number,
  frameOf: (e: KeyEntry) => Uint8Array | undefined,
  out: SnapshotWriter,
  path: string,
  progress?: CopyProgress,
): Promise<void> {
  const onDisk = (e: KeyEntry) => !e.pending && e.gen === gen;
  const byOffset = (a: KeyEntry, b: KeyEntry) => a.at - b.at;
  // The records in the old file in order of offset (one pass of reads),
  // then the unwritten ones (their frames in RAM). A flush during an await
  // below writes some of those: they are copied last, in order of their
  // new offsets, never one window read each out of order (that re-read a
  // 4 MiB window per record: 2.1 GB of reads, 1.4 GB of RSS, for the
  // compaction of an 11 MB log whose last commits were being written).
  const inFile = entries.filter(onDisk).sort(byOffset);
  const unwritten = entries.filter((e) => !onDisk(e));
  let total = 0;
  for (const e of entries) total += e.len;
  let copied = 0;
  let reported = 0;
  progress?.report(0, total);
  let window: Uint8Array = new Uint8Array(0);
  let start = 0;
  const copy = async (e: KeyEntry): Promise<void> => {
    if (copied - reported >= READ_WINDOW_BYTES) {
      progress?.report(copied, total);
      reported = copied;
    }
    copied += e.len;
    let stored: Uint8Array;
    // Snapshot its location now: a flush may move it while this awaits.
    const pending = e.pending;
    const buf = pending ? frameOf(e) : undefined;
    const at = e.at;
    if (pending && buf === undefined) {
      // Not damage: the write failed (the check before the swap would
      // refuse the snapshot too).
      throw new TetherError(
        `Cannot compact '${path}': a write failed while it ran (a commit it was copying was taken back); compact again`,
      );
    }
    if (buf !== undefined) {
      stored = buf.subarray(at, at + e.len);
    } else if (e.gen !== gen) {
      throw new IntegrityError(
        `Cannot compact '${path}': a record's location is stale`,
      );
    } else {
      if (at < start || at + e.len > start + window.length) {
        start = at;
        const len = Math.min(Math.max(READ_WINDOW_BYTES, e.len), limit() - at);
        window = read(at, len);
      }
      stored = window.subarray(at - start, at - start + e.len);
    }
    if (e.kind === LEGACY) {
      const id = legacyIds.get(e);
      if (id === undefined) {
        throw new IntegrityError(
          `Cannot compact '${path}': a record in a legacy format has no key`,
        );
      }
      const key = keyBytes(id);
      const parts = splitValue(stored, undefined, key);
      const record = new Uint8Array(recordSize(key, parts));
      writeRecord(record, 0, key, parts);
      await out.record(e, record);
    } else {
      await out.record(e, stored);
    }
  };
  for (const e of inFile) await copy(e);
  const written: KeyEntry[] = [];
  for (const e of unwritten) {
    if (onDisk(e)) written.push(e); // written meanwhile: below
    else await copy(e);
  }
  written.sort(byOffset);
  for (const e of written) await copy(e);
  await out.endFrame();
  progress?.report(total, total);
}
