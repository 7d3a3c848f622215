/**
 * Opening the file storage: the log file taken (the writer's lock, or a
 * reader's handle), its leftovers of an interrupted compaction removed, and
 * the log replayed into the key directory, a torn last commit cut off, or
 * the damage salvaged (`repair`), or refused with the byte offset.
 *
 * @module
 */

import { IntegrityError } from "../errors.ts";
import type { FileStorageOptions } from "./file_options.ts";
import { FileCore } from "./file_core.ts";
import { dirname, fileSource, syncDir, writeAll } from "./file_io.ts";
import {
  encodeHeader,
  FILE_FORMAT_VERSION,
  FLAG_SNAPSHOT,
  HEADER_BYTES,
  MAGIC,
} from "./file_format.ts";
import { type LogSource, scanLog } from "./file_scan.ts";
import { openLocked, releaseHeld } from "./file_lock.ts";
import { checkFlag } from "../validate.ts";
import { rewrite } from "./file_rewrite.ts";
import { hintInput, hintPath, loadHint } from "./file_hint.ts";

/**
 * Opens the log at `path` (creating it and its directory for a writer) and
 * replays it.
 *
 * @param path The log file's path.
 * @param options The storage's options (checked).
 * @param action For error messages.
 * @returns The storage's state, its log replayed.
 * @throws {LockedError} Another writer holds the file past `lockTimeout`.
 * @throws {IntegrityError} See {@linkcode replay}.
 * @throws {TypeError} `readOnly` on a missing file.
 */
export async function openCore(
  path: string,
  options: FileStorageOptions,
  action: string,
): Promise<FileCore> {
  const readOnly = checkFlag(options.readOnly, "readOnly", action) === true;
  checkFlag(options.repair, "repair", action);
  let file: Deno.FsFile | undefined;
  let reader: Deno.FsFile | undefined;
  let realPath: string | undefined;
  try {
    if (!readOnly) {
      await Deno.mkdir(dirname(path), { recursive: true });
      const locked = await openLocked(path, options.lockTimeout ?? 5000);
      file = locked.file;
      realPath = locked.realPath;
      for (
        const stray of [`${realPath}.compact`, `${hintPath(realPath)}.tmp`]
      ) {
        await Deno.remove(stray).catch((e) => {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        });
      }
    } else {
      try {
        file = await Deno.open(path, { read: true });
        realPath = await Deno.realPath(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) {
          throw new TypeError(
            `${action}: '${path}' does not exist, and a read-only open does not create it`,
            { cause: e },
          );
        }
        throw e;
      }
    }
    reader = await Deno.open(realPath, { read: true });
    const { size } = await file.stat();
    const core = new FileCore(path, realPath, options, file, reader, {
      version: FILE_FORMAT_VERSION,
      flags: 0,
      createdAt: Date.now(),
      baseSeq: 0,
      salt: new Uint8Array(16),
    });
    const from = options.repair === true
      ? undefined
      : await openHint(core, file, size);
    await replay(core, fileSource(file, size), options.repair === true, from);
    return core;
  } catch (e) {
    file?.close();
    try {
      reader?.close();
    } catch { /* closed with the storage */ }
    if (!readOnly && realPath !== undefined) releaseHeld(realPath);
    throw e;
  }
}

/**
 * Reads the whole log into the key directory, a window at a time (the
 * file is never held whole, unless damage makes the rest of it needed at
 * once); fixes the tail or repairs.
 *
 * @param s The storage.
 * @param source The log, read a window at a time.
 * @param repair Salvage past damage instead of failing.
 * @param from Where to start reading, after a hint was loaded.
 * @throws {IntegrityError} The log is damaged (and `repair` is off), cut
 *   short inside a compacted snapshot, or not a `@tether/db` log.
 */
export async function replay(
  s: FileCore,
  source: LogSource,
  repair: boolean,
  from?: { readonly at: number; readonly seq: number },
): Promise<void> {
  const path = s.path;
  const size = source.size;
  const head = size < HEADER_BYTES ? source.read(0, size) : undefined;
  if (head !== undefined && isMagicPrefix(head)) {
    if (size > 10 && (head[10]! & FLAG_SNAPSHOT) !== 0) {
      // Only a compaction sets this flag, and it fsyncs the whole file
      // before it becomes the log: this one was cut short.
      throw new IntegrityError(
        `Cannot open '${path}': the log is damaged at byte ${size} of ${size} (the file ends inside the header of a compacted log: it was cut short); the file was left as it is`,
      );
    }
    // New file, or its creation was cut short before the header was whole.
    if (s.readOnly) return;
    await s.file.truncate(0);
    await s.file.seek(0, Deno.SeekMode.Start);
    await writeAll(s.file, encodeHeader(s.header));
    await s.file.sync();
    await syncDir(s.realPath);
    s.fileBytes = HEADER_BYTES;
    return;
  }
  const scan = scanLog(
    source,
    repair,
    (frame, base, version) => s.apply(frame, base, version),
    undefined,
    from,
  );
  if (scan.failure !== undefined) {
    const { offset, reason } = scan.failure;
    throw new IntegrityError(
      scan.failure.header
        ? `Cannot open '${path}': ${reason}; copy what is intact with repair() or "tether repair --db <file> --out <new>" (the original is left as it is)`
        : `Cannot open '${path}': the log is damaged at byte ${offset} of ${size} (${reason}); the file was left as it is; copy every intact commit with repair() or "tether repair --db <file> --out <new>", or open with { repair: true } to salvage in place`,
    );
  }
  if (scan.header !== undefined) s.header = scan.header;
  s.seq = scan.seq;
  s.fileBytes = scan.end;
  s.stats.tornBytes = scan.tornBytes;
  s.stats.damage = scan.damage;
  s.stats.repairedRanges = scan.damage.length;
  s.stats.repairedBytes = scan.damage.reduce((n, d) => n + d.bytes, 0);
  if (scan.tornBytes > 0) {
    s.log.warn(
      "torn-tail",
      `'${path}' ends in ${scan.tornBytes} bytes of a commit that was being written when a process or machine stopped (never acknowledged)${
        s.readOnly ? "; left in place (read-only)" : "; cut off"
      }`,
      { path, offset: scan.end, bytes: scan.tornBytes },
    );
  }
  for (const d of scan.damage) {
    s.log.warn(
      "repair",
      `'${path}' is damaged at byte ${d.offset} (${d.reason}); ${d.bytes} bytes skipped${
        s.readOnly ? "; the file was not changed" : ""
      }`,
      { path, offset: d.offset, bytes: d.bytes, reason: d.reason },
    );
  }
  if (s.readOnly) return;
  if (scan.damage.length > 0) {
    const copy = `${s.realPath}.damaged-${Date.now()}`;
    await Deno.copyFile(s.realPath, copy);
    s.stats.damagedCopy = copy;
    await rewrite(s);
    return;
  }
  if (scan.tornBytes > 0) {
    await s.file.truncate(scan.end);
    await s.file.sync();
  }
  await s.file.seek(scan.end, Deno.SeekMode.Start);
}

function isMagicPrefix(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length && i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) return false;
  }
  return true;
}

/** Reads `len` bytes at `at` of a file (fewer at its end). */
function readAt(file: Deno.FsFile, at: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  file.seekSync(at, Deno.SeekMode.Start);
  let got = 0;
  while (got < len) {
    const n = file.readSync(out.subarray(got));
    if (n === null) break;
    got += n;
  }
  return got === len ? out : out.subarray(0, got);
}

/**
 * Loads the key directory hint of the log, when there is one that holds:
 * the directory then has every key of the log's first `at` bytes. One that
 * does not hold is reported and (by a writer) removed; the log is then read
 * whole.
 *
 * @param s The storage (its directory empty).
 * @param file The log.
 * @param size The log's length.
 * @returns Where to read the log from, or `undefined` to read it whole.
 */
async function openHint(
  s: FileCore,
  file: Deno.FsFile,
  size: number,
): Promise<{ at: number; seq: number } | undefined> {
  if (size < HEADER_BYTES) return undefined;
  const path = hintPath(s.realPath);
  let hint: Deno.FsFile;
  try {
    hint = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  let loaded;
  try {
    const { size: hintSize } = await hint.stat();
    loaded = loadHint(
      s.dir,
      hintInput(hint, hintSize),
      { size, read: (at, len) => readAt(file, at, len) },
      s.reader.gen,
    );
  } finally {
    hint.close();
  }
  if (typeof loaded !== "string") {
    s.stats.hintKeys = loaded.keys;
    return loaded;
  }
  s.log.warn(
    "hint-ignored",
    `the key directory hint '${path}' was not used (${loaded}); the log is read whole${
      s.readOnly ? "" : " and the hint removed"
    }`,
    { path, reason: loaded },
  );
  if (!s.readOnly) {
    await Deno.remove(path).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
  return undefined;
}
