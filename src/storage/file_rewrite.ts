/**
 * Compaction of the file storage: when to start one, one at a time, and
 * the rewrite itself. The live records are copied (file_compact.ts) into a
 * new file beside the log while writes go on, the commits made meanwhile
 * follow them, and the new file is fsynced, renamed over the log and the
 * directory fsynced, so a crash at any point leaves one complete log; then
 * every key's entry is pointed into the new file.
 *
 * @module
 */

import { QuotaError, TetherError } from "../errors.ts";
import type { FileCore } from "./file_core.ts";
import { upgradeFrame } from "./file_log.ts";
import {
  compactionError,
  errorText,
  faults,
  syncDir,
  writeAll,
} from "./file_io.ts";
import {
  encodeHeader,
  FILE_FORMAT_VERSION,
  type FileHeader,
  FLAG_SNAPSHOT,
  HEADER_BYTES,
} from "./file_format.ts";
import { lockReplacement } from "./file_lock.ts";
import type { KeyEntry } from "./file_keydir.ts";
import { hintPath } from "./file_hint.ts";
import { copyLive, CopyProgress, SnapshotWriter } from "./file_compact.ts";

/**
 * Starts a compaction when the log has grown past `compactRatio` times the
 * live data (and `compactMinBytes`); a failure is logged and counted.
 *
 * @param s The storage.
 */
export function maybeCompact(s: FileCore): void {
  if (s.compacting !== undefined || s.closed) return;
  if (
    s.fileBytes > s.compactMinBytes &&
    s.fileBytes > s.compactRatio * (s.dir.live + HEADER_BYTES)
  ) {
    compact(s).catch((e) => {
      s.stats.lastError = errorText(e);
      s.log.warn("compaction-failed", errorText(e), {
        path: s.path,
        quota: e instanceof QuotaError,
      });
    });
  }
}

/**
 * Rewrites the log with only the live keys, unless nothing was written
 * since the last compaction; a call while one runs joins it.
 *
 * @param s The storage.
 * @param onProgress Told of the bytes of live records copied, of all of
 *   them.
 * @returns Whether it rewrote the file.
 * @throws {ClosedError} After `close()`.
 * @throws {TypeError} On a read-only storage.
 */
export function compact(
  s: FileCore,
  onProgress?: (done: number, total: number) => void,
): Promise<boolean> {
  if (s.closed) return Promise.reject(s.closedError("compact"));
  if (s.readOnly) {
    return Promise.reject(
      new TypeError(`Cannot compact '${s.path}': it is open read-only`),
    );
  }
  if (s.compacting !== undefined) {
    s.compactProgress?.add(onProgress);
    return s.compacting;
  }
  if (s.commitsSinceCompaction === 0 && s.stats.compactions > 0) {
    return Promise.resolve(false);
  }
  const progress = new CopyProgress();
  progress.add(onProgress);
  s.compactProgress = progress;
  s.compacting = rewrite(s, progress).then(() => true).finally(() => {
    s.compacting = undefined;
    s.compactProgress = undefined;
  });
  return s.compacting;
}

/**
 * Compaction proper (also the last step of a repair).
 *
 * @param s The storage.
 * @param progress Told how far the copy is.
 */
export async function rewrite(
  s: FileCore,
  progress?: CopyProgress,
): Promise<void> {
  const path = s.path;
  const realPath = s.realPath;
  const tmpPath = `${realPath}.compact`;
  const started = Date.now();
  const before = s.fileBytes;
  const failures = s.failures;
  const entries: KeyEntry[] = Array.from(s.dir.entries());
  const legacyIds = s.dir.legacyIds();
  const seq = s.seq;
  const commits = s.stats.commits;
  const oldGen = s.reader.gen;
  s.tail = { seq, frames: [] };
  let tmp: Deno.FsFile | undefined;
  let reader: Deno.FsFile | undefined;
  let renamed = false;
  try {
    tmp = await Deno.open(tmpPath, {
      read: true,
      write: true,
      create: true,
      truncate: true,
    });
    const out = tmp;
    // Locked before it becomes the log, so the log is locked throughout.
    await lockReplacement(out, tmpPath);
    faults.compactStep?.("open");
    const oldVersion = s.header.version;
    const header: FileHeader = {
      ...s.header,
      version: FILE_FORMAT_VERSION,
      flags: s.header.flags | FLAG_SNAPSHOT,
      baseSeq: seq,
    };
    const snapshot = new SnapshotWriter(
      encodeHeader(header),
      seq,
      async (bytes) => {
        faults.compactWrite?.(bytes.length);
        await writeAll(out, bytes);
      },
    );
    await copyLive(
      entries,
      legacyIds,
      (at, len) => s.reader.read(at, len),
      () => s.fileBytes,
      oldGen,
      (e) => s.dir.frameOf(e),
      snapshot,
      path,
      progress,
    );
    await snapshot.flush();
    // The bulk of the fsync happens here, while commits are still written
    // to the old file; only the tail's is left for the step that holds
    // the log's writes back.
    await s.sync(out, "syncData", tmpPath);
    faults.compactStep?.("snapshot");
    reader = await Deno.open(tmpPath, { read: true });
    await s.withIo(async () => {
      if (s.failures !== failures) {
        throw new TetherError(
          `Cannot compact '${path}': a write failed while it ran`,
        );
      }
      // The commits written to the old file meanwhile, in the new format.
      const tail = s.tail!.frames.map((q) => ({
        ...upgradeFrame(q, oldVersion),
        entries: q.entries,
      }));
      s.tail = undefined;
      const moved: { e: KeyEntry; at: number; len: number }[] = [];
      for (const t of tail) {
        const at = snapshot.size;
        for (let i = 0; i < t.entries.length; i++) {
          moved.push({
            e: t.entries[i]!,
            at: at + t.offsets[2 * i]!,
            len: t.offsets[2 * i + 1]!,
          });
        }
        await snapshot.frame(t.frame, t.entries.length);
      }
      await snapshot.end();
      await snapshot.flush();
      const size = snapshot.size;
      await s.sync(out, "sync", tmpPath);
      faults.compactStep?.("synced");
      // The hint describes the old log: gone before the log is replaced
      // (one left beside the new log would be ignored, but never trusted).
      await Deno.remove(hintPath(realPath)).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
      await Deno.rename(tmpPath, realPath);
      // From here the log is the new file: switch to it (its handle is
      // already at its end, and holds the lock) before anything else can
      // fail, so that later commits never go to the old, unlinked file.
      // Closing the old one releases its lock: a writer waiting on it
      // finds that the path names another file now, and waits on that.
      renamed = true;
      // Commits still queued for the log but not in the snapshot (some
      // were made while this awaited): in the new format before they are
      // written to the new file. From the switch below on, commits are
      // encoded in it.
      const later = s.queue.filter((q) => q.seq > seq);
      const upgraded = oldVersion === FILE_FORMAT_VERSION
        ? []
        : later.map((q) => upgradeFrame(q, oldVersion));
      s.file.close();
      s.file = out;
      s.header = header;
      s.fileBytes = size;
      s.reader.replace(reader);
      reader = undefined;
      const gen = s.reader.gen;
      // Every entry the new file holds points into it.
      for (const p of snapshot.placed) {
        p.entry.at = p.at;
        p.entry.len = p.len;
        p.entry.kind = 0;
        p.entry.gen = gen;
        p.entry.settle();
      }
      for (const { e, at, len } of moved) {
        e.at = at;
        e.len = len;
        e.kind = 0;
        e.gen = gen;
        e.settle();
      }
      for (let i = 0; i < upgraded.length; i++) {
        const q = later[i]!;
        const u = upgraded[i]!;
        q.frame = u.frame;
        q.offsets = [...u.offsets];
        s.dir.hold(q.seq, u.frame);
        for (let j = 0; j < q.entries.length; j++) {
          const e = q.entries[j]!;
          if (!e.pending) continue;
          e.at = u.offsets[2 * j]!;
          e.len = u.offsets[2 * j + 1]!;
          e.kind = 0;
        }
      }
      s.dir.recount();
      // Commits not yet written that the snapshot holds are now durable.
      if (s.queue.length > 0 && s.queue[0]!.seq <= seq) {
        const covered = s.queue.filter((q) => q.seq <= seq);
        s.queue = s.queue.filter((q) => q.seq > seq);
        for (const q of covered) {
          // Its entries still in the directory were placed (settled) above.
          s.dir.release(q.seq);
          q.resolve?.();
        }
        if (s.queue.length === 0) {
          s.written?.resolve();
          s.written = undefined;
        }
      }
      faults.compactStep?.("renamed");
      await syncDir(realPath);
    });
    s.stats.compactions++;
    s.commitsSinceCompaction = s.stats.commits - commits;
    s.log.debug(
      "compaction",
      `compacted '${path}' from ${before} to ${s.fileBytes} bytes in ${
        Date.now() - started
      } ms`,
      {
        path,
        before,
        after: s.fileBytes,
        keys: entries.length,
        ms: Date.now() - started,
      },
    );
  } catch (e) {
    s.tail = undefined;
    try {
      reader?.close();
    } catch { /* already closed */ }
    if (!renamed) {
      try {
        tmp?.close();
      } catch { /* already closed */ }
      await Deno.remove(tmpPath).catch(() => {});
    }
    s.stats.lastError = errorText(e);
    throw compactionError(path, e, renamed);
  }
}
