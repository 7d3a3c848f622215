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
import { rewrite } from "./file_rewrite.ts";

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
  const readOnly = options.readOnly === true;
  let file: Deno.FsFile | undefined;
  let reader: Deno.FsFile | undefined;
  let realPath: string | undefined;
  try {
    if (!readOnly) {
      await Deno.mkdir(dirname(path), { recursive: true });
      const locked = await openLocked(path, options.lockTimeout ?? 5000);
      file = locked.file;
      realPath = locked.realPath;
      await Deno.remove(`${realPath}.compact`).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
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
    await replay(core, fileSource(file, size), options.repair === true);
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
 * @throws {IntegrityError} The log is damaged (and `repair` is off), cut
 *   short inside a compacted snapshot, or not a `@tether/db` log.
 */
export async function replay(
  s: FileCore,
  source: LogSource,
  repair: boolean,
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
