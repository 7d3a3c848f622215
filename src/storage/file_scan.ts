/**
 * Reading a whole file log (see FORMAT.md, "File log"): the header, every
 * frame, the snapshot of a compacted file and its end frame, a torn tail,
 * and, when asked to salvage, every damaged range skipped and reported.
 *
 * @module
 */

import { crc32c } from "./crc32c.ts";
import {
  decodeHeader,
  FILE_FORMAT_VERSION,
  type FileHeader,
  findNextFrame,
  FLAG_SNAPSHOT,
  type Frame,
  FRAME_HEADER_BYTES,
  HEADER_BYTES,
  KIND_SNAPSHOT_END,
  readFrame,
  type SnapshotSummary,
} from "./file_format.ts";

/** A damaged byte range that a salvaging read skipped. */
export interface Damage {
  /** Where it starts in the file. */
  readonly offset: number;
  /** How many bytes it spans (0 for something missing, such as a cut). */
  readonly bytes: number;
  /** What is wrong there. */
  readonly reason: string;
}

/** What a read of a whole log found. */
export interface LogScan {
  /** The file header, or `undefined` when it is damaged (salvage only). */
  readonly header: FileHeader | undefined;
  /** The sequence number of the last frame read. */
  readonly seq: number;
  /** The offset after the last intact frame: where appends go. */
  readonly end: number;
  /** Bytes of a torn last commit (or zeros) after `end`. */
  readonly tornBytes: number;
  /** Damaged ranges skipped (salvage only; empty otherwise). */
  readonly damage: readonly Damage[];
  /**
   * When the log does not check out and `salvage` is off: where and why.
   * Frames before it were already passed to `apply`.
   */
  readonly failure?: {
    readonly offset: number;
    readonly reason: string;
    /** Whether the file header itself is what fails. */
    readonly header: boolean;
  };
}

/** Zeros a torn write leaves at the end: at least this many in a row. */
const MIN_ZERO_TAIL = 16;

function allZero(bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Whether the damaged last frame at `at` ends in a run of zeros (at least
 * `MIN_ZERO_TAIL`, to the end of the file) that starts inside it: in its
 * header, or in its payload when its header is intact and declares a frame
 * that reaches the end of the file. That is a write whose file size reached
 * the disk and whose last bytes did not.
 */
function zeroTail(bytes: Uint8Array, at: number): boolean {
  let z = bytes.length;
  while (z > at && bytes[z - 1] === 0) z--;
  if (bytes.length - z < MIN_ZERO_TAIL) return false;
  if (z < at + FRAME_HEADER_BYTES) return true;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at);
  if (view.getUint32(17, true) !== crc32c(bytes, at, at + 17)) return false;
  return at + FRAME_HEADER_BYTES + view.getUint32(0, true) >= bytes.length;
}

function summaryMismatch(
  want: SnapshotSummary,
  got: SnapshotSummary,
): string | undefined {
  for (const field of ["frames", "bytes", "records", "crc"] as const) {
    if (want[field] !== got[field]) {
      return `the snapshot end frame counts ${
        want[field]
      } ${field} and the snapshot before it has ${got[field]}`;
    }
  }
  return undefined;
}

/**
 * A log to read a window at a time: the file is never held whole in RAM
 * (a database may be larger than RAM), only damage makes the reader take
 * the rest of the file at once.
 */
export interface LogSource {
  /** The log's size in bytes. */
  readonly size: number;
  /**
   * Reads `len` bytes at `at` (fewer only at the end of the log). The bytes
   * stay valid until the next call.
   */
  read(at: number, len: number): Uint8Array;
}

/**
 * A {@linkcode LogSource} over bytes already in RAM.
 *
 * @param bytes The whole log.
 * @returns The source.
 */
export function bytesSource(bytes: Uint8Array): LogSource {
  return {
    size: bytes.length,
    read: (at, len) => bytes.subarray(at, at + len),
  };
}

/** How many bytes a window of the log holds (at least). */
export const SCAN_WINDOW = 8 << 20;

/**
 * Reads a whole log (at least 64 bytes, or not starting like one), passing
 * each intact commit to `apply` in order, a window of
 * {@linkcode SCAN_WINDOW} bytes (or one frame, when larger) at a time.
 *
 * Without `salvage`, only an incomplete last frame after the snapshot (or a
 * zero-filled tail) is a torn tail; anything else that does not check out
 * stops the read with `failure`. With `salvage`, damaged ranges are skipped
 * (resuming at the next intact frame) and listed in `damage`. From the first
 * frame that does not check out, the rest of the log is read at once.
 *
 * @param source The log (or its bytes, read whole).
 * @param salvage Whether to skip damage instead of stopping.
 * @param apply Receives each commit frame, the file offset its positions
 * count from (the window's), and the format it was read in.
 * @param window The least bytes a window holds (tests make it small).
 * @param from Where to start instead of the first frame (after a key
 *   directory hint was loaded: the log is whole up to there, past its
 *   snapshot), and the sequence number of the frame before.
 * @returns What was found.
 */
export function scanLog(
  source: LogSource | Uint8Array,
  salvage: boolean,
  apply: (frame: Frame, base: number, version: number) => void,
  window: number = SCAN_WINDOW,
  from?: { readonly at: number; readonly seq: number },
): LogScan {
  const src = source instanceof Uint8Array ? bytesSource(source) : source;
  const size = src.size;
  /** The window: `bytes[i]` is the log's byte `base + i`. */
  let base = 0;
  let bytes = src.read(
    0,
    Math.min(
      size,
      from === undefined ? Math.max(window, HEADER_BYTES) : HEADER_BYTES,
    ),
  );
  /** Moves the window to start at `at`, holding `len` bytes or more. */
  const load = (at: number, len: number): void => {
    bytes = src.read(at, Math.min(size - at, Math.max(len, window)));
    base = at;
  };
  /** Moves the window to hold everything from `at` to the end. */
  const rest = (at: number): void => {
    if (at < base || base + bytes.length < size) load(at, size - at);
  };
  const damage: Damage[] = [];
  const decoded = decodeHeader(bytes);
  let header: FileHeader | undefined;
  let at = HEADER_BYTES;
  /**
   * "open": inside a snapshot, before its end frame; "closed": after it or
   * no snapshot; "unknown": the header is damaged, so either may be true.
   */
  let snapshot: "open" | "closed" | "unknown" = "closed";
  /** The payload format (unknown with a damaged header: guessed). */
  let version = FILE_FORMAT_VERSION;
  if (typeof decoded === "string") {
    const reason = `it is not a readable @tether/db log (byte 0: ${decoded})`;
    if (!salvage) {
      return {
        header: undefined,
        seq: 0,
        end: 0,
        tornBytes: 0,
        damage,
        failure: { offset: 0, reason, header: true },
      };
    }
    rest(0);
    let next = findNextFrame(bytes, 0, 0, version);
    if (next < 0) {
      version = 2;
      next = findNextFrame(bytes, 0, 0, version);
    }
    at = next < 0 ? size : next;
    damage.push({ offset: 0, bytes: at, reason });
    snapshot = "unknown";
  } else {
    header = decoded;
    version = header.version;
    if ((header.flags & FLAG_SNAPSHOT) !== 0) snapshot = "open";
  }
  let seq = header?.baseSeq ?? 0;
  if (from !== undefined && header !== undefined) {
    at = from.at;
    seq = from.seq;
    snapshot = "closed";
    if (at < size) load(at, 0);
  }
  const covered = { frames: 0, bytes: 0, records: 0, crc: 0 };
  /** The CRC-32C of the snapshot's frames read so far. */
  let snapshotCrc = 0;
  let snapshotDamaged = false;
  let tornBytes = 0;
  const fail = (offset: number, reason: string): LogScan => ({
    header,
    seq,
    end: offset,
    tornBytes: 0,
    damage,
    failure: { offset, reason, header: false },
  });
  while (at < size) {
    let read = readFrame(bytes, at - base, seq, version);
    if (!("frame" in read) && base + bytes.length < size) {
      // Past the window: the frame's own length says how much to read.
      const rel = at - base;
      const need = read.problem === "truncated" &&
          bytes.length - rel >= FRAME_HEADER_BYTES
        ? FRAME_HEADER_BYTES +
          new DataView(bytes.buffer, bytes.byteOffset + rel).getUint32(0, true)
        : FRAME_HEADER_BYTES;
      load(at, need);
      read = readFrame(bytes, 0, seq, version);
      if (!("frame" in read) && base + bytes.length < size) {
        // Still wrong: damage or a torn tail, judged on the rest of the log.
        rest(at);
        read = readFrame(bytes, 0, seq, version);
      }
    }
    const rel = at - base;
    if ("frame" in read) {
      const { frame } = read;
      const end = base + read.end;
      if (frame.kind === KIND_SNAPSHOT_END) {
        if (snapshot === "open") {
          const mismatch = snapshotDamaged ? undefined : summaryMismatch(
            frame.summary!,
            { ...covered, crc: snapshotCrc },
          );
          if (mismatch !== undefined) {
            if (!salvage) return fail(at, mismatch);
            damage.push({ offset: at, bytes: end - at, reason: mismatch });
          }
          snapshot = "closed";
        } else if (snapshot === "closed") {
          const reason = "a snapshot end frame outside a snapshot";
          if (!salvage) return fail(at, reason);
          damage.push({ offset: at, bytes: end - at, reason });
        }
        seq = frame.seq;
        at = end;
        continue;
      }
      apply(frame, base, version);
      if (snapshot === "open") {
        covered.frames++;
        covered.bytes += end - at;
        covered.records += frame.setCount;
        if (!snapshotDamaged) {
          snapshotCrc = crc32c(bytes, rel, read.end, snapshotCrc);
        }
      }
      seq = frame.seq;
      at = end;
      continue;
    }
    const found = read.problem === "corrupt"
      ? findNextFrame(bytes, rel + 1, seq, version)
      : -1;
    const next = found < 0 ? -1 : base + found;
    if (
      snapshot !== "open" && next < 0 &&
      (read.problem === "truncated" || allZero(bytes, rel) ||
        zeroTail(bytes, rel))
    ) {
      // A commit cut short by a crash: it was never acknowledged.
      tornBytes = size - at;
      break;
    }
    const reason = snapshot === "open"
      ? `${read.reason}, inside the snapshot a compaction wrote, which is never torn`
      : read.reason;
    if (!salvage) return fail(at, reason);
    const stop = next < 0 ? size : next;
    damage.push({ offset: at, bytes: stop - at, reason });
    if (snapshot === "open") snapshotDamaged = true;
    at = stop;
  }
  if (snapshot === "open") {
    const reason =
      `the file ends inside the snapshot a compaction wrote, before its end frame (${covered.frames} frames read): it was cut short`;
    if (!salvage) return fail(size, reason);
    damage.push({ offset: size, bytes: 0, reason });
  }
  return { header, seq, end: at, tornBytes, damage };
}
