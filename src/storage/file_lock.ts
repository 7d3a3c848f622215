/**
 * The file storage's one-writer lock: an exclusive `flock` on the log file
 * itself (the inode, whatever path names it), plus a set of the real paths
 * this process has open for writing (see FORMAT.md, "File log").
 *
 * @module
 */

import { LockedError } from "../errors.ts";

const LOCK_POLL_MS = 25;

/** Real paths of the logs this process holds for writing. */
const held = new Set<string>();

/** A log file opened for writing with its lock held. */
export interface LockedFile {
  /** The open file, locked exclusively. */
  readonly file: Deno.FsFile;
  /** The path with every symbolic link resolved. */
  readonly realPath: string;
}

function sameFile(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  // Where the platform has no inode numbers (Windows), trust the path.
  return a.ino === null || b.ino === null ||
    (a.ino === b.ino && a.dev === b.dev);
}

/**
 * Opens (creating it if missing) a log file for writing and locks it,
 * polling for up to `timeout` ms. After the lock is taken it checks that the
 * path still names the locked file (a compaction by the previous holder may
 * have renamed a new file over it) and starts over if not.
 *
 * @param path The log file's path.
 * @param timeout How long to wait for another writer, ms.
 * @returns The locked file and its real path.
 * @throws {LockedError} Another writer (another process, or another open in
 *   this one, through any path spelling) holds it past `timeout`.
 */
export async function openLocked(
  path: string,
  timeout: number,
): Promise<LockedFile> {
  const deadline = Date.now() + timeout;
  const wait = async (): Promise<void> => {
    if (Date.now() >= deadline) {
      throw new LockedError(
        `Cannot open '${path}': another writer has it open (waited ${timeout} ms); close it, or open with readOnly: true`,
      );
    }
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  };
  for (;;) {
    const file = await Deno.open(path, {
      read: true,
      write: true,
      create: true,
    });
    let locked = false;
    try {
      let realPath = await Deno.realPath(path);
      while (held.has(realPath) || !(await file.tryLock(true))) {
        await wait();
        realPath = await Deno.realPath(path);
      }
      locked = true;
      let current: Deno.FileInfo | undefined;
      try {
        current = await Deno.stat(realPath);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      const mine = await file.stat();
      if (
        current !== undefined && sameFile(current, mine) &&
        !held.has(realPath)
      ) {
        held.add(realPath);
        return { file, realPath };
      }
      // The file locked is no longer the log (replaced or removed while
      // this waited): let it go and lock what the path names now.
    } catch (e) {
      file.close();
      throw e;
    }
    if (locked) await file.unlock().catch(() => {});
    file.close();
    await wait();
  }
}

/**
 * Locks the file a compaction wrote before it is renamed over the log, so
 * that the log is locked at every moment.
 *
 * @param file The new file, open for writing.
 * @param path Its path, for the message.
 * @throws {LockedError} Something else holds a lock on it.
 */
export async function lockReplacement(
  file: Deno.FsFile,
  path: string,
): Promise<void> {
  if (!(await file.tryLock(true))) {
    throw new LockedError(
      `Cannot compact: another process holds a lock on '${path}'`,
    );
  }
}

/**
 * Forgets a real path held by {@linkcode openLocked} (the file lock itself
 * goes with its handle).
 *
 * @param realPath The path.
 */
export function releaseHeld(realPath: string): void {
  held.delete(realPath);
}
